//! Growth and forecasts of one watched database, for the API
//! (`GET /api/performance/growth`) and the Database page: each table's,
//! index's and the database's growth per day over the daily sizes the
//! history store kept, the days until each is twice its size (and until a
//! size the request names: the volume's size is not something Postgres
//! knows), and the days until each sequence the checks reader watches
//! runs out.
//!
//! The trend itself is [`crate::findings::growth`]'s; this use case reads
//! the store, fits each series once, and orders them fastest-growing
//! first. Without a store (a build without it, no data directory, or a
//! file that could not open) it answers why, rather than an error: the
//! rest of the page still holds.

use crate::Perfscope;
use crate::findings::growth::{Fit, fit};

use super::ServiceError;

/// Rows listed when the request names no limit.
pub const DEFAULT_LIMIT: usize = 20;
/// The most rows listed.
pub const MAX_LIMIT: usize = 100;

/// Whether there is history to forecast from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum History {
    /// The store is open: each series' forecast says whether it had
    /// enough days.
    Kept,
    /// No history is kept, and why.
    NotKept(String),
}

/// What a size row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub enum ObjectKind {
    /// The whole database.
    Database,
    /// A table with its TOAST and indexes.
    Table,
    /// One index.
    Index,
}

impl ObjectKind {
    /// `database`, `table` or `index`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Table => "table",
            Self::Index => "index",
        }
    }
}

/// One relation's (or the database's) growth.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeGrowth {
    /// Database, table or index.
    pub kind: ObjectKind,
    /// `schema.name` (the database's name for the database).
    pub name: String,
    /// Its trend, or how many days there are.
    pub fit: Fit,
    /// Days until twice its size, by the trend.
    pub days_until_double: Option<f64>,
    /// Days until the request's target size, by the trend.
    pub days_until_target: Option<f64>,
    /// Its daily sizes over the window, `(day, bytes)`, oldest first (for
    /// the page's chart).
    pub points: Vec<(i64, f64)>,
}

/// One sequence's advance.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceGrowth {
    /// `schema.name`.
    pub name: String,
    /// Its trend (values per day), or how many days there are.
    pub fit: Fit,
    /// The value it runs out at (its maximum, or minimum if descending),
    /// from the checks reader's last pass.
    pub bound: Option<f64>,
    /// Days until it reaches the bound, by the trend.
    pub days_until_exhausted: Option<f64>,
}

/// One database's growth.
#[derive(Clone, Debug, PartialEq)]
pub struct GrowthReport {
    /// The watched database.
    pub database: String,
    /// Whether history is kept.
    pub history: History,
    /// The target size the request named, bytes.
    pub target_bytes: Option<i64>,
    /// The database as a whole.
    pub total: Option<SizeGrowth>,
    /// Tables and indexes, fastest-growing first, then the largest of
    /// those without a trend; at most the request's limit.
    pub objects: Vec<SizeGrowth>,
    /// Sequences, soonest exhausted first.
    pub sequences: Vec<SequenceGrowth>,
}

/// The growth of the watched database `name` (default: `default`), at
/// most `limit` tables and indexes (capped at [`MAX_LIMIT`]), with the
/// days until `target_bytes` when given.
pub async fn report(
    perfscope: &Perfscope,
    name: Option<&str>,
    limit: Option<usize>,
    target_bytes: Option<i64>,
) -> Result<GrowthReport, ServiceError> {
    let watched = super::databases::watched(perfscope, name)?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut report = GrowthReport {
        database: watched.name.to_string(),
        history: History::Kept,
        target_bytes,
        total: None,
        objects: Vec::new(),
        sequences: Vec::new(),
    };
    let series = match stored(perfscope, &watched.name).await {
        Ok(series) => series,
        Err(why) => {
            report.history = History::NotKept(why);
            return Ok(report);
        }
    };
    let bounds: Vec<(String, f64)> = watched
        .checks
        .latest()
        .map(|checks| {
            checks
                .iter()
                .filter(|check| check.kind == "sequence")
                .map(|check| (check.object.clone(), check.limit))
                .collect()
        })
        .unwrap_or_default();
    assemble(&mut report, series, &bounds, limit);
    tracing::debug!(
        database = %report.database,
        objects = report.objects.len(),
        sequences = report.sequences.len(),
        "growth report"
    );
    Ok(report)
}

/// Fits every series of `series` into `report`: the database's total,
/// the `limit` fastest-growing tables and indexes, the `limit` sequences
/// soonest exhausted (`bounds`: each sequence's bound, by name).
fn assemble(report: &mut GrowthReport, series: Stored, bounds: &[(String, f64)], limit: usize) {
    let target = report.target_bytes.map(|t| t as f64);
    let mut objects: Vec<SizeGrowth> = Vec::new();
    for (kind, name, points) in series.sizes {
        let growth = size_growth(kind, name, points, target);
        if kind == ObjectKind::Database {
            report.total = Some(growth);
        } else {
            objects.push(growth);
        }
    }
    objects.sort_by(|a, b| order(&a.fit).total_cmp(&order(&b.fit)).reverse());
    objects.truncate(limit);
    report.objects = objects;
    let mut sequences: Vec<SequenceGrowth> = series
        .sequences
        .into_iter()
        .map(|(name, points)| {
            let fit = fit(&points);
            let bound = bounds
                .iter()
                .find(|(object, _)| *object == name)
                .map(|(_, bound)| *bound);
            let days_until_exhausted = fit
                .trend()
                .zip(bound)
                .and_then(|(trend, bound)| trend.days_until(bound));
            SequenceGrowth {
                name,
                fit,
                bound,
                days_until_exhausted,
            }
        })
        .collect();
    sequences.sort_by(|a, b| {
        let soon = |s: &SequenceGrowth| s.days_until_exhausted.unwrap_or(f64::INFINITY);
        soon(a).total_cmp(&soon(b))
    });
    sequences.truncate(limit);
    report.sequences = sequences;
}

fn size_growth(
    kind: ObjectKind,
    name: String,
    points: Vec<(i64, f64)>,
    target: Option<f64>,
) -> SizeGrowth {
    let fit = fit(&points);
    SizeGrowth {
        kind,
        name,
        days_until_double: fit.trend().and_then(|t| t.days_until_double()),
        days_until_target: fit
            .trend()
            .zip(target)
            .and_then(|(t, target)| t.days_until_size(target)),
        fit,
        points,
    }
}

/// The sort key: growth per day for a trend; below any trend, the size of
/// those without one.
fn order(fit: &Fit) -> f64 {
    match fit {
        Fit::Trend(trend) => trend.per_day,
        Fit::NotEnoughHistory { now, .. } => -1e30 + now.unwrap_or(0.0) * 1e-6,
    }
}

/// Daily readings, `(day, value)`.
type Days = Vec<(i64, f64)>;

/// Every stored series of one database over the window.
struct Stored {
    sizes: Vec<(ObjectKind, String, Days)>,
    sequences: Vec<(String, Days)>,
}

/// The window's daily sizes and sequence positions from the store, or why
/// there are none.
#[cfg(feature = "store")]
async fn stored(perfscope: &Perfscope, database: &str) -> Result<Stored, String> {
    let Some(store) = perfscope.store() else {
        return Err("no history is kept: PERFSCOPE_DATA_DIR is off".into());
    };
    let from_day = store.now().div_euclid(86_400) - crate::findings::growth::WINDOW_DAYS;
    let name = database.to_owned();
    let database = name.clone();
    let read = store
        .read(move |conn| read_stored(conn, &database, from_day))
        .await;
    match read {
        Ok(stored) => Ok(stored),
        Err(error) => {
            tracing::warn!(database = %name, %error, "growth: the history store could not be read");
            Err(format!("the history store cannot be read now: {error}"))
        }
    }
}

/// The daily sizes and sequence positions of `database` from `from_day`
/// on, as stored.
#[cfg(feature = "store")]
fn read_stored(
    conn: &rusqlite::Connection,
    database: &str,
    from_day: i64,
) -> rusqlite::Result<Stored> {
    use crate::store::{RelationKind, SizePoint, read};
    let plain = |points: Vec<SizePoint>| -> Vec<(i64, f64)> {
        points.iter().map(|p| (p.day, p.bytes as f64)).collect()
    };
    let mut sizes = Vec::new();
    for (kind, ours) in [
        (RelationKind::Database, ObjectKind::Database),
        (RelationKind::Table, ObjectKind::Table),
        (RelationKind::Index, ObjectKind::Index),
    ] {
        for (name, points) in read::all_sizes(conn, database, kind, from_day)? {
            sizes.push((ours, name, plain(points)));
        }
    }
    let sequences = read::all_sizes(conn, database, RelationKind::Sequence, from_day)?
        .into_iter()
        .map(|(name, points)| (name, plain(points)))
        .collect();
    Ok(Stored { sizes, sequences })
}

#[cfg(all(test, feature = "store"))]
mod tests;

#[cfg(not(feature = "store"))]
async fn stored(_: &Perfscope, _: &str) -> Result<Stored, String> {
    Err("no history is kept: this build has no history store".into())
}
