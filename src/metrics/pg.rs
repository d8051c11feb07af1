//! Metrics from Postgres' own views: the readers' health
//! (`perfscope_reader_*{database, reader}`) and, through a collector that
//! reads the latest pass at scrape time, the top statements by total time
//! as `pg_stat_statements_*{database, queryid}` (the text only through the
//! API: it may be long and it names tables), plus evictions and detected
//! resets per database, the agent's own cost to each database
//! (`perfscope_agent_statement_*`), the database reader's figures
//! (`pg_database_*`, `pg_server_*`), the advisor's skips and the index
//! impact tracker's verdicts (`perfscope_index_impact_reports`).
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
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use crate::pg::Watched;
use crate::pg::actions::maintenance::{MaintenanceOutcome, Task};
use crate::pg::actions::signal::{AdminOutcome, Signal};
use crate::pg::advisor::impact::Verdict;

/// `database` and `reader`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReaderLabels {
    pub database: Arc<str>,
    pub reader: &'static str,
}

/// The readers' health families.
#[derive(Debug, Default)]
pub struct PgMetrics {
    /// `perfscope_reader_duration_seconds{database, reader}`: the last read.
    pub reader_duration: Family<ReaderLabels, Gauge<f64, AtomicU64>>,
    /// `perfscope_reader_success{database, reader}`: 1 when the last read
    /// worked.
    pub reader_success: Family<ReaderLabels, Gauge>,
    /// `perfscope_reader_errors_total{database, reader}`.
    pub reader_errors: Family<ReaderLabels, Counter>,
    /// `perfscope_maintenance_total{task, outcome}`.
    pub maintenance: Family<MaintenanceLabels, Counter>,
    /// `perfscope_admin_actions_total{action, outcome}`: cancel and
    /// terminate requests.
    pub admin_actions: Family<AdminActionLabels, Counter>,
    /// `perfscope_reader_leader{database}`: 1 while this process is the
    /// one that runs the database's readers (see `crate::pg::election`).
    pub reader_leader: Family<LeaderLabels, Gauge>,
}

/// `database` of the reader election.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaderLabels {
    pub database: Arc<str>,
}

/// `action` (`cancel`, `terminate`) and `outcome` of a backend signal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdminActionLabels {
    pub action: Signal,
    pub outcome: AdminOutcome,
}

/// `task` and `outcome` of a maintenance request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MaintenanceLabels {
    pub task: Task,
    pub outcome: MaintenanceOutcome,
}

super::label_values!(Signal, AdminOutcome, Task, MaintenanceOutcome);

impl PgMetrics {
    /// Defines and registers the families, and the statements collector
    /// over `watched`.
    pub fn register(registry: &mut Registry, watched: Arc<Watched>, top: usize) -> Self {
        let metrics = Self::default();
        registry.register_with_unit(
            "perfscope_reader_duration",
            "Duration of the last read of each Postgres reader",
            Unit::Seconds,
            metrics.reader_duration.clone(),
        );
        registry.register(
            "perfscope_reader_success",
            "Whether the last read of each Postgres reader succeeded (1) or failed (0)",
            metrics.reader_success.clone(),
        );
        registry.register(
            "perfscope_reader_errors",
            "Failed reads of each Postgres reader",
            metrics.reader_errors.clone(),
        );
        registry.register(
            "perfscope_maintenance",
            "Maintenance requests by task and outcome (started, succeeded, failed, busy, not_found, forbidden, bad_request, unavailable)",
            metrics.maintenance.clone(),
        );
        registry.register(
            "perfscope_admin_actions",
            "Cancel and terminate requests by action and outcome (signalled, not_signalled, refused, forbidden, unavailable)",
            metrics.admin_actions.clone(),
        );
        registry.register(
            "perfscope_reader_leader",
            "Whether this process runs the readers of each database (1) or another replica does (0)",
            metrics.reader_leader.clone(),
        );
        registry.register_collector(Box::new(super::pg_activity::ActivityCollector {
            watched: watched.clone(),
        }));
        registry.register_collector(Box::new(super::pg_replication::ReplicationCollector {
            watched: watched.clone(),
        }));
        registry.register_collector(Box::new(super::pg_io::IoCollector {
            watched: watched.clone(),
        }));
        registry.register_collector(Box::new(StatementsCollector { watched, top }));
        metrics
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatementLabels {
    database: Arc<str>,
    queryid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatabaseLabels {
    database: Arc<str>,
}

/// `{database, reason}` of the advisor's skipped statements.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdvisorSkipLabels {
    database: Arc<str>,
    reason: &'static str,
}

/// `{database, verdict}` of the index impact reports.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImpactLabels {
    database: Arc<str>,
    verdict: &'static str,
}

/// Encodes the latest pg_stat_statements pass of every watched database.
#[derive(Debug)]
struct StatementsCollector {
    watched: Arc<Watched>,
    top: usize,
}

type Value = fn(&crate::pg::readers::statements::StatementView) -> f64;
type FiguresValue = fn(&crate::pg::readers::statements::Figures) -> f64;
type DatabaseValue = fn(&crate::pg::readers::database::DatabaseSnapshot) -> Option<f64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    database: Arc<str>,
    state: String,
}

impl StatementsCollector {
    /// The per-database families from the database reader.
    fn encode_databases(
        &self,
        encoder: &mut DescriptorEncoder,
        databases: &[Arc<crate::pg::WatchedDatabase>],
    ) -> Result<(), std::fmt::Error> {
        let snapshots: Vec<_> = databases
            .iter()
            .filter_map(|db| db.database.latest().map(|s| (db.name.clone(), s)))
            .collect();
        if snapshots.is_empty() {
            return Ok(());
        }
        let families: [(&str, &str, Option<Unit>, MetricType, DatabaseValue); 8] = [
            (
                "pg_database_size",
                "Size of the database",
                Some(Unit::Bytes),
                MetricType::Gauge,
                |s| Some(s.size_bytes as f64),
            ),
            (
                "pg_database_buffer_hit_ratio",
                "Share of block reads served from shared buffers since the stats reset",
                None,
                MetricType::Gauge,
                |s| s.hit_ratio(),
            ),
            (
                "pg_database_deadlocks",
                "Deadlocks detected in the database",
                None,
                MetricType::Counter,
                |s| Some(s.deadlocks as f64),
            ),
            (
                "pg_database_xact_commit",
                "Committed transactions",
                None,
                MetricType::Counter,
                |s| Some(s.xact_commit as f64),
            ),
            (
                "pg_database_xact_rollback",
                "Rolled-back transactions",
                None,
                MetricType::Counter,
                |s| Some(s.xact_rollback as f64),
            ),
            (
                "pg_database_dead_tuples",
                "Dead tuples in user tables (vacuum backlog)",
                None,
                MetricType::Gauge,
                |s| Some(s.dead_tuples as f64),
            ),
            (
                "pg_server_connections",
                "Client connections to the whole server",
                None,
                MetricType::Gauge,
                |s| Some(s.server_connections() as f64),
            ),
            (
                "pg_server_max_connections",
                "The server's max_connections",
                None,
                MetricType::Gauge,
                |s| Some(f64::from(s.max_connections)),
            ),
        ];
        for (name, help, unit, kind, value) in families {
            let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), kind)?;
            for (database, snapshot) in &snapshots {
                let Some(v) = value(snapshot) else { continue };
                let labels = DatabaseLabels {
                    database: database.clone(),
                };
                let metric = family.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(v).encode(metric)?,
                    _ => ConstGauge::new(v).encode(metric)?,
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "pg_database_connections",
            "Client connections to the database by state",
            None,
            MetricType::Gauge,
        )?;
        for (database, snapshot) in &snapshots {
            for (state, _, here) in &snapshot.connections {
                let labels = ConnectionLabels {
                    database: database.clone(),
                    state: state.replace(' ', "_"),
                };
                ConstGauge::new(*here as f64).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

impl Collector for StatementsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let databases = self.watched.all();
        if databases.is_empty() {
            return Ok(());
        }
        let snapshots: Vec<_> = databases
            .iter()
            .map(|db| (db.name.clone(), db.statements.latest().unwrap_or_default()))
            .collect();
        let families: [(&str, &str, Option<Unit>, Value); 5] = [
            (
                "pg_stat_statements_calls",
                "Executions of the statement (top statements by total time)",
                None,
                |s| s.cumulative.calls as f64,
            ),
            (
                "pg_stat_statements_exec",
                "Total execution time of the statement",
                Some(Unit::Seconds),
                |s| s.cumulative.total_ms / 1_000.0,
            ),
            (
                "pg_stat_statements_rows",
                "Rows returned or affected by the statement",
                None,
                |s| s.cumulative.rows as f64,
            ),
            (
                "pg_stat_statements_shared_blks_hit",
                "Shared buffer hits of the statement",
                None,
                |s| s.cumulative.shared_hit as f64,
            ),
            (
                "pg_stat_statements_shared_blks_read",
                "Shared blocks read by the statement",
                None,
                |s| s.cumulative.shared_read as f64,
            ),
        ];
        for (name, help, unit, value) in families {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
            for (database, snapshot) in &snapshots {
                for statement in snapshot.statements.iter().take(self.top) {
                    let labels = StatementLabels {
                        database: database.clone(),
                        queryid: statement.queryid.to_string(),
                    };
                    ConstCounter::new(value(statement)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut evicted = encoder.encode_descriptor(
            "pg_stat_statements_evicted",
            "Statements pg_stat_statements evicted for lack of room since its last reset (pg_stat_statements_info.dealloc)",
            None,
            MetricType::Counter,
        )?;
        for (database, snapshot) in &snapshots {
            ConstCounter::new(u64::try_from(snapshot.evicted).unwrap_or(0)).encode(
                evicted.encode_family(&DatabaseLabels {
                    database: database.clone(),
                })?,
            )?;
        }
        // The agent's own cost to each database (its statements as
        // src/pg/own.rs recognises them), cumulative since the stats
        // reset like the statements' own counters.
        let own: [(&str, &str, Option<Unit>, FiguresValue); 2] = [
            (
                "perfscope_agent_statement_calls",
                "Executions of the agent's own statements in the database (pg_stat_statements, since its last reset)",
                None,
                |f| f.calls as f64,
            ),
            (
                "perfscope_agent_statement",
                "Execution time of the agent's own statements in the database (pg_stat_statements, since its last reset)",
                Some(Unit::Seconds),
                |f| f.total_ms / 1_000.0,
            ),
        ];
        for (name, help, unit, value) in own {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
            for (database, snapshot) in &snapshots {
                if snapshot.at.is_none() {
                    continue;
                }
                ConstCounter::new(value(&snapshot.own)).encode(family.encode_family(
                    &DatabaseLabels {
                        database: database.clone(),
                    },
                )?)?;
            }
        }
        self.encode_databases(&mut encoder, &databases)?;
        let mut unparsable = encoder.encode_descriptor(
            "perfscope_advisor_unparsable_statements",
            "Statements the index advisor's SQL parser rejected on its last pass (skipped)",
            None,
            MetricType::Gauge,
        )?;
        for database in &databases {
            ConstGauge::new(database.advisor.latest().unwrap_or_default().unparsable as f64)
                .encode(unparsable.encode_family(&DatabaseLabels {
                    database: database.name.clone(),
                })?)?;
        }
        let mut skipped = encoder.encode_descriptor(
            "perfscope_advisor_skipped_statements",
            "Statements (or their plans) the index advisor did not advise on, on its last pass, by reason (unparsable, unsupported, no_candidate, table_not_found, small_table, low_selectivity, already_indexed, no_saving, write_cost, no_planner, role_not_listed, untrusted_code, unsupported_text, too_long, plan_failed, plan_timeout, planner_unavailable, unsafe_planner_role, catalog_error)",
            None,
            MetricType::Gauge,
        )?;
        for database in &databases {
            for (reason, count) in &database.advisor.latest().unwrap_or_default().skipped {
                ConstGauge::new(*count as f64).encode(skipped.encode_family(
                    &AdvisorSkipLabels {
                        database: database.name.clone(),
                        reason,
                    },
                )?)?;
            }
        }
        let mut impact = encoder.encode_descriptor(
            "perfscope_index_impact_reports",
            "Statements judged around a new index on the index impact tracker's last pass, by verdict (helped, no_effect, worse, pending)",
            None,
            MetricType::Gauge,
        )?;
        for database in &databases {
            let reports = database.impact.latest().unwrap_or_default();
            for verdict in Verdict::ALL {
                let verdict = verdict.as_str();
                let count = reports.iter().filter(|r| r.verdict == verdict).count();
                ConstGauge::new(count as f64).encode(impact.encode_family(&ImpactLabels {
                    database: database.name.clone(),
                    verdict,
                })?)?;
            }
        }
        let mut resets = encoder.encode_descriptor(
            "pg_stat_statements_resets_detected",
            "pg_stat_statements resets seen by the agent since it started",
            None,
            MetricType::Counter,
        )?;
        for (database, snapshot) in &snapshots {
            ConstCounter::new(snapshot.resets_detected).encode(resets.encode_family(
                &DatabaseLabels {
                    database: database.clone(),
                },
            )?)?;
        }
        Ok(())
    }
}
