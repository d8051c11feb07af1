//! [`ApiError`], the documented error answers of every operation, and the
//! handler that turns poem-openapi's parse errors (malformed JSON, wrong
//! types, failed validators, unknown fields, a missing token) into them.

use poem::http::StatusCode;
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;

use crate::http::{ErrorBody, error_code};

/// An error answer: always JSON `{"error": code, "message": ...}`.
#[derive(ApiResponse, Debug)]
#[oai(bad_request_handler = "from_parse_error")]
pub enum ApiError {
    /// The request is malformed or a value is out of range; the message
    /// names the field.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The bearer token is missing or wrong.
    #[oai(status = 401)]
    Unauthorized(
        Json<ErrorBody>,
        /// Always `Bearer`.
        #[oai(header = "WWW-Authenticate")]
        String,
    ),
    /// The request body is over the size limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The request body is not JSON.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
}

fn body(status: StatusCode, message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: error_code(status).to_owned(),
        message: message.into(),
    })
}

/// The body of a documented answer that is not an [`ApiError`] (404, 409,
/// 503 of an operation's own response type; only the database operations
/// have them).
#[cfg(feature = "postgres")]
pub(super) fn error_body(error: &str, message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: error.to_owned(),
        message: message.into(),
    })
}

/// The 404 body for a `database` parameter that names no watched database.
#[cfg(feature = "postgres")]
pub(super) fn unknown_database(name: &str) -> Json<ErrorBody> {
    error_body(
        "not_found",
        format!("parameter `database`: no watched database {name:?}"),
    )
}

impl ApiError {
    /// 400 with a message that names the field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(body(StatusCode::BAD_REQUEST, message))
    }

    /// 401 with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(body(StatusCode::UNAUTHORIZED, message), "Bearer".into())
    }
}

/// Maps an extractor error to the documented variant of its status.
fn from_parse_error(error: poem::Error) -> ApiError {
    let status = error.status();
    let message = error.to_string();
    match status {
        StatusCode::UNAUTHORIZED => ApiError::unauthorized(
            "missing or malformed Authorization header; expected `Bearer <token>`",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(body(status, message)),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(body(status, message)),
        _ => ApiError::BadRequest(body(StatusCode::BAD_REQUEST, message)),
    }
}
