//! The history store's metrics, fed by [`crate::store`]: its size on disk
//! against its cap, whether it is writing, the batches it wrote and the
//! ones it dropped (by a closed set of reasons, so the family is bounded).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// Why a batch of history was not written.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DropReason {
    /// The writer's queue was full (the writer is behind).
    queue_full,
    /// The file reached its size cap or the disk is full.
    full,
    /// The store could not be opened or was found corrupt: the agent runs
    /// on its in-memory view only.
    unavailable,
    /// Any other write error (I/O).
    error,
}

/// Label of `perfscope_store_dropped_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// Why.
    pub reason: DropReason,
}

/// The store's families.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// `perfscope_store_bytes`: the file and its write-ahead log on disk.
    pub bytes: Gauge,
    /// `perfscope_store_max_bytes`: the cap (`PERFSCOPE_STORE_MAX_BYTES`).
    pub max_bytes: Gauge,
    /// `perfscope_store_up`: 1 while the store is writing.
    pub up: Gauge,
    /// `perfscope_store_writes_total`: batches written.
    pub writes: Counter,
    /// `perfscope_store_dropped_total{reason}`: batches not written.
    pub dropped: Family<DropLabels, Counter>,
}

impl StoreMetrics {
    /// Defines and registers the families.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register_with_unit(
            "perfscope_store",
            "Size of the history store on disk (the file and its write-ahead log)",
            Unit::Bytes,
            metrics.bytes.clone(),
        );
        registry.register_with_unit(
            "perfscope_store_max",
            "Size cap of the history store (PERFSCOPE_STORE_MAX_BYTES)",
            Unit::Bytes,
            metrics.max_bytes.clone(),
        );
        registry.register(
            "perfscope_store_up",
            "Whether the history store is writing (0: off, unopenable or corrupt; the agent keeps its in-memory view)",
            metrics.up.clone(),
        );
        registry.register(
            "perfscope_store_writes",
            "Batches of history written to the store",
            metrics.writes.clone(),
        );
        registry.register(
            "perfscope_store_dropped",
            "Batches of history not written, by reason (queue_full, full, unavailable, error)",
            metrics.dropped.clone(),
        );
        // Every reason at 0 from the start, so a rate over them works.
        for reason in [
            DropReason::queue_full,
            DropReason::full,
            DropReason::unavailable,
            DropReason::error,
        ] {
            let _ = metrics.dropped.get_or_create(&DropLabels { reason });
        }
        metrics
    }

    /// Counts one dropped batch.
    pub fn drop_one(&self, reason: DropReason) {
        self.dropped.get_or_create(&DropLabels { reason }).inc();
    }
}
