//! The in-process Prometheus exporter: one registry, built once at start-up
//! and then shared read-only, and one file per subsystem's metric set.
//!
//! Each subsystem defines its families once, with typed label sets, base
//! units and HELP text ([`http`], [`runtime`], [`process`], [`custom`]).
//! Families whose labels can take outside values are [`BoundedFamily`]s, so
//! no input can grow the exposition without bound. Exposition is
//! OpenMetrics text, as prometheus-client encodes it.

pub mod alerts;
pub mod batch;
pub mod bounded;
#[cfg(feature = "postgres")]
pub mod budget;
pub mod cache;
pub mod custom;
pub mod db;
pub mod histogram;
pub mod http;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "postgres")]
pub mod pg_activity;
#[cfg(feature = "postgres")]
pub mod pg_ash;
#[cfg(feature = "postgres")]
pub mod pg_io;
#[cfg(feature = "postgres")]
pub mod pg_replication;
pub mod process;
pub mod runtime;
pub mod sketch;
pub mod sketches;
#[cfg(feature = "store")]
pub mod store;

pub use bounded::{BoundedFamily, OverflowLabels, SeriesAccounting};
pub use histogram::{AtomicHistogram, Buckets, HistogramSnapshot, StoredExemplar, TracedBuckets};
pub use sketch::{AtomicSketch, Sketch};
pub use sketches::SketchMap;

use prometheus_client::registry::Registry;

/// Content type of the exposition: OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Encodes the whole registry as OpenMetrics text, `# EOF` included.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    histogram::encode(registry, TRACED_FAMILIES)
}

/// The families whose buckets carry trace-id exemplars.
pub const TRACED_FAMILIES: &[&str] =
    &["http_request_duration_seconds", "db_query_duration_seconds"];

/// Implements `EncodeLabelValue` for enums with an `as_str`, so a label is
/// typed where it is set and printed by its one stable name.
#[cfg(feature = "postgres")]
macro_rules! label_values {
    ($($kind:ty),* $(,)?) => {
        $(
            impl prometheus_client::encoding::EncodeLabelValue for $kind {
                fn encode(
                    &self,
                    encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
                ) -> Result<(), std::fmt::Error> {
                    std::fmt::Write::write_str(encoder, self.as_str())
                }
            }
        )*
    };
}
#[cfg(feature = "postgres")]
pub(crate) use label_values;
