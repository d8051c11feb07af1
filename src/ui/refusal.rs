//! The one place a refused use case ([`crate::service::ServiceError`])
//! becomes the status and the sentence of a page: the error's own
//! sentence, but for a database named by a form field.

use poem::http::StatusCode;

/// The status and the sentence a refused use case is answered with.
pub(crate) fn refusal(error: &crate::service::ServiceError) -> (StatusCode, String) {
    let message = match error {
        crate::service::ServiceError::NoDatabase => {
            "No database is configured: set DATABASE_URL.".to_owned()
        }
        crate::service::ServiceError::UnknownDatabase(name) => {
            format!("Field `database`: no watched database {name:?}.")
        }
        error => error.to_string(),
    };
    (refusal_status(error), message)
}

/// The status a refused use case is answered with on the pages.
fn refusal_status(error: &crate::service::ServiceError) -> StatusCode {
    use crate::pg::actions::explain::ExplainError;
    use crate::pg::actions::maintenance::MaintenanceError;
    use crate::pg::actions::signal::SignalError;
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
