//! [`BodyDeadline`]: a request body must arrive in full within a deadline.
//!
//! [`crate::http::HeaderTimeout`] times the head; once it is in, a client
//! could still send its declared body one byte every 20 s and hold the
//! connection, a task and a buffer for as long as it likes (every byte
//! resets the idle timeout). This middleware wraps the body so that reading
//! it fails once `PERFSCOPE_BODY_TIMEOUT` has passed since the request
//! reached the agent; the answer is then a 408 with `Connection: close`,
//! so hyper drops the connection rather than waiting for the rest. A
//! handler that never reads the body is not held by it: hyper closes a
//! connection whose body was left unread.
//!
//! The clock starts when the request arrives, not when the handler starts
//! reading: the agent's handlers read their (small, see
//! `PERFSCOPE_MAX_BODY_BYTES`) bodies first.

use std::future::Future;
use std::io::{Error, ErrorKind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, Result};

use super::error_response;

/// Middleware putting a deadline on reading request bodies.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline {
    timeout: Duration,
}

impl BodyDeadline {
    /// Bodies must arrive within `timeout` of their request.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<E: Endpoint> Middleware<E> for BodyDeadline {
    type Output = BodyDeadlineEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyDeadlineEndpoint {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The endpoint produced by [`BodyDeadline`].
#[derive(Debug)]
pub struct BodyDeadlineEndpoint<E> {
    inner: E,
    timeout: Duration,
}

/// Whether the request announces a body (HTTP/1.1: a non-zero
/// `Content-Length` or a `Transfer-Encoding`).
fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// `body`, failing its reads with `TimedOut` after `timeout`; `expired`
/// is set when that happens.
fn with_deadline(body: Body, timeout: Duration, expired: Arc<AtomicBool>) -> Body {
    let mut inner = Box::pin(body.into_bytes_stream());
    let mut deadline = Box::pin(tokio::time::sleep(timeout));
    let mut ended = false;
    Body::from_bytes_stream(futures_util::stream::poll_fn(move |cx| {
        if ended {
            return Poll::Ready(None);
        }
        // Bytes already here are taken first: the deadline cuts waiting,
        // not a body that has arrived.
        match futures_core::Stream::poll_next(inner.as_mut(), cx) {
            Poll::Ready(None) => {
                ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => {
                if Pin::new(&mut deadline).poll(cx).is_ready() {
                    ended = true;
                    expired.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Error::new(
                        ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    ))));
                }
                Poll::Pending
            }
        }
    }))
}

impl<E: Endpoint> Endpoint for BodyDeadlineEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if !has_body(&req) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let expired = Arc::new(AtomicBool::new(false));
        let body = with_deadline(req.take_body(), self.timeout, expired.clone());
        req.set_body(body);
        let result = self.inner.call(req).await.map(IntoResponse::into_response);
        if !expired.load(Ordering::Relaxed) {
            return result;
        }
        let pattern = match &result {
            Ok(response) => response.data::<PathPattern>().cloned(),
            Err(error) => error.data::<PathPattern>().cloned(),
        };
        let mut response = error_response(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} ms (PERFSCOPE_BODY_TIMEOUT)",
                self.timeout.as_millis()
            ),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        if let Some(pattern) = pattern {
            response.set_data(pattern);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::handler;

    #[handler]
    async fn echo(body: Body) -> Result<String> {
        Ok(body.into_string().await?)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_is_cut_with_408() {
        use poem::EndpointExt;
        let app = echo.with(BodyDeadline::new(Duration::from_secs(5)));
        let (mut tx, rx) = tokio::io::duplex(64);
        let req = Request::builder()
            .method(poem::http::Method::POST)
            .header(header::CONTENT_LENGTH, "10")
            .body(Body::from_async_read(rx));
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"abc")
            .await
            .expect("write");
        let response = app.call(req).await.expect("an answer");
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            response.headers().get(header::CONNECTION),
            Some(&HeaderValue::from_static("close"))
        );
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_body_passes() {
        use poem::EndpointExt;
        let app = echo.with(BodyDeadline::new(Duration::from_secs(5)));
        let req = Request::builder()
            .method(poem::http::Method::POST)
            .header(header::CONTENT_LENGTH, "3")
            .body("abc");
        let mut response = app.call(req).await.expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.take_body().into_string().await.ok(),
            Some("abc".into())
        );
    }
}
