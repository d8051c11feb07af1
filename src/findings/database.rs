//! Each watched database's cache and health findings, from its readers'
//! last passes (database figures, health checks, activity, space,
//! replication).

use super::sessions::activity_findings;
use super::storage::{bloat_findings, slot_findings};
use super::{Kind, Recommendation, Severity};

/// Buffer hit ratio under which the database's cache is too small (PgHero's
/// threshold).
pub const LOW_DATABASE_HIT_RATIO: f64 = 0.99;
/// Blocks touched before the database hit ratio means anything.
pub const MIN_DATABASE_BLOCKS: i64 = 10_000;
/// Share of `max_connections` in use that is a finding.
pub const HIGH_CONNECTION_SHARE: f64 = 0.8;
/// Share of dead tuples among all tuples that is a vacuum backlog.
pub const HIGH_DEAD_TUPLE_SHARE: f64 = 0.2;

/// Each health kind's finding name, severity, and what it means and what
/// to do.
fn health_text(kind: &str) -> Option<(Kind, Severity, &'static str)> {
    Some(match kind {
        "invalid" => (
            Kind::InvalidIndex,
            Severity::High,
            "invalid index(es), left by a failed CREATE INDEX CONCURRENTLY: they slow writes and serve no read. Drop and recreate them.",
        ),
        "unused" => (
            Kind::UnusedIndex,
            Severity::Low,
            "index(es) over 1 MB never scanned since the statistics reset: they cost writes and space. Drop them after checking replicas and rare jobs.",
        ),
        "redundant" => (
            Kind::RedundantIndex,
            Severity::Low,
            "index(es) whose columns lead another index of the same table: the other serves their reads. Drop them.",
        ),
        "vacuum_overdue" => (
            Kind::VacuumOverdue,
            Severity::Medium,
            "table(s) with more dead than 40% of live tuples: autovacuum is behind. Tune it for them or run VACUUM.",
        ),
        "vacuum_disabled" => (
            Kind::VacuumOverdue,
            Severity::Medium,
            "table(s) with more dead than 40% of live tuples: autovacuum is disabled for them (autovacuum_enabled=false, or autovacuum off for the server). Run VACUUM, and turn autovacuum back on (ALTER TABLE … RESET (autovacuum_enabled)).",
        ),
        "sequence" => (
            Kind::SequenceExhaustion,
            Severity::High,
            "sequence(s) past 75% of their range (from the start to the maximum, or the minimum for a descending one): inserts will fail when one runs out. Move the column to bigint.",
        ),
        "sequence_unreadable" => (
            Kind::SequencesUnreadable,
            Severity::Medium,
            "sequence(s) whose position the agent may not read (no SELECT or USAGE on them, and perfscope.sequence_positions() is missing or not granted): whether they near the end of their range is unknown. Run sql/install.sql as a superuser.",
        ),
        "wraparound" => (
            Kind::Wraparound,
            Severity::High,
            "database(s) with a transaction-ID age over 1 billion of ~2.1 billion: aggressive vacuum is needed before wraparound forces a shutdown.",
        ),
        _ => return None,
    })
}

/// How far an item is past its threshold, to pick the worst: the figure
/// itself where the threshold is 0 (any figure counts), else their ratio
/// (a descending sequence's last value and minimum are both negative).
fn progress(item: &crate::pg::readers::checks::CheckFinding) -> f64 {
    if item.limit != 0.0 {
        item.value / item.limit
    } else {
        item.value
    }
}

/// Cache and health advice from the database and health readers of each
/// watched database: `(cache, health)`. Object names only for the admin.
pub fn database_advice(
    watched: &crate::pg::Watched,
    admin: bool,
) -> (Vec<Recommendation>, Vec<Recommendation>) {
    let (mut cache, mut health) = (Vec::new(), Vec::new());
    for database in watched.all() {
        let items = database.checks.latest().unwrap_or_default();
        for kind in [
            "invalid",
            "unused",
            "redundant",
            "vacuum_overdue",
            "vacuum_disabled",
            "sequence",
            "sequence_unreadable",
            "wraparound",
        ] {
            let of_kind: Vec<&crate::pg::readers::checks::CheckFinding> =
                items.iter().filter(|i| i.kind == kind).collect();
            let Some((name, severity, text)) = health_text(kind) else {
                continue;
            };
            if of_kind.is_empty() {
                continue;
            }
            // The worst item's figure against its own threshold (for
            // sequences, the bound of the sequence nearest to it).
            let worst = of_kind
                .iter()
                .max_by(|a, b| progress(a).total_cmp(&progress(b)))
                .map_or((0.0, 0.0), |i| (i.value, i.limit));
            // Counted, not named: one item carries the count.
            let count = if kind == "sequence_unreadable" {
                of_kind.iter().map(|i| i.value).sum::<f64>()
            } else {
                of_kind.len() as f64
            };
            health.push(Recommendation {
                kind: name.into(),
                severity,
                message: format!("Database {}: {count} {text}", database.name),
                value: worst.0,
                threshold: worst.1,
                objects: (admin && kind != "sequence_unreadable").then(|| {
                    of_kind
                        .iter()
                        .map(|i| {
                            if i.detail.is_empty() {
                                i.object.clone()
                            } else {
                                format!("{} ({})", i.object, i.detail)
                            }
                        })
                        .collect()
                }),
            });
        }
        if let Some(replication) = database.replication.latest() {
            health.extend(slot_findings(&database.name, &replication, admin));
        }
        if let Some(space) = database.space.latest() {
            health.extend(bloat_findings(&database.name, &space, admin));
        }
        if let Some(activity) = database.activity.latest() {
            health.extend(activity_findings(
                &database.name,
                &activity,
                database.activity.thresholds(),
                admin,
            ));
        }
        let Some(s) = database.database.latest() else {
            continue;
        };
        let name = &database.name;
        if let Some(ratio) = s.hit_ratio().filter(|r| {
            *r < LOW_DATABASE_HIT_RATIO && s.blks_hit + s.blks_read >= MIN_DATABASE_BLOCKS
        }) {
            cache.push(Recommendation {
                kind: Kind::BufferHitRatio.into(),
                severity: if ratio < 0.95 { Severity::High } else { Severity::Medium },
                message: format!(
                    "Database {name} serves {:.2}% of block reads from shared buffers (goal: 99%): raise shared_buffers or the instance's memory, or index the statements that read the most blocks.",
                    ratio * 100.0
                ),
                value: ratio,
                threshold: LOW_DATABASE_HIT_RATIO,
                objects: None,
            });
        }
        let max = f64::from(s.max_connections.max(1));
        let share = s.server_connections() as f64 / max;
        if share >= HIGH_CONNECTION_SHARE {
            health.push(Recommendation {
                kind: Kind::Connections.into(),
                severity: Severity::High,
                message: format!(
                    "{} of max_connections {} are in use ({:.0}%): new connections will soon be refused. Lower pool sizes, close idle sessions, or put PgBouncer in front.",
                    s.server_connections(),
                    s.max_connections,
                    share * 100.0
                ),
                value: share,
                threshold: HIGH_CONNECTION_SHARE,
                objects: None,
            });
        }
        let tuples = (s.dead_tuples + s.live_tuples).max(1) as f64;
        let dead = s.dead_tuples as f64 / tuples;
        if dead >= HIGH_DEAD_TUPLE_SHARE && s.dead_tuples >= 10_000 {
            health.push(Recommendation {
                kind: Kind::DeadTuples.into(),
                severity: Severity::Medium,
                message: format!(
                    "{:.0}% of the tuples in {name}'s tables are dead ({}): autovacuum is behind. Check its settings for the busiest tables, or run VACUUM.",
                    dead * 100.0,
                    s.dead_tuples
                ),
                value: dead,
                threshold: HIGH_DEAD_TUPLE_SHARE,
                objects: None,
            });
        }
    }
    (cache, health)
}
