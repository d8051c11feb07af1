//! [`catch_panic`]: Poem's `CatchPanic` answering a panicking handler with
//! the JSON 500 every other error gets, and logging it (the panic message
//! goes to the log only, never to the client). Put it inside
//! [`super::RequestMetrics`] so the 500 is counted, and on the routes
//! themselves (`get(handler).with(catch_panic())`) to keep the route label:
//! a panic unwinds through `Route`, which then cannot attach the template,
//! so a panic caught outside the routes is labelled `unmatched`.

use std::any::Any;

use poem::http::StatusCode;
use poem::middleware::{CatchPanic, PanicHandler};

use super::error_response;

/// The JSON panic handler.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonPanicHandler;

impl PanicHandler for JsonPanicHandler {
    type Response = poem::Response;

    fn get_response(&self, panic: Box<dyn Any + Send + 'static>) -> Self::Response {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        tracing::error!(panic = %message, "handler panicked");
        error_response(StatusCode::INTERNAL_SERVER_ERROR, "")
    }
}

/// `CatchPanic` with [`JsonPanicHandler`].
pub fn catch_panic() -> CatchPanic<JsonPanicHandler> {
    CatchPanic::new().with_handler(JsonPanicHandler)
}

#[cfg(test)]
mod tests {
    use poem::test::TestClient;
    use poem::{EndpointExt, Route, get, handler};

    #[handler]
    fn boom() -> &'static str {
        panic!("secret detail")
    }

    #[tokio::test]
    async fn a_panic_is_a_counted_json_500_without_details() {
        let perfscope = crate::Perfscope::new(crate::Config::default());
        let app = Route::new()
            .at("/boom/:id", get(boom).with(super::catch_panic()))
            .with(perfscope.middleware());
        let response = TestClient::new(app).get("/boom/1").send().await;
        response.assert_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.0.into_body().into_string().await.expect("body");
        assert!(body.contains("\"error\":\"internal_error\""), "{body}");
        assert!(!body.contains("secret detail"), "{body}");
        let text = perfscope.encode_metrics().expect("encodes");
        assert!(
            text.contains(
                "http_request_duration_seconds_count{method=\"GET\",route=\"/boom/:id\",status_code=\"500\"} 1"
            ),
            "{text}"
        );
    }
}
