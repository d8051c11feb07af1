//! `pg_io_*`: the server's cumulative `pg_stat_io` figures as the I/O
//! reader saw them on its last pass — operations, bytes and (with
//! `track_io_timing`) time, by backend type, object, context and
//! operation. Counters: the server's own totals since its statistics
//! reset, so `rate()` works across scrapes.
//!
//! The view is server-wide, so its series are exported once per server,
//! not once per watched database: under the `database` label of the
//! watched database of that server whose name sorts first (servers told
//! apart by the pools' views key, as the shared reads are), a choice that
//! does not depend on the order the databases were watched in. Repeating them under every database would multiply a few
//! hundred series by the number of databases, and a `sum` over databases
//! would count the same I/O many times. At most [`MAX_EXPORTED`] rows per
//! server, in the view's order (backend type, object, context), so the
//! families stay inside the series cap; a server before PostgreSQL 16
//! has none.
//!
//! It stays in `metrics/` beside the other scrape-time Postgres
//! collectors (see [`super::pg_replication`]): it depends on the readers,
//! never the other way round.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Unit;

use crate::pg::Watched;
use crate::pg::readers::io::{IoRow, IoSnapshot};

/// `pg_stat_io` rows exported per server at most (the view has 79 on 18,
/// most of them zero and not read).
pub const MAX_EXPORTED: usize = 64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IoLabels {
    database: Arc<str>,
    backend_type: String,
    object: String,
    context: String,
    op: &'static str,
}

/// An operation's label and its value in a row.
type Op = (&'static str, fn(&IoRow) -> Option<f64>);

/// `pg_io_operations_total`'s operations.
const OPERATIONS: [Op; 5] = [
    ("reads", |r| Some(r.reads as f64)),
    ("writes", |r| Some(r.writes as f64)),
    ("extends", |r| Some(r.extends as f64)),
    ("hits", |r| Some(r.hits as f64)),
    ("evictions", |r| Some(r.evictions as f64)),
];

/// `pg_io_bytes_total`'s operations.
const BYTES: [Op; 3] = [
    ("reads", |r| Some(r.read_bytes)),
    ("writes", |r| Some(r.write_bytes)),
    ("extends", |r| Some(r.extend_bytes)),
];

/// `pg_io_time_seconds_total`'s operations (only with `track_io_timing`).
const TIME: [Op; 2] = [
    ("reads", |r| r.read_time_ms.map(|ms| ms / 1_000.0)),
    ("writes", |r| r.write_time_ms.map(|ms| ms / 1_000.0)),
];

/// Encodes the latest `pg_stat_io` pass of every watched server.
#[derive(Debug)]
pub struct IoCollector {
    /// The databases.
    pub watched: Arc<Watched>,
}

impl IoCollector {
    /// The last pass of each server, under the name of its watched
    /// database that sorts first.
    fn servers(&self) -> Vec<(Arc<str>, Arc<IoSnapshot>)> {
        let mut first: BTreeMap<String, Arc<crate::pg::WatchedDatabase>> = BTreeMap::new();
        for db in self.watched.all() {
            first
                .entry(db.pool.views_key().to_owned())
                .and_modify(|kept| {
                    if db.name < kept.name {
                        *kept = db.clone();
                    }
                })
                .or_insert(db);
        }
        first
            .into_values()
            .filter_map(|db| {
                let snapshot = db.io.latest().filter(|s| s.supported())?;
                Some((db.name.clone(), snapshot))
            })
            .collect()
    }
}

impl Collector for IoCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let servers = self.servers();
        if servers.is_empty() {
            return Ok(());
        }
        let families: [(&str, &str, Option<Unit>, &[Op]); 3] = [
            (
                "pg_io_operations",
                "I/O operations of the server by backend type, object, context and operation (pg_stat_io, PostgreSQL 16+; exported once per server, under its watched database whose name sorts first)",
                None,
                &OPERATIONS,
            ),
            (
                "pg_io",
                "Bytes read, written and extended by the server by backend type, object and context (pg_stat_io, PostgreSQL 16+)",
                Some(Unit::Bytes),
                &BYTES,
            ),
            (
                "pg_io_time",
                "Time the server spent reading and writing by backend type, object and context (pg_stat_io with track_io_timing on)",
                Some(Unit::Seconds),
                &TIME,
            ),
        ];
        for (name, help, unit, ops) in families {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
            for (database, snapshot) in &servers {
                for row in snapshot.rows.iter().take(MAX_EXPORTED) {
                    for (op, value) in ops {
                        let Some(v) = value(row) else { continue };
                        let labels = IoLabels {
                            database: database.clone(),
                            backend_type: row.backend_type.clone(),
                            object: row.object.clone(),
                            context: row.context.clone(),
                            op,
                        };
                        ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}
