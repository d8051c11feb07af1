//! The advice both front ends assemble: runtime, cache, database-health
//! findings and index suggestions (the API's stats document and the
//! Advice page). Kept as separate lists, not one, because each front end
//! orders and groups them its own way.

mod merge;

use crate::Perfscope;
use crate::findings::{QueryFinding, Recommendation, runtime_advice};
use crate::runtime::RuntimeSnapshot;
use crate::runtime::process::ProcessSnapshot;

/// An index suggestion (without Postgres support none are made, and the
/// list keeps a placeholder type).
#[cfg(feature = "postgres")]
pub type IndexSuggestion = crate::pg::advisor::IndexSuggestion;
/// An index suggestion (without Postgres support none are made, and the
/// list keeps a placeholder type).
#[cfg(not(feature = "postgres"))]
pub type IndexSuggestion = Recommendation;

/// A top statement the advisor made no suggestion for, with the reason
/// (without Postgres support there are none, and the list keeps a
/// placeholder type).
#[cfg(feature = "postgres")]
pub type NotAdvised = crate::pg::advisor::NotAdvised;
/// A top statement the advisor made no suggestion for, with the reason
/// (without Postgres support there are none, and the list keeps a
/// placeholder type).
#[cfg(not(feature = "postgres"))]
pub type NotAdvised = Recommendation;

/// How a statement fared after a new index (without Postgres support
/// there are none, and the list keeps a placeholder type).
#[cfg(feature = "postgres")]
pub type IndexImpact = crate::pg::advisor::impact::IndexImpact;
/// How a statement fared after a new index (without Postgres support
/// there are none, and the list keeps a placeholder type).
#[cfg(not(feature = "postgres"))]
pub type IndexImpact = Recommendation;

/// The findings now, by area.
#[derive(Debug, Default)]
pub struct Advice {
    /// Sustained lag, saturation, memory.
    pub runtime: Vec<Recommendation>,
    /// The in-process caches' sizing and TTL advice.
    pub caches: Vec<Recommendation>,
    /// The watched databases' buffer-cache advice.
    pub database_cache: Vec<Recommendation>,
    /// The watched databases' health: connections, vacuum backlog, and
    /// statements and routes that regressed against their baseline.
    pub health: Vec<Recommendation>,
    /// Indexes worth creating (redacted without `admin`).
    pub index_suggestions: Vec<IndexSuggestion>,
    /// The top statements the advisor made no suggestion for, and why
    /// (statement and tables redacted without `admin`).
    pub not_advised: Vec<NotAdvised>,
    /// Whether new indexes helped the statements they were meant for
    /// (index, table and statement redacted without `admin`).
    pub index_impact: Vec<IndexImpact>,
}

/// Assembles the advice from the runtime and process readings given;
/// `admin` decides whether tables, statements and names are shown.
pub fn assemble(
    perfscope: &Perfscope,
    admin: bool,
    runtime: &RuntimeSnapshot,
    process: &ProcessSnapshot,
) -> Advice {
    let config = perfscope.config();
    let runtime = runtime_advice(
        runtime,
        process,
        config.runtime.event_loop_lag_threshold,
        config.runtime.high_memory_threshold,
    );
    let caches = crate::findings::cache_advice(perfscope.caches(), admin);
    #[cfg_attr(not(feature = "store"), allow(unused_mut))]
    let mut advice = assemble_by_area(perfscope, admin, runtime, caches);
    // Regressions against the history store's baseline are the health's.
    #[cfg(feature = "store")]
    advice.health.extend(
        perfscope
            .alerts()
            .regressions()
            .iter()
            .map(|regression| regression.recommendation(admin)),
    );
    advice
}

fn assemble_by_area(
    perfscope: &Perfscope,
    admin: bool,
    runtime: Vec<Recommendation>,
    caches: Vec<Recommendation>,
) -> Advice {
    #[cfg(feature = "postgres")]
    {
        let (database_cache, health) = crate::findings::database_advice(perfscope.watched(), admin);
        let mut index_suggestions = Vec::new();
        let mut not_advised = Vec::new();
        let mut index_impact = Vec::new();
        for db in perfscope.watched().all().iter() {
            index_impact.extend(
                db.impact
                    .latest()
                    .unwrap_or_default()
                    .iter()
                    .map(|s| if admin { s.clone() } else { s.redacted() }),
            );
            let advice = db.advisor.latest().unwrap_or_default();
            index_suggestions.extend(
                advice
                    .suggestions
                    .iter()
                    .map(|s| if admin { s.clone() } else { s.redacted() }),
            );
            not_advised.extend(
                advice
                    .not_advised
                    .iter()
                    .map(|s| if admin { s.clone() } else { s.redacted() }),
            );
        }
        Advice {
            runtime,
            caches,
            database_cache,
            health,
            index_suggestions,
            not_advised,
            index_impact,
        }
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (perfscope, admin);
        Advice {
            runtime,
            caches,
            ..Advice::default()
        }
    }
}

/// Slow statements and N+1 suspects, at most `limit` of each kind per
/// source: the in-process ones, then each watched database's; a slow
/// statement both sources know is one finding with both sources' figures
/// (see [`merge`]).
pub fn query_findings(perfscope: &Perfscope, admin: bool, limit: usize) -> Vec<QueryFinding> {
    let slow_log = super::slow_queries::slow_log_window(perfscope, std::time::SystemTime::now());
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut findings = crate::findings::query_findings(perfscope.db(), admin, limit, &slow_log);
    #[cfg(feature = "postgres")]
    findings.extend(crate::findings::pg_findings(
        perfscope.watched(),
        admin,
        perfscope.config().database.slow_query_threshold,
        limit,
    ));
    #[cfg(feature = "postgres")]
    findings.extend(crate::findings::plan_findings(perfscope.watched(), admin));
    merge::one_per_statement(findings)
}
