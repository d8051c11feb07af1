//! The one place a refused use case ([`crate::service::ServiceError`])
//! becomes the status of a page; the page's sentence is the error's own.

use poem::http::StatusCode;

/// The status a refused use case is answered with on the pages.
#[cfg(feature = "postgres")]
pub(crate) fn refusal_status(error: &crate::service::ServiceError) -> StatusCode {
    use crate::pg::activity::SignalError;
    use crate::pg::explain::ExplainError;
    use crate::pg::maintenance::MaintenanceError;
    use crate::service::ServiceError;
    match error {
        ServiceError::NoDatabase => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::UnknownDatabase(_) => StatusCode::NOT_FOUND,
        ServiceError::Maintenance(error) => match error {
            MaintenanceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MaintenanceError::NotFound(_) => StatusCode::NOT_FOUND,
            MaintenanceError::Forbidden(_) => StatusCode::FORBIDDEN,
            MaintenanceError::Busy(_) => StatusCode::CONFLICT,
            MaintenanceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
        ServiceError::Signal { error, .. } => match error {
            SignalError::NotASession(_) => StatusCode::NOT_FOUND,
            SignalError::Forbidden(_) => StatusCode::FORBIDDEN,
            SignalError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
        ServiceError::Explain { error, .. } => match error {
            ExplainError::NotSelect(_) | ExplainError::Params(_) => StatusCode::BAD_REQUEST,
            ExplainError::NotFound(_) => StatusCode::NOT_FOUND,
            ExplainError::Refused(_) | ExplainError::Failed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ExplainError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}
