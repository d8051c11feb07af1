//! [`JsonErrors`]: every error leaves as JSON `{"error": code, "message":
//! ...}` with its status, never Poem's plain-text default.
//!
//! poem-openapi reports bad input (malformed JSON, wrong types, failed
//! validators, unknown fields) as errors whose message names the field; this
//! middleware keeps that message for 4xx answers and replaces it with a
//! generic one for 5xx, so internals never leak. A 401 gets
//! `WWW-Authenticate: Bearer`. The route template travels on, so
//! [`super::RequestMetrics`] placed outside still labels the request.

use poem::PathPattern;
use poem::http::{StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use serde::Serialize;

/// The JSON body of every error.
#[derive(Debug, Serialize, poem_openapi::Object)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `bad_request`.
    pub error: String,
    /// What was wrong, naming the field where there is one.
    pub message: String,
}

/// Marks a response to a request that matched no route, so that an outer
/// `Route` tagging it with its own prefix does not make it look matched.
#[derive(Clone, Copy, Debug)]
pub struct UnmatchedRoute;

/// Middleware turning errors into JSON responses.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonErrors;

impl<E: Endpoint> Middleware<E> for JsonErrors {
    type Output = JsonErrorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        JsonErrorsEndpoint { inner }
    }
}

/// The endpoint produced by [`JsonErrors`].
#[derive(Debug)]
pub struct JsonErrorsEndpoint<E> {
    inner: E,
}

/// The stable code for a status.
pub fn error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::LENGTH_REQUIRED => "length_required",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal_error",
    }
}

/// A JSON error response.
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let message = if status.is_server_error() {
        "internal error; see the agent's log".to_owned()
    } else {
        message.into()
    };
    let body = ErrorBody {
        error: error_code(status).to_owned(),
        message,
    };
    let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(json);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

impl<E: Endpoint> Endpoint for JsonErrorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        match self.inner.call(req).await {
            Ok(response) => Ok(response.into_response()),
            Err(error) if error.is_from_response() => {
                // An answer the endpoint built itself (e.g. a documented
                // error variant): keep it as it is.
                let pattern = error.data::<PathPattern>().cloned();
                let mut response = error.into_response();
                if let Some(pattern) = pattern {
                    response.set_data(pattern);
                }
                Ok(response)
            }
            Err(error) => {
                let status = error.status();
                if status.is_server_error() {
                    tracing::error!(%status, error = %error, "request failed");
                }
                // A NotFoundError matched no route, whatever prefix a nested
                // Route tagged it with.
                let unmatched = error.is::<poem::error::NotFoundError>();
                let pattern = if unmatched {
                    None
                } else {
                    error.data::<PathPattern>().cloned()
                };
                let message = if status == StatusCode::UNAUTHORIZED {
                    "missing or malformed Authorization header; expected `Bearer <token>`"
                        .to_owned()
                } else {
                    error.to_string()
                };
                let mut response = error_response(status, message);
                if let Some(pattern) = pattern {
                    response.set_data(pattern);
                }
                if unmatched {
                    response.set_data(UnmatchedRoute);
                }
                Ok(response)
            }
        }
    }
}
