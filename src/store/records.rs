//! What the store keeps, as the recorders hand it over: one [`Write`] per
//! batch (a reader pass's statement deltas, a minute of route latency, a
//! minute of the runtime, a database's sizes, one event or finding change). Timestamps are Unix
//! seconds, taken by the recorder, so a test can write a simulated month.

use std::sync::Arc;

/// The time a raw point covers, seconds: the recorder writes one per
/// series a minute, so a chart read from the store steps no finer.
pub const RAW_POINT_SECS: i64 = 60;
/// The longest statement text kept, in bytes (cut on a char boundary).
pub const MAX_TEXT_BYTES: usize = 2_048;
/// The longest label, name or summary kept, in bytes (room for 200
/// characters of four bytes each, the longest event label accepted).
pub const MAX_LABEL_BYTES: usize = 800;
/// The longest event detail kept, in bytes.
pub const MAX_DETAIL_BYTES: usize = 16_384;

/// One statement's figures over one reader pass (deltas, not totals).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatementDelta {
    /// pg_stat_statements' queryid.
    pub queryid: i64,
    /// Its text as perfscope normalized it (no literal values).
    pub text: Option<Arc<str>>,
    /// Calls in the pass.
    pub calls: i64,
    /// Execution time in the pass, ms.
    pub total_ms: f64,
    /// Rows returned or affected.
    pub rows: i64,
    /// Shared blocks found in the buffer cache.
    pub shared_hit: i64,
    /// Shared blocks read from disk or the OS cache.
    pub shared_read: i64,
    /// Temporary blocks written.
    pub temp_written: i64,
    /// Time reading and writing blocks, ms (with `track_io_timing`).
    pub io_ms: f64,
}

/// One route's requests over one interval: the bucket counts of the
/// request-duration histogram's bounds, as the pages use them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteDelta {
    /// HTTP method (or `GRPC`).
    pub method: String,
    /// The route template (never a raw path).
    pub route: String,
    /// Requests answered.
    pub requests: u64,
    /// Of them, answered 5xx.
    pub errors: u64,
    /// Sum of their durations, seconds.
    pub sum_seconds: f64,
    /// Count per bucket (not cumulative), one per bound, `+Inf` last.
    pub buckets: Vec<u64>,
}

/// The process's runtime over one minute, summarized from the history's
/// 10-second samples (each sample's lag is the worst of its interval).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RuntimeMinute {
    /// The end of the minute.
    pub at: i64,
    /// Mean of the samples' event-loop lag, seconds.
    pub lag_mean: f64,
    /// Worst event-loop lag of the minute, seconds.
    pub lag_max: f64,
    /// Mean busy share of the workers, 0..1.
    pub utilization: f64,
    /// Mean resident memory, bytes.
    pub resident_mean: u64,
    /// Highest resident memory sampled, bytes.
    pub resident_max: u64,
}

/// Active-session keys kept per database and minute of the active session
/// history; the rest are summed per wait class under [`ASH_OTHER`].
pub const MAX_ASH_KEYS_PER_MINUTE: usize = 50;
/// The statement text of the key the rest of a minute is summed into.
pub const ASH_OTHER: &str = "other";

/// Sessions seen doing one thing in one minute of the active session
/// history (a plain record: the store knows nothing of Postgres; the
/// recorder converts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AshCount {
    /// The watched database's label.
    pub database: Arc<str>,
    /// The wait class (`CPU`, `IO`, `Lock`, …).
    pub class: Arc<str>,
    /// The wait event.
    pub event: Option<Arc<str>>,
    /// The statement's fingerprint (0 for [`ASH_OTHER`]).
    pub fingerprint: u64,
    /// Postgres' `query_id`, when known.
    pub query_id: Option<i64>,
    /// The normalized statement text (no literal values).
    pub text: Arc<str>,
    /// The session's role.
    pub role: Arc<str>,
    /// Its `application_name`.
    pub application: Arc<str>,
    /// The route of its sqlcommenter tags.
    pub route: Option<Arc<str>>,
    /// Samples that saw it.
    pub samples: u32,
}

/// One minute (or, read from a coarser tier, one bucket) of the active
/// session history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AshMinute {
    /// Its start, Unix seconds.
    pub at: i64,
    /// Samples taken per database.
    pub ticks: Vec<(Arc<str>, u32)>,
    /// Sessions seen, by what they were doing.
    pub counts: Vec<AshCount>,
}

impl AshMinute {
    /// The minute with at most [`MAX_ASH_KEYS_PER_MINUTE`] keys per
    /// database, the busiest; the rest summed per database and wait class
    /// into one [`ASH_OTHER`] key each, so a minute's rows stay bounded
    /// whatever the workload.
    pub fn bounded(mut self) -> Self {
        let mut by_database: std::collections::BTreeMap<Arc<str>, Vec<AshCount>> =
            std::collections::BTreeMap::new();
        for count in self.counts.drain(..) {
            by_database
                .entry(count.database.clone())
                .or_default()
                .push(count);
        }
        let mut kept = Vec::new();
        for (database, mut counts) in by_database {
            counts.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.text.cmp(&b.text)));
            let rest = counts.split_off(counts.len().min(MAX_ASH_KEYS_PER_MINUTE));
            kept.extend(counts);
            let mut other: std::collections::BTreeMap<Arc<str>, u32> =
                std::collections::BTreeMap::new();
            for count in rest {
                let sum = other.entry(count.class).or_default();
                *sum = sum.saturating_add(count.samples);
            }
            for (class, samples) in other {
                kept.push(AshCount {
                    database: database.clone(),
                    class,
                    text: Arc::from(ASH_OTHER),
                    samples,
                    ..AshCount::default()
                });
            }
        }
        self.counts = kept;
        self
    }
}

/// What a size row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RelationKind {
    /// The whole database.
    Database,
    /// A table with its TOAST and indexes.
    Table,
    /// One index.
    Index,
    /// A sequence: its row's "bytes" are its last value, not a size.
    Sequence,
}

impl RelationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Table => "table",
            Self::Index => "index",
            Self::Sequence => "sequence",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "database" => Some(Self::Database),
            "table" => Some(Self::Table),
            "index" => Some(Self::Index),
            "sequence" => Some(Self::Sequence),
            _ => None,
        }
    }
}

/// One relation's size when the space reader last read it.
#[derive(Clone, Debug, PartialEq)]
pub struct RelationSize {
    /// Database, table or index.
    pub kind: RelationKind,
    /// `schema.name` (the database's name for [`RelationKind::Database`]).
    pub name: String,
    /// Bytes on disk.
    pub bytes: i64,
}

/// What happened, for the markers on every chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new release of the app or the agent started.
    Deploy,
    /// A marker posted through the API.
    Marker,
    /// pg_stat_statements was reset.
    Reset,
    /// An index appeared.
    IndexCreated,
    /// A maintenance task ran.
    Maintenance,
    /// A statement's plan changed shape.
    PlanChange,
}

impl EventKind {
    /// Every kind, for listings and validation.
    pub const ALL: [Self; 6] = [
        Self::Deploy,
        Self::Marker,
        Self::Reset,
        Self::IndexCreated,
        Self::Maintenance,
        Self::PlanChange,
    ];

    /// The stored (and served) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Marker => "marker",
            Self::Reset => "reset",
            Self::IndexCreated => "index_created",
            Self::Maintenance => "maintenance",
            Self::PlanChange => "plan_change",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When, Unix seconds.
    pub at: i64,
    /// What.
    pub kind: EventKind,
    /// The database it concerns, if one.
    pub database: Option<String>,
    /// A short label (a release, an index name, a task).
    pub label: String,
    /// Details, e.g. JSON of both plans of a plan change.
    pub detail: Option<String>,
}

/// A finding that opened or closed.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingChange {
    /// When, Unix seconds.
    pub at: i64,
    /// Its stable key (rule and subject).
    pub key: String,
    /// Its severity, as served.
    pub severity: String,
    /// Its one-line summary.
    pub summary: String,
    /// Opened (true) or closed (false).
    pub open: bool,
}

/// One batch for the writer; each is written in one transaction.
#[derive(Clone, Debug)]
pub enum Write {
    /// A reader pass's statement deltas for one database.
    Statements {
        /// When the pass read them.
        at: i64,
        /// The database.
        database: Arc<str>,
        /// Statements that ran in the pass.
        rows: Vec<StatementDelta>,
    },
    /// An interval's route latency.
    Routes {
        /// The end of the interval.
        at: i64,
        /// The histogram's upper bounds, `+Inf` last.
        bounds: Arc<[f64]>,
        /// Routes with requests in the interval.
        rows: Vec<RouteDelta>,
    },
    /// A minute of the runtime (lag, utilization, resident memory).
    Runtime(RuntimeMinute),
    /// A closed minute of the active session history (bounded by the
    /// writer: [`AshMinute::bounded`]).
    Ash(AshMinute),
    /// A database's sizes (kept per day: the last reading of a day wins).
    Sizes {
        /// When they were read.
        at: i64,
        /// The database.
        database: Arc<str>,
        /// The database itself, its tables and indexes.
        rows: Vec<RelationSize>,
    },
    /// One event.
    Event(Event),
    /// A finding opened or closed.
    Finding(FindingChange),
}

/// `text` cut to at most `max` bytes on a char boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn an_ash_minute_keeps_the_busiest_keys_and_sums_the_rest_per_class() {
        let count = |i: u32, class: &str| AshCount {
            database: Arc::from("shop"),
            class: Arc::from(class),
            fingerprint: u64::from(i) + 1,
            text: Arc::from(format!("select {i}").as_str()),
            samples: i + 1,
            ..AshCount::default()
        };
        let mut counts: Vec<AshCount> = (0..80)
            .map(|i| count(i, if i.is_multiple_of(2) { "CPU" } else { "IO" }))
            .collect();
        counts.push(AshCount {
            database: Arc::from("other"),
            ..count(1, "Lock")
        });
        let minute = AshMinute {
            at: 60,
            ticks: vec![(Arc::from("shop"), 60)],
            counts,
        }
        .bounded();
        let shop: Vec<&AshCount> = minute
            .counts
            .iter()
            .filter(|c| &*c.database == "shop")
            .collect();
        assert_eq!(
            shop.len(),
            MAX_ASH_KEYS_PER_MINUTE + 2,
            "50 keys and CPU and IO others"
        );
        assert_eq!(shop[0].samples, 80, "the busiest first");
        let total: u32 = shop.iter().map(|c| c.samples).sum();
        assert_eq!(total, (1..=80).sum::<u32>(), "nothing lost");
        let others: Vec<&&AshCount> = shop.iter().filter(|c| &*c.text == ASH_OTHER).collect();
        assert_eq!(others.len(), 2);
        assert!(minute.counts.iter().any(|c| &*c.database == "other"));
    }

    #[test]
    fn event_kinds_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("drop table"), None);
    }
}
