//! Prometheus as the pages' engine when one process is not enough: with
//! `PERFSCOPE_PROMETHEUS_URL` and `PERFSCOPE_PROMETHEUS_SELECTOR`, the
//! route charts read `http_request_duration_seconds` of every replica of
//! the service from a Prometheus server (PromQL over its HTTP API), where
//! this process's own history sees only its own requests and only for an
//! hour.
//!
//! Prometheus is an outside service here, and an unreliable one as far as
//! the pages are concerned: `client` bounds every call (deadline, body
//! size, series and points) and treats every label it returns as untrusted
//! text; `routes` builds the queries from the validated selector and joins
//! their answers into the same [`crate::history::RouteSummary`] rows the
//! in-process history gives, so a page can fall back to its own view when
//! Prometheus is down or answers nonsense.

mod client;
mod routes;

pub use client::{Client, PrometheusError};
pub use routes::route_summaries;
