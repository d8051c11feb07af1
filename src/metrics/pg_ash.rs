//! `pg_ash_*` and `perfscope_ash_*`: the active session history as
//! metrics, read from the ring ([`crate::pg::ash::AshRing`]) at scrape
//! time.
//!
//! Bounded by construction: the average active sessions (AAS) over the
//! last minute by wait class (a fixed set of eleven classes per watched
//! database); the top [`TOP`] statements (by fingerprint, never the text)
//! and routes by database time over the last five minutes, the rest in
//! one `other` series; and the ring's own size. A route comes from
//! another app's SQL comment, so it is untrusted: cut to
//! [`MAX_ROUTE_CHARS`] characters, control characters dropped, and only
//! the top ones become series.
//!
//! Every class of every watched database is exported, zero when no
//! session was seen: a stacked chart and `sum by (database)` need series
//! that exist while the database is idle (as node_exporter's CPU modes
//! do), and eleven per database is a fixed cost. Whether samples are
//! being taken at all is `perfscope_ash_minutes` (0 while none is kept).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::pg::Watched;
use crate::pg::ash::answer::DbTimeRow;
use crate::pg::ash::sampler::SamplerStatus;
use crate::pg::ash::{AshRing, By, DbTime, WaitClass};

/// Statements and routes exported per database, besides `other`.
pub const TOP: usize = 10;
/// The longest route label, characters.
pub const MAX_ROUTE_CHARS: usize = 120;
/// The range of the wait-class AAS, seconds.
const CLASS_RANGE_SECS: u64 = 60;
/// The range of the top statements and routes, seconds.
const TOP_RANGE_SECS: u64 = 5 * 60;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    database: Arc<str>,
    wait_event_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatementLabels {
    database: Arc<str>,
    fingerprint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    database: Arc<str>,
    route: String,
}

/// Encodes the active session history of every watched database.
#[derive(Debug)]
pub struct AshCollector {
    /// The ring the sampler fills.
    pub ring: Arc<AshRing>,
    /// The databases.
    pub watched: Arc<Watched>,
}

impl Collector for AshCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = unix_now();
        let databases: Vec<Arc<str>> = self.watched.all().iter().map(|w| w.name.clone()).collect();
        {
            let mut family = encoder.encode_descriptor(
                "pg_ash_active_sessions",
                "Average active sessions over the last minute by wait class (CPU: active, not waiting), sampled from pg_stat_activity",
                None,
                MetricType::Gauge,
            )?;
            let each = self.each(now, CLASS_RANGE_SECS, By::Wait, usize::MAX);
            for database in &databases {
                let totals = each
                    .get(database)
                    .map(class_totals)
                    .unwrap_or_else(|| WaitClass::ALL.iter().map(|class| (*class, 0.0)).collect());
                for (class, aas) in totals {
                    let labels = ClassLabels {
                        database: database.clone(),
                        wait_event_type: class.as_str(),
                    };
                    ConstGauge::new(aas).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "pg_ash_statement_active_sessions",
                "Average active sessions over the last 5 minutes of the top statements by database time (fingerprint of the normalized text), the rest as fingerprint=\"other\"",
                None,
                MetricType::Gauge,
            )?;
            let each = self.each(now, TOP_RANGE_SECS, By::Statement, TOP);
            for database in &databases {
                let Some(answer) = each.get(database) else {
                    continue;
                };
                for (fingerprint, aas) in statement_series(answer) {
                    let labels = StatementLabels {
                        database: database.clone(),
                        fingerprint,
                    };
                    ConstGauge::new(aas).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "pg_ash_route_active_sessions",
                "Average active sessions over the last 5 minutes of the top routes by database time (from the statements' sqlcommenter tags), the rest as route=\"other\"",
                None,
                MetricType::Gauge,
            )?;
            let each = self.each(now, TOP_RANGE_SECS, By::Route, TOP);
            for database in &databases {
                let Some(answer) = each.get(database) else {
                    continue;
                };
                for (route, aas) in route_series(answer) {
                    let labels = RouteLabels {
                        database: database.clone(),
                        route,
                    };
                    ConstGauge::new(aas).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let stats = self.ring.stats();
        let gauges = [
            (
                "perfscope_ash_memory",
                "Memory the active session history holds (estimated from what it keeps)",
                Some(Unit::Bytes),
                stats.bytes as f64,
            ),
            (
                "perfscope_ash_minutes",
                "Minutes the active session history holds",
                None,
                stats.minutes as f64,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            ConstGauge::new(value).encode(family)?;
        }
        let dropped = encoder.encode_descriptor(
            "perfscope_ash_dropped_minutes",
            "Minutes of active session history dropped to stay within PERFSCOPE_ASH_MEMORY",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(stats.dropped_minutes).encode(dropped)?;
        self.encode_samplers(&mut encoder)
    }
}

impl AshCollector {
    /// Every database's answer over the last `range` seconds, from one
    /// pass over the ring.
    fn each(&self, now: u64, range: u64, by: By, top: usize) -> HashMap<Arc<str>, DbTime> {
        self.ring
            .db_time_each(now.saturating_sub(range), now, by, top)
            .into_iter()
            .collect()
    }

    /// The samplers' counters: one sampler per server, its series under
    /// the name of its watched database that sorts first (as pg_stat_io's:
    /// a series per database would count the server's samples once per
    /// database).
    fn encode_samplers(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut samplers: BTreeMap<Arc<str>, Arc<SamplerStatus>> = BTreeMap::new();
        let mut seen: Vec<*const SamplerStatus> = Vec::new();
        let mut watched = self.watched.all();
        watched.sort_by(|a, b| a.name.cmp(&b.name));
        for database in watched {
            let pointer = Arc::as_ptr(&database.ash);
            if !seen.contains(&pointer) {
                seen.push(pointer);
                samplers.insert(database.name.clone(), database.ash.clone());
            }
        }
        let counters: [SamplerCounter; 4] = [
            (
                "perfscope_ash_samples",
                "Samples of pg_stat_activity the active session history took, per server (under its first watched database)",
                |s| s.samples.load(Ordering::Relaxed),
            ),
            (
                "perfscope_ash_sample_errors",
                "Samples of pg_stat_activity that failed (error, deadline, broken connection), per server",
                |s| s.errors.load(Ordering::Relaxed),
            ),
            (
                "perfscope_ash_cut_comments",
                "Statement texts seen with their sqlcommenter comment cut at track_activity_query_size (their tags lost), per server",
                |s| s.cut_comments.load(Ordering::Relaxed),
            ),
            (
                "perfscope_ash_connection_released",
                "Times the sampler gave its kept connection back because the server's free slots fell under PERFSCOPE_DB_CONNECTION_HEADROOM",
                |s| s.released.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, read) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (database, status) in &samplers {
                let labels = SamplerLabels {
                    database: database.clone(),
                };
                ConstCounter::new(read(status)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// A sampler counter's name, help and reading.
type SamplerCounter = (&'static str, &'static str, fn(&SamplerStatus) -> u64);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SamplerLabels {
    database: Arc<str>,
}

/// Now, Unix seconds (the ring's clock: the sampler stamps samples so).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// AAS by wait class, every class (zero when none was seen).
fn class_totals(answer: &DbTime) -> Vec<(WaitClass, f64)> {
    let mut totals: Vec<(WaitClass, f64)> = WaitClass::ALL.iter().map(|c| (*c, 0.0)).collect();
    for row in answer.top.iter().chain(&answer.other) {
        for wait in &row.waits {
            if let Some(total) = totals
                .iter_mut()
                .find(|(class, _)| class.as_str() == wait.class)
            {
                total.1 += wait.aas;
            }
        }
    }
    totals
}

/// The top statements by fingerprint, then `other`.
fn statement_series(answer: &DbTime) -> Vec<(String, f64)> {
    let mut series: BTreeMap<String, f64> = BTreeMap::new();
    for row in &answer.top {
        let fingerprint = row
            .fingerprint
            .clone()
            .unwrap_or_else(|| "other".to_owned());
        *series.entry(fingerprint).or_default() += row.aas;
    }
    add_other(&mut series, answer.other.as_ref());
    series.into_iter().collect()
}

/// The top routes, each label made safe, then `other`.
fn route_series(answer: &DbTime) -> Vec<(String, f64)> {
    let mut series: BTreeMap<String, f64> = BTreeMap::new();
    for row in &answer.top {
        // Two routes that differ only past the cut or in control
        // characters share a series.
        *series.entry(route_label(&row.key)).or_default() += row.aas;
    }
    add_other(&mut series, answer.other.as_ref());
    series.into_iter().collect()
}

fn add_other(series: &mut BTreeMap<String, f64>, other: Option<&DbTimeRow>) {
    if let Some(other) = other {
        *series.entry("other".to_owned()).or_default() += other.aas;
    }
}

/// A route as a label value: control characters dropped, at most
/// [`MAX_ROUTE_CHARS`] characters, never empty.
pub fn route_label(route: &str) -> String {
    let label: String = route
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ROUTE_CHARS)
        .collect();
    if label.trim().is_empty() {
        "(empty)".to_owned()
    } else if label == "other" {
        // A route an app named `other` is not the rest of the routes.
        "(route) other".to_owned()
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::ash::answer::ClassTime;

    fn row(key: &str, fingerprint: Option<&str>, aas: f64, class: &str) -> DbTimeRow {
        DbTimeRow {
            key: key.to_owned(),
            fingerprint: fingerprint.map(str::to_owned),
            query_id: None,
            seconds: aas * 60.0,
            aas,
            share: 0.0,
            waits: vec![ClassTime {
                class: class.to_owned(),
                aas,
            }],
            trace_ids: Vec::new(),
            blocked_by: Vec::new(),
        }
    }

    fn answer(top: Vec<DbTimeRow>, other: Option<DbTimeRow>) -> DbTime {
        DbTime {
            database: None,
            since: 0,
            until: 60,
            by: By::Wait,
            interval_seconds: 1.0,
            samples: 60,
            seconds: 0.0,
            aas: 0.0,
            step_seconds: 10,
            series: Vec::new(),
            top,
            other,
            cut_comments: 0,
        }
    }

    #[test]
    fn every_class_is_a_series_and_rows_add_into_their_class() {
        let totals = class_totals(&answer(
            vec![
                row("CPU", None, 1.5, "CPU"),
                row("Lock:transactionid", None, 0.5, "Lock"),
            ],
            Some(row("other", None, 0.25, "Lock")),
        ));
        assert_eq!(totals.len(), WaitClass::ALL.len());
        assert_eq!(totals[0], (WaitClass::Cpu, 1.5));
        assert!(totals.contains(&(WaitClass::Lock, 0.75)), "{totals:?}");
        assert!(totals.contains(&(WaitClass::Io, 0.0)), "{totals:?}");
    }

    #[test]
    fn route_labels_are_cut_and_cleaned_and_collisions_share_a_series() {
        let long = "/a".repeat(200);
        assert_eq!(route_label(&long).chars().count(), MAX_ROUTE_CHARS);
        assert_eq!(route_label("/pay\n\u{1b}[31m"), "/pay[31m");
        assert_eq!(route_label("\u{7}"), "(empty)");
        assert_eq!(route_label("other"), "(route) other");
        let series = route_series(&answer(
            vec![
                row("/pay\n", None, 1.0, "CPU"),
                row("/pay", None, 2.0, "CPU"),
            ],
            Some(row("other", None, 0.5, "CPU")),
        ));
        assert_eq!(
            series,
            vec![("/pay".to_owned(), 3.0), ("other".to_owned(), 0.5)]
        );
        let statements = statement_series(&answer(
            vec![row("select 1", Some("00000000000000ab"), 1.0, "CPU")],
            None,
        ));
        assert_eq!(statements, vec![("00000000000000ab".to_owned(), 1.0)]);
    }
}
