//! [`ApiError`], the documented error answers of every operation, and the
//! handler that turns poem-openapi's parse errors (malformed JSON, wrong
//! types, failed validators, unknown fields, a missing token) into them;
//! and [`refusal`], the one place a use case's [`ServiceError`] becomes a
//! documented answer (each operation keeps its own response enum, so the
//! spec lists exactly the statuses it can answer; [`answers_refusals!`]
//! lets each enum take a [`Refusal`]).

use poem::http::StatusCode;
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;

use crate::http::{ErrorBody, error_code};
#[cfg(feature = "postgres")]
use crate::service::ServiceError;

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

/// The documented statuses a refusal of a use case is answered with.
#[cfg(feature = "postgres")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RefusalStatus {
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 409.
    Conflict,
    /// 422.
    Failed,
    /// 503.
    Unavailable,
}

/// A use case's refusal as the API answers it.
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: RefusalStatus,
    pub body: Json<ErrorBody>,
}

#[cfg(feature = "postgres")]
fn refused(status: RefusalStatus, error: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        body: error_body(error, message),
    }
}

/// How the request named the database, for the wording of a 404.
#[cfg(feature = "postgres")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NamedBy {
    /// The `database` query parameter.
    Parameter,
    /// The `database` field (the explain operations).
    Field,
}

/// The answer to `error`: a 400 as an [`ApiError`], anything else as the
/// operation's own documented variant.
#[cfg(feature = "postgres")]
pub(super) fn refusal(error: ServiceError, named_by: NamedBy) -> Result<Refusal, ApiError> {
    use crate::pg::actions::explain::ExplainError;
    use crate::pg::actions::maintenance::MaintenanceError;
    use crate::pg::actions::signal::SignalError;
    use RefusalStatus::{Conflict, Failed, Forbidden, NotFound, Unavailable};
    let cannot_reach = |database: &str| format!("database {database:?} cannot be reached");
    Ok(match error {
        ServiceError::NoDatabase => refused(Unavailable, "unavailable", error.to_string()),
        ServiceError::UnknownDatabase(name) => match named_by {
            NamedBy::Parameter => Refusal {
                status: NotFound,
                body: unknown_database(&name),
            },
            NamedBy::Field => refused(
                NotFound,
                "not_found",
                format!("field `database`: no watched database {name:?}"),
            ),
        },
        ServiceError::Maintenance(error) => match error {
            MaintenanceError::BadRequest(message) => return Err(ApiError::bad_request(message)),
            MaintenanceError::NotFound(_) => refused(NotFound, "not_found", error.to_string()),
            MaintenanceError::Forbidden(_) => refused(Forbidden, "forbidden", error.to_string()),
            MaintenanceError::Busy(_) => refused(Conflict, "conflict", error.to_string()),
            MaintenanceError::Unavailable(_) => {
                refused(Unavailable, "unavailable", error.to_string())
            }
        },
        ServiceError::Signal { database, error } => match error {
            SignalError::NotASession(_) => refused(NotFound, "not_found", error.to_string()),
            SignalError::Forbidden(_) => refused(Forbidden, "forbidden", error.to_string()),
            SignalError::Unavailable(_) => {
                refused(Unavailable, "unavailable", cannot_reach(&database))
            }
        },
        ServiceError::Explain { database, error } => match error {
            ExplainError::NotSelect(_) | ExplainError::Params(_) => {
                return Err(ApiError::bad_request(error.to_string()));
            }
            ExplainError::NotFound(_) => refused(NotFound, "not_found", error.to_string()),
            ExplainError::Refused(_) => refused(Failed, "explain_refused", error.to_string()),
            ExplainError::Failed(_) => refused(Failed, "explain_failed", error.to_string()),
            ExplainError::Unavailable(_) => {
                refused(Unavailable, "unavailable", cannot_reach(&database))
            }
        },
    })
}

/// Lets an operation's response enum take a [`Refusal`]: each documented
/// status to its variant. A refusal the operation cannot meet (none
/// today) falls to its 503, the one status every database operation has.
#[cfg(feature = "postgres")]
macro_rules! answers_refusals {
    ($response:ty { $($status:ident => $variant:ident),+ $(,)? }) => {
        impl From<$crate::api::error::Refusal> for $response {
            fn from(refusal: $crate::api::error::Refusal) -> Self {
                use $crate::api::error::RefusalStatus;
                match refusal.status {
                    $(RefusalStatus::$status => Self::$variant(refusal.body),)+
                    #[allow(unreachable_patterns)]
                    _ => Self::Unavailable(refusal.body),
                }
            }
        }
    };
}
#[cfg(feature = "postgres")]
pub(super) use answers_refusals;

/// Why an operation did not answer 200: a 400/401 ([`ApiError`]) or one of
/// its own documented refusals. `?` works on both, and [`answer`] turns
/// it back into the operation's result.
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub(super) enum Failure {
    /// A 400 or 401.
    Api(ApiError),
    /// A documented refusal of the operation.
    Refused(Refusal),
}

#[cfg(feature = "postgres")]
impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

#[cfg(feature = "postgres")]
impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

#[cfg(feature = "postgres")]
impl Failure {
    /// A use case's error, the database named as `named_by` says.
    pub(super) fn service(error: ServiceError, named_by: NamedBy) -> Self {
        match refusal(error, named_by) {
            Ok(refusal) => Self::Refused(refusal),
            Err(error) => Self::Api(error),
        }
    }
}

#[cfg(feature = "postgres")]
impl From<ServiceError> for Failure {
    fn from(error: ServiceError) -> Self {
        Self::service(error, NamedBy::Parameter)
    }
}

/// The operation's result: its answer, or its failure as the documented
/// variant.
#[cfg(feature = "postgres")]
pub(super) fn answer<R: From<Refusal>>(result: Result<R, Failure>) -> Result<R, ApiError> {
    match result {
        Ok(response) => Ok(response),
        Err(Failure::Api(error)) => Err(error),
        Err(Failure::Refused(refusal)) => Ok(refusal.into()),
    }
}
