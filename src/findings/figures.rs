//! One source's figures of a statement and the span of time they cover.
//! The in-process slow log and pg_stat_statements count over different
//! spans (this process's slow executions since it started; the server's
//! every execution since the agent's previous read or since the reset), so
//! a statement both know keeps each source's figures apart, each with its
//! [`Window`]; none is added to the other. The slow-query report
//! (`service::slow_queries`) and the stats' `slowQueries` findings share
//! these types, so both say a window the same way.

use std::time::{SystemTime, UNIX_EPOCH};

use poem_openapi::{Enum, Object};

/// What span of time a source's figures cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum WindowKind {
    /// This process's executions over `SLOW_QUERY_THRESHOLD`, since it
    /// started or, once the bounded log dropped older ones, since the
    /// oldest it still holds.
    SlowLog,
    /// pg_stat_statements between its last two reads by the agent.
    SincePreviousRead,
    /// pg_stat_statements since its last reset (or since the entry
    /// appeared).
    SinceReset,
}

/// The span of time some figures cover.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct Window {
    /// Which span it is.
    pub kind: WindowKind,
    /// Its start, seconds since the Unix epoch, when known.
    #[oai(skip_serializing_if_is_none)]
    pub from: Option<f64>,
    /// Its end (when the figures were read), seconds since the Unix epoch.
    pub to: f64,
    /// The same in words.
    pub description: String,
}

impl Window {
    /// pg_stat_statements between the agent's reads at `from` and `to`.
    pub fn since_previous_read(from: Option<SystemTime>, to: SystemTime) -> Self {
        Self {
            kind: WindowKind::SincePreviousRead,
            from: from.map(epoch),
            to: epoch(to),
            description: "pg_stat_statements between the agent's last two reads".to_owned(),
        }
    }

    /// pg_stat_statements from its reset (or the entry's start) at `from`
    /// to the read at `to`.
    pub fn since_reset(from: Option<SystemTime>, to: SystemTime) -> Self {
        Self {
            kind: WindowKind::SinceReset,
            from: from.map(epoch),
            to: epoch(to),
            description:
                "pg_stat_statements since its last reset (or since the statement first ran after it)"
                    .to_owned(),
        }
    }
}

/// One source's figures of a statement in a finding.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct SourceFigures {
    /// Executions in the window (the slow log: only those over the
    /// threshold).
    pub calls: u64,
    /// Their total, ms.
    pub total_ms: f64,
    /// Their mean, ms.
    pub mean_ms: f64,
    /// The slowest, ms (pg_stat_statements keeps no maximum per window:
    /// its slowest is since the reset, whatever `window` is).
    pub max_ms: f64,
    /// The span `calls`, `totalMs` and `meanMs` cover.
    pub window: Window,
}

/// Seconds since the Unix epoch.
pub fn epoch(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
