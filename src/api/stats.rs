//! `GET /api/performance/stats`: the seed's shape — system uptime, memory
//! and event loop, and recommendations — with numeric fields beside the
//! human strings.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::is_admin;
use super::error::ApiError;
use crate::Perfscope;
use crate::findings::{QueryFinding, Recommendation};
use crate::runtime::process::ProcessSnapshot;
use crate::service::advice::query_findings;

/// Memory of the process.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct MemoryStats {
    /// Bytes allocated by the application, e.g. "12.34MB" ("unavailable"
    /// unless jemalloc is the process's global allocator, as in the agent
    /// binary; a host app installs it with `#[global_allocator]`).
    pub heap_used: String,
    /// Bytes in the allocator's active pages, as a string.
    pub heap_total: String,
    /// Resident set size, as a string.
    pub rss: String,
    /// `heapUsed` in bytes.
    #[oai(skip_serializing_if_is_none)]
    pub heap_used_bytes: Option<u64>,
    /// `heapTotal` in bytes.
    #[oai(skip_serializing_if_is_none)]
    pub heap_total_bytes: Option<u64>,
    /// `rss` in bytes.
    pub rss_bytes: u64,
    /// The container (cgroup v2) memory limit, when set.
    #[oai(skip_serializing_if_is_none)]
    pub limit_bytes: Option<u64>,
    /// `rssBytes / limitBytes`, when there is a limit.
    #[oai(skip_serializing_if_is_none)]
    pub utilization: Option<f64>,
}

/// The event loop (the Tokio runtime).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct EventLoopStats {
    /// Busy share of the last interval, averaged over workers (0..1).
    pub utilization: f64,
    /// Worst lag of the last interval, seconds.
    pub lag: f64,
    /// Worker threads.
    pub workers: u64,
    /// Tasks alive.
    pub live_tasks: u64,
    /// Tasks waiting in the global queue.
    pub global_queue_depth: u64,
}

/// The process and its runtime.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SystemStats {
    /// Seconds since start.
    pub uptime: f64,
    /// Memory.
    pub memory: MemoryStats,
    /// The event loop.
    pub event_loop: EventLoopStats,
}

/// Advice, by area. Later subsystems fill the query, index and cache lists.
#[derive(Object, Debug, Default)]
#[oai(rename_all = "camelCase")]
pub struct Recommendations {
    /// Slow statements and N+1 suspects (statement text and tables only
    /// with the admin token).
    pub slow_queries: Vec<QueryFinding>,
    /// Indexes worth creating, from the slowest statements (table, columns
    /// and statements only with the admin token).
    pub index_suggestions: Vec<IndexSuggestionOut>,
    /// The top statements the advisor made no index suggestion for, each
    /// with the reason (statement and tables only with the admin token).
    pub not_advised: Vec<NotAdvisedOut>,
    /// Whether new indexes (perfscope's suggestions or any other) helped
    /// the statements they were meant for: before and after means from
    /// pg_stat_statements, a speedup and a verdict (index, table,
    /// definition and statement only with the admin token).
    pub index_impact: Vec<IndexImpactOut>,
    /// Cache sizing and TTL advice.
    pub cache_recommendations: Vec<Recommendation>,
    /// Runtime advice: sustained lag, saturation, memory.
    pub runtime: Vec<Recommendation>,
    /// Database health: connections near the limit, vacuum backlog.
    pub health: Vec<Recommendation>,
}

/// The stats document.
#[derive(Object, Debug)]
pub struct Stats {
    /// The process and its runtime.
    pub system: SystemStats,
    /// Advice.
    pub recommendations: Recommendations,
}

#[derive(ApiResponse)]
enum StatsResponse {
    /// The current stats.
    #[oai(status = 200)]
    Ok(Json<Stats>),
}

type IndexSuggestionOut = crate::service::advice::IndexSuggestion;
type NotAdvisedOut = crate::service::advice::NotAdvised;
type IndexImpactOut = crate::service::advice::IndexImpact;

/// Findings of each kind listed in the stats.
const STATS_FINDINGS: usize = 5;

/// Formats bytes the way the seed did: megabytes with two decimals.
pub fn human_bytes(bytes: u64) -> String {
    format!("{:.2}MB", bytes as f64 / 1024.0 / 1024.0)
}

/// The stats operation.
pub struct StatsApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl StatsApi {
    /// Process, runtime and advice at a glance. Public; with the admin
    /// token the query findings include statement texts and tables.
    #[oai(
        path = "/api/performance/stats",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getStats"
    )]
    async fn stats(&self, request: &poem::Request) -> Result<StatsResponse, ApiError> {
        let admin = is_admin(request, self.perfscope.config().server.admin_token.as_ref());
        let process = ProcessSnapshot::read();
        let runtime = self.perfscope.runtime().snapshot();
        let allocator = process.allocator;
        let unavailable = || "unavailable".to_owned();
        let advice = crate::service::advice::assemble(&self.perfscope, admin, &runtime, &process);
        let mut cache_recommendations = advice.database_cache;
        cache_recommendations.extend(advice.caches);
        let recommendations = Recommendations {
            slow_queries: query_findings(&self.perfscope, admin, STATS_FINDINGS),
            index_suggestions: advice.index_suggestions,
            not_advised: advice.not_advised,
            index_impact: advice.index_impact,
            cache_recommendations,
            runtime: advice.runtime,
            health: advice.health,
        };
        Ok(StatsResponse::Ok(Json(Stats {
            system: SystemStats {
                uptime: self.perfscope.uptime().as_secs_f64(),
                memory: MemoryStats {
                    heap_used: allocator.map_or_else(unavailable, |a| human_bytes(a.allocated)),
                    heap_total: allocator.map_or_else(unavailable, |a| human_bytes(a.active)),
                    rss: human_bytes(process.resident_bytes),
                    heap_used_bytes: allocator.map(|a| a.allocated),
                    heap_total_bytes: allocator.map(|a| a.active),
                    rss_bytes: process.resident_bytes,
                    limit_bytes: process.memory_limit_bytes,
                    utilization: process.memory_utilization(),
                },
                event_loop: EventLoopStats {
                    utilization: runtime.utilization,
                    lag: runtime.lag.as_secs_f64(),
                    workers: runtime.workers as u64,
                    live_tasks: runtime.live_tasks as u64,
                    global_queue_depth: runtime.global_queue_depth as u64,
                },
            },
            recommendations,
        })))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes_matches_the_seed() {
        assert_eq!(super::human_bytes(129_446_871), "123.45MB");
        assert_eq!(super::human_bytes(0), "0.00MB");
    }
}
