//! Findings: what perfscope tells a team to look at, each with the numbers
//! behind it and what to do. One file per subject (the runtime, the
//! statements, the caches, a database's health, its sessions, its storage,
//! regressions against the history store's baseline);
//! every finding's stable name is a [`Kind`], so the names are written once.
//!
//! Index suggestions are not here: they come from planning statements
//! (`crate::pg::advisor`), not from thresholds over readings.
//!
//! [`Recommendation`] and [`queries::QueryFinding`] are the wire types of
//! `/api/performance/stats` too: their `kind` stays a string in the schema,
//! written from the [`Kind`] it was built with.

pub mod cache;
#[cfg(feature = "postgres")]
pub mod database;
pub mod figures;
pub mod growth;
#[cfg(feature = "postgres")]
pub mod plans;
pub mod queries;
#[cfg(feature = "store")]
pub mod recorded;
#[cfg(feature = "store")]
pub mod regressions;
pub mod runtime;
#[cfg(feature = "postgres")]
mod sessions;
#[cfg(feature = "postgres")]
mod storage;

pub use cache::cache_advice;
#[cfg(feature = "postgres")]
pub use database::database_advice;
#[cfg(feature = "postgres")]
pub use plans::plan_findings;
#[cfg(feature = "postgres")]
pub use queries::pg_findings;
pub use queries::{QueryFinding, query_findings};
pub use runtime::runtime_advice;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One piece of advice.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
pub struct Recommendation {
    /// A stable kind, e.g. `event_loop_lag`.
    pub kind: String,
    /// How serious it is.
    pub severity: Severity,
    /// What was seen and what to do.
    pub message: String,
    /// The measured value behind it.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// The objects concerned (admin only: they name tables and indexes).
    #[oai(skip_serializing_if_is_none)]
    pub objects: Option<Vec<String>>,
}

/// Every kind of finding, by its stable name (the `kind` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Event-loop lag over the threshold in most recent intervals.
    EventLoopLag,
    /// The runtime's workers busy nearly all the time.
    RuntimeSaturated,
    /// Resident memory near the container limit.
    HighMemory,
    /// A cache's lookups rarely hit.
    CacheHitRatio,
    /// A cache's misses found their entry expired.
    CacheTtlTooShort,
    /// A full cache evicted entries that were being read.
    CacheTooSmall,
    /// A slow statement.
    SlowQuery,
    /// A statement at least twice as slow since its plan changed.
    PlanRegression,
    /// One statement run once per item of a request.
    NPlusOne,
    /// An index left invalid by a failed concurrent build.
    InvalidIndex,
    /// An index never scanned.
    UnusedIndex,
    /// An index another index makes redundant.
    RedundantIndex,
    /// Tables autovacuum is behind on.
    VacuumOverdue,
    /// Sequences near their maximum.
    SequenceExhaustion,
    /// Sequences whose position the agent may not read.
    SequencesUnreadable,
    /// Transaction-ID age near wraparound.
    Wraparound,
    /// The database's buffer hit ratio is low.
    BufferHitRatio,
    /// Most of `max_connections` in use.
    Connections,
    /// Many dead tuples in the database's tables.
    DeadTuples,
    /// Queries running longer than the threshold.
    LongRunning,
    /// Sessions idle inside an open transaction.
    IdleInTransaction,
    /// Sessions waiting on locks.
    Blocked,
    /// Tables that are mostly dead space.
    TableBloat,
    /// Indexes that are mostly empty space.
    IndexBloat,
    /// Replication slots that keep WAL.
    InactiveReplicationSlot,
    /// A statement at least twice as slow as its own baseline.
    StatementRegression,
    /// A route's p95 at least twice its own baseline.
    RouteRegression,
}

impl Kind {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EventLoopLag => "event_loop_lag",
            Self::RuntimeSaturated => "runtime_saturated",
            Self::HighMemory => "high_memory",
            Self::CacheHitRatio => "cache_hit_ratio",
            Self::CacheTtlTooShort => "cache_ttl_too_short",
            Self::CacheTooSmall => "cache_too_small",
            Self::SlowQuery => "slow_query",
            Self::PlanRegression => "plan_regression",
            Self::NPlusOne => "n_plus_one",
            Self::InvalidIndex => "invalid_index",
            Self::UnusedIndex => "unused_index",
            Self::RedundantIndex => "redundant_index",
            Self::VacuumOverdue => "vacuum_overdue",
            Self::SequenceExhaustion => "sequence_exhaustion",
            Self::SequencesUnreadable => "sequences_unreadable",
            Self::Wraparound => "wraparound",
            Self::BufferHitRatio => "buffer_hit_ratio",
            Self::Connections => "connections",
            Self::DeadTuples => "dead_tuples",
            Self::LongRunning => "long_running",
            Self::IdleInTransaction => "idle_in_transaction",
            Self::Blocked => "blocked",
            Self::TableBloat => "table_bloat",
            Self::IndexBloat => "index_bloat",
            Self::InactiveReplicationSlot => "inactive_replication_slot",
            Self::StatementRegression => "statement_regression",
            Self::RouteRegression => "route_regression",
        }
    }
}

impl From<Kind> for String {
    fn from(kind: Kind) -> Self {
        kind.as_str().to_owned()
    }
}
