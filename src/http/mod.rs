//! Poem middleware, each an `Xxx` / `XxxEndpoint` pair in its own file:
//! request metrics by route template, JSON error bodies, a request-body
//! limit and deadline, and `Allow` on 405 answers; and the acceptors that
//! guard the agent's own listener (the head deadline, HTTP/2 refused, the
//! connection cap, TLS offering HTTP/1.1 only).

mod allow_header;
mod body_deadline;
mod body_limit;
mod connection_limit;
mod core;
mod header_timeout;
mod json_errors;
#[cfg(feature = "otlp")]
pub mod otel;
mod panic;
mod request_metrics;
#[cfg(feature = "sentry")]
pub mod sentry;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tower")]
pub mod tower;

pub use allow_header::{AllowHeader, AllowHeaderEndpoint};
pub use body_deadline::{BodyDeadline, BodyDeadlineEndpoint};
pub use body_limit::{BodyLimit, BodyLimitEndpoint};
pub use connection_limit::{ConnectionGauges, ConnectionLimit, Counted};
pub use core::{RequestCore, Started};
pub use header_timeout::{HeadDeadline, HeaderTimeout};
pub use json_errors::{
    ErrorBody, JsonErrors, JsonErrorsEndpoint, UnmatchedRoute, error_code, error_response,
};
pub use panic::{JsonPanicHandler, catch_panic};
pub use request_metrics::{RequestMetrics, RequestMetricsEndpoint};
