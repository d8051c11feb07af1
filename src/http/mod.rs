//! Poem middleware, each an `Xxx` / `XxxEndpoint` pair in its own file:
//! request metrics by route template, JSON error bodies, and a request-body
//! limit.

mod body_limit;
mod json_errors;
mod request_metrics;

pub use body_limit::{BodyLimit, BodyLimitEndpoint};
pub use json_errors::{
    ErrorBody, JsonErrors, JsonErrorsEndpoint, UnmatchedRoute, error_code, error_response,
};
pub use request_metrics::{RequestMetrics, RequestMetricsEndpoint};
