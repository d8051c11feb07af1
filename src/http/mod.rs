//! Poem middleware, each an `Xxx` / `XxxEndpoint` pair in its own file:
//! request metrics by route template, JSON error bodies, a request-body
//! limit, and `Allow` on 405 answers.

mod allow_header;
mod body_limit;
mod header_timeout;
mod json_errors;
#[cfg(feature = "otlp")]
pub mod otel;
mod panic;
mod request_metrics;
#[cfg(feature = "sentry")]
pub mod sentry;

pub use allow_header::{AllowHeader, AllowHeaderEndpoint};
pub use body_limit::{BodyLimit, BodyLimitEndpoint};
pub use header_timeout::{HeadDeadline, HeaderTimeout};
pub use json_errors::{
    ErrorBody, JsonErrors, JsonErrorsEndpoint, UnmatchedRoute, error_code, error_response,
};
pub use panic::{JsonPanicHandler, catch_panic};
pub use request_metrics::{RequestMetrics, RequestMetricsEndpoint};
