//! Telemetry out: where perfscope reports beyond its own metrics. Each
//! sink queues boundedly and drops and counts rather than waiting
//! (`perfscope_telemetry_dropped_total{sink}`), so no sink can slow a
//! request. [`sentry`] (feature `sentry`, on with `SENTRY_DSN`) sends a
//! transaction per request with a span per query and measurement; the
//! alert webhooks live in [`crate::alerts::webhook`].

#[cfg(feature = "sentry")]
pub mod sentry;
