//! `pg_replication_*`: what the replication reader saw on its last pass of
//! each watched database's server — replay lag per standby (on a standby,
//! `standby="self"`), and per replication slot whether it is active and the
//! WAL it retains. At most [`MAX_EXPORTED`] standbys and slots per
//! database, so inside the series cap.
//!
//! It stays in `metrics/` rather than beside the readers in `pg/`: every
//! metric family of the crate is defined under `metrics/` (names, units,
//! labels and the series cap in one place, which the dashboards, the
//! alert rules and the docs are checked against), and a collector is only
//! the scrape-time view of what [`crate::pg::readers`] keep — it depends
//! on the readers, never the other way round.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::pg::Watched;
use crate::pg::readers::replication::{MAX_EXPORTED, ReplicationSnapshot};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StandbyLabels {
    database: Arc<str>,
    standby: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlotLabels {
    database: Arc<str>,
    slot: String,
}

/// A slot family: name, help, unit, value.
type SlotFamily = (
    &'static str,
    &'static str,
    Option<Unit>,
    fn(&crate::pg::readers::replication::Slot) -> Option<f64>,
);

/// Encodes the latest replication pass of every watched database.
#[derive(Debug)]
pub struct ReplicationCollector {
    /// The databases.
    pub watched: Arc<Watched>,
}

impl Collector for ReplicationCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshots: Vec<(Arc<str>, Arc<ReplicationSnapshot>)> = self
            .watched
            .all()
            .iter()
            .filter_map(|db| db.replication.latest().map(|r| (db.name.clone(), r)))
            .collect();
        if snapshots.is_empty() {
            return Ok(());
        }
        {
            let mut lag = encoder.encode_descriptor(
                "pg_replication_lag",
                "Replay lag of each standby (on a standby: since its last replayed transaction, 0 when caught up)",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            for (database, snapshot) in &snapshots {
                for standby in snapshot.standbys.iter().take(MAX_EXPORTED) {
                    let Some(seconds) = standby.replay_lag_seconds else {
                        continue;
                    };
                    let labels = StandbyLabels {
                        database: database.clone(),
                        standby: standby.name.clone(),
                    };
                    ConstGauge::new(seconds).encode(lag.encode_family(&labels)?)?;
                }
            }
        }
        let families: [SlotFamily; 2] = [
            (
                "pg_replication_slot_retained",
                "WAL each replication slot keeps the server from removing",
                Some(Unit::Bytes),
                |s| s.retained_bytes,
            ),
            (
                "pg_replication_slot_active",
                "Whether a consumer is connected to each replication slot",
                None,
                |s| Some(if s.active { 1.0 } else { 0.0 }),
            ),
        ];
        for (name, help, unit, value) in families {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (database, snapshot) in &snapshots {
                for slot in snapshot.slots.iter().take(MAX_EXPORTED) {
                    let Some(v) = value(slot) else { continue };
                    let labels = SlotLabels {
                        database: database.clone(),
                        slot: slot.name.clone(),
                    };
                    ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}
