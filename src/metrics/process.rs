//! The standard `process_*` metrics, read from the kernel at scrape time by
//! a [`Collector`], so they cost nothing between scrapes:
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`,
//! `process_threads`, `process_start_time_seconds`, the cgroup v2 limit as
//! `process_memory_limit_bytes`, and jemalloc's statistics as
//! `process_memory_usage_bytes{type}`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::runtime::process::ProcessSnapshot;

/// Label of `process_memory_usage_bytes`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemoryTypeLabel {
    r#type: &'static str,
}

/// Encodes a fresh [`ProcessSnapshot`] on every scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    let metric_encoder = encoder.encode_descriptor(name, help, unit, metric.metric_type())?;
    metric.encode(metric_encoder)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = ProcessSnapshot::read();
        let bytes = Unit::Bytes;
        let seconds = Unit::Seconds;
        gauge(
            &mut encoder,
            "process_resident_memory",
            "Resident memory size",
            Some(&bytes),
            snapshot.resident_bytes as f64,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory",
            "Virtual memory size",
            Some(&bytes),
            snapshot.virtual_bytes as f64,
        )?;
        let cpu = ConstCounter::new(snapshot.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent",
            None,
            cpu.metric_type(),
        )?)?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors",
            None,
            snapshot.open_fds as f64,
        )?;
        if let Some(max) = snapshot.max_fds {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Limit on open file descriptors",
                None,
                max as f64,
            )?;
        }
        gauge(
            &mut encoder,
            "process_threads",
            "OS threads of the process",
            None,
            snapshot.threads as f64,
        )?;
        if let Some(start) = snapshot.start_time_seconds {
            gauge(
                &mut encoder,
                "process_start_time",
                "Start time of the process since the Unix epoch",
                Some(&seconds),
                start,
            )?;
        }
        if let Some(limit) = snapshot.memory_limit_bytes {
            gauge(
                &mut encoder,
                "process_memory_limit",
                "Memory limit of the process's cgroup (cgroup v2 memory.max)",
                Some(&bytes),
                limit as f64,
            )?;
        }
        if let Some(stats) = snapshot.allocator {
            let mut family = encoder.encode_descriptor(
                "process_memory_usage",
                "Allocator (jemalloc) statistics by type",
                Some(&bytes),
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (kind, value) in [
                ("allocated", stats.allocated),
                ("active", stats.active),
                ("resident", stats.resident),
                ("mapped", stats.mapped),
                ("metadata", stats.metadata),
                ("retained", stats.retained),
            ] {
                let labels = MemoryTypeLabel { r#type: kind };
                ConstGauge::new(value as f64).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
