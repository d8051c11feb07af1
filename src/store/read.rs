//! Typed reads of the store, run through [`super::Store::read`]: series of
//! one statement, route or relation over a range, the totals of every
//! statement or route over a window (for comparisons and regressions),
//! the runtime's minutes, events and findings. Tiers hold disjoint times (rollup deletes what it
//! moves), so a read sums every tier in its range; a point's time is the
//! start of its bucket, aligned to the range's step.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::records::{EventKind, RelationKind};
use super::retention::{decode_buckets, parse_bounds};
use crate::metrics::HistogramSnapshot;

/// Most rows a listing returns.
pub const MAX_ROWS: usize = 1_000;

/// A time range, Unix seconds `[from, to)`, in steps of `step` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// Start, inclusive.
    pub from: i64,
    /// End, exclusive.
    pub to: i64,
    /// Bucket of the returned points, seconds (at least 1).
    pub step: i64,
}

impl Range {
    /// The last `seconds` before `now` in about `points` steps (a step at
    /// least a minute).
    pub fn last(now: i64, seconds: i64, points: i64) -> Self {
        Self {
            from: now - seconds,
            to: now + 1,
            step: (seconds / points.max(1)).max(60),
        }
    }

    fn step(&self) -> i64 {
        self.step.max(1)
    }
}

/// A statement's sums over one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StatementPoint {
    /// Start of the step.
    pub ts: i64,
    /// Calls.
    pub calls: i64,
    /// Execution time, ms.
    pub total_ms: f64,
    /// Rows.
    pub rows: i64,
    /// Shared blocks hit.
    pub shared_hit: i64,
    /// Shared blocks read.
    pub shared_read: i64,
    /// Temporary blocks written.
    pub temp_written: i64,
    /// Block I/O time, ms.
    pub io_ms: f64,
}

impl StatementPoint {
    /// Mean time per call, ms (`None` without calls).
    pub fn mean_ms(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.total_ms / self.calls as f64)
    }

    /// Blocks read per call (`None` without calls).
    pub fn reads_per_call(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.shared_read as f64 / self.calls as f64)
    }
}

const POINT_SUMS: &str = "sum(p.calls), sum(p.total_us), sum(p.rows), sum(p.shared_hit), \
     sum(p.shared_read), sum(p.temp_written), sum(p.io_us)";

fn point_from(row: &rusqlite::Row<'_>, ts: i64, first: usize) -> rusqlite::Result<StatementPoint> {
    Ok(StatementPoint {
        ts,
        calls: row.get(first)?,
        total_ms: row.get::<_, i64>(first + 1)? as f64 / 1_000.0,
        rows: row.get(first + 2)?,
        shared_hit: row.get(first + 3)?,
        shared_read: row.get(first + 4)?,
        temp_written: row.get(first + 5)?,
        io_ms: row.get::<_, i64>(first + 6)? as f64 / 1_000.0,
    })
}

fn series(
    conn: &Connection,
    kind: &str,
    database: &str,
    key: &str,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM series WHERE kind = ?1 AND database = ?2 AND key = ?3")?
        .query_row(params![kind, database, key], |row| row.get(0))
        .optional()
}

/// One statement over `range`, a point per step that had calls.
pub fn statement_series(
    conn: &Connection,
    database: &str,
    queryid: i64,
    range: Range,
) -> rusqlite::Result<Vec<StatementPoint>> {
    let Some(id) = series(conn, "statement", database, &queryid.to_string())? else {
        return Ok(Vec::new());
    };
    let step = range.step();
    let mut statement = conn.prepare_cached(&format!(
        "SELECT p.ts - p.ts % ?1 AS bucket, {POINT_SUMS} FROM statement_points p
         WHERE p.tier IN (0, 1, 2) AND p.series = ?2 AND p.ts >= ?3 AND p.ts < ?4
         GROUP BY bucket ORDER BY bucket"
    ))?;
    let rows = statement.query_map(params![step, id, range.from, range.to], |row| {
        point_from(row, row.get(0)?, 1)
    })?;
    rows.collect()
}

/// A statement's sums over a window.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementTotal {
    /// pg_stat_statements' queryid.
    pub queryid: i64,
    /// Its normalized text, when stored.
    pub text: Option<Arc<str>>,
    /// Its sums (`ts` is the window's start).
    pub sums: StatementPoint,
}

/// Every statement of `database` with calls in `[from, to)`, most time
/// first, at most `limit` (capped at [`MAX_ROWS`]).
pub fn statement_totals(
    conn: &Connection,
    database: &str,
    from: i64,
    to: i64,
    limit: usize,
) -> rusqlite::Result<Vec<StatementTotal>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT s.key, s.text, {POINT_SUMS} FROM statement_points p JOIN series s ON s.id = p.series
         WHERE p.tier IN (0, 1, 2) AND p.ts >= ?2 AND p.ts < ?3 AND s.database = ?1
         GROUP BY p.series ORDER BY sum(p.total_us) DESC LIMIT ?4"
    ))?;
    let rows = statement.query_map(
        params![
            database,
            from,
            to,
            i64::try_from(limit.min(MAX_ROWS)).unwrap_or(0)
        ],
        |row| {
            let key: String = row.get(0)?;
            let text: Option<String> = row.get(1)?;
            Ok(StatementTotal {
                queryid: key.parse().unwrap_or_default(),
                text: text.map(Arc::from),
                sums: point_from(row, from, 2)?,
            })
        },
    )?;
    rows.collect()
}

/// A route over one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoutePoint {
    /// Start of the step.
    pub ts: i64,
    /// Requests.
    pub requests: i64,
    /// Of them 5xx.
    pub errors: i64,
    /// Their durations, as the request-duration histogram's buckets.
    pub histogram: HistogramSnapshot,
}

impl RoutePoint {
    /// Adds one stored row's figures into this sum.
    fn add(&mut self, requests: i64, errors: i64, histogram: &HistogramSnapshot) {
        self.requests += requests;
        self.errors += errors;
        self.histogram.merge(histogram);
    }
}

/// One stored route row: `(ts, series, requests, errors, histogram)`.
type RouteRow = (i64, i64, i64, i64, HistogramSnapshot);

/// Hands `each` the route rows of `[from, to)`, optionally of one series,
/// one at a time: a month of rows is never held at once (the callers keep
/// one sum per step or per route). Rows whose bounds differ from the
/// newest set's are left out (the buckets changed with the config).
fn for_each_route_row(
    conn: &Connection,
    only: Option<i64>,
    from: i64,
    to: i64,
    mut each: impl FnMut(RouteRow),
) -> rusqlite::Result<()> {
    let Some((bounds_id, upper)) = conn
        .prepare_cached("SELECT id, upper FROM bounds ORDER BY id DESC LIMIT 1")?
        .query_row([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?
    else {
        return Ok(());
    };
    let bounds = parse_bounds(&upper).unwrap_or_default();
    let sql = if only.is_some() {
        "SELECT ts, series, requests, errors, sum_us, buckets FROM route_points
         WHERE tier IN (0, 1, 2) AND series = ?4 AND ts >= ?1 AND ts < ?2 AND bounds = ?3"
    } else {
        "SELECT ts, series, requests, errors, sum_us, buckets FROM route_points
         WHERE tier IN (0, 1, 2) AND ts >= ?1 AND ts < ?2 AND bounds = ?3 AND ?4 IS NULL"
    };
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params![from, to, bounds_id, only])?;
    while let Some(row) = rows.next()? {
        // A value that is not a blob decodes as no buckets: left out below.
        let blob = row.get_ref(5)?.as_blob().unwrap_or(&[]);
        let counts = decode_buckets(blob).unwrap_or_default();
        let histogram = if counts.len() == bounds.len() {
            HistogramSnapshot {
                sum: row.get::<_, i64>(4)? as f64 / 1e6,
                count: counts.iter().sum(),
                buckets: bounds.iter().copied().zip(counts).collect(),
            }
        } else {
            HistogramSnapshot::default()
        };
        each((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            histogram,
        ));
    }
    Ok(())
}

/// One route over `range`, a point per step that had requests.
pub fn route_series(
    conn: &Connection,
    method: &str,
    route: &str,
    range: Range,
) -> rusqlite::Result<Vec<RoutePoint>> {
    let Some(id) = series(conn, "route", "", &format!("{method} {route}"))? else {
        return Ok(Vec::new());
    };
    let step = range.step();
    let mut points: BTreeMap<i64, RoutePoint> = BTreeMap::new();
    for_each_route_row(
        conn,
        Some(id),
        range.from,
        range.to,
        |(ts, _, requests, errors, histogram)| {
            let bucket = ts - ts.rem_euclid(step);
            let point = points.entry(bucket).or_insert_with(|| RoutePoint {
                ts: bucket,
                ..RoutePoint::default()
            });
            point.add(requests, errors, &histogram);
        },
    )?;
    Ok(points.into_values().collect())
}

/// A route's sums over a window.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteTotal {
    /// Its method.
    pub method: String,
    /// Its template.
    pub route: String,
    /// Its sums (`ts` is the window's start).
    pub sums: RoutePoint,
}

/// Every route with requests in `[from, to)`, most requests first, at
/// most [`MAX_ROWS`].
pub fn route_totals(conn: &Connection, from: i64, to: i64) -> rusqlite::Result<Vec<RouteTotal>> {
    let mut by_series: BTreeMap<i64, RoutePoint> = BTreeMap::new();
    for_each_route_row(
        conn,
        None,
        from,
        to,
        |(_, series, requests, errors, histogram)| {
            let point = by_series.entry(series).or_insert_with(|| RoutePoint {
                ts: from,
                ..RoutePoint::default()
            });
            point.add(requests, errors, &histogram);
        },
    )?;
    let mut names = conn.prepare_cached("SELECT key FROM series WHERE id = ?1")?;
    let mut totals = Vec::with_capacity(by_series.len());
    for (series, sums) in by_series {
        let key: String = names.query_row([series], |row| row.get(0))?;
        let (method, route) = key.split_once(' ').unwrap_or(("", key.as_str()));
        totals.push(RouteTotal {
            method: method.to_owned(),
            route: route.to_owned(),
            sums,
        });
    }
    totals.sort_by_key(|total| std::cmp::Reverse(total.sums.requests));
    totals.truncate(MAX_ROWS);
    Ok(totals)
}

/// The runtime over one step: the mean of its minutes' means and the max
/// of their maxima.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RuntimeStep {
    /// Start of the step.
    pub ts: i64,
    /// Minutes recorded in it.
    pub minutes: i64,
    /// Mean event-loop lag, seconds.
    pub lag_mean: f64,
    /// Worst event-loop lag, seconds.
    pub lag_max: f64,
    /// Mean busy share of the workers, 0..1.
    pub utilization: f64,
    /// Mean resident memory, bytes.
    pub resident_mean: f64,
    /// Highest resident memory, bytes.
    pub resident_max: i64,
}

/// The runtime over `range`, a point per step that had a minute recorded.
pub fn runtime_series(conn: &Connection, range: Range) -> rusqlite::Result<Vec<RuntimeStep>> {
    let mut statement = conn.prepare_cached(
        "SELECT ts - ts % ?1 AS bucket, sum(minutes), sum(lag_us_sum), max(lag_max_us),
                sum(busy_ppm_sum), sum(resident_sum), max(resident_max)
         FROM runtime_points WHERE tier IN (0, 1, 2) AND ts >= ?2 AND ts < ?3
         GROUP BY bucket HAVING sum(minutes) > 0 ORDER BY bucket",
    )?;
    let rows = statement.query_map(params![range.step(), range.from, range.to], |row| {
        let minutes: i64 = row.get(1)?;
        let mean = |sum: i64| sum as f64 / minutes as f64;
        Ok(RuntimeStep {
            ts: row.get(0)?,
            minutes,
            lag_mean: mean(row.get(2)?) / 1e6,
            lag_max: row.get::<_, i64>(3)? as f64 / 1e6,
            utilization: mean(row.get(4)?) / 1e6,
            resident_mean: mean(row.get(5)?),
            resident_max: row.get(6)?,
        })
    })?;
    rows.collect()
}

/// A relation's size on one day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizePoint {
    /// Unix day number (seconds / 86 400).
    pub day: i64,
    /// Bytes at the day's last reading.
    pub bytes: i64,
}

/// One relation's sizes from `from_day` on, oldest first.
pub fn sizes(
    conn: &Connection,
    database: &str,
    kind: RelationKind,
    name: &str,
    from_day: i64,
) -> rusqlite::Result<Vec<SizePoint>> {
    let Some(id) = series(conn, kind.as_str(), database, name)? else {
        return Ok(Vec::new());
    };
    let mut statement = conn.prepare_cached(
        "SELECT day, bytes FROM sizes WHERE series = ?1 AND day >= ?2 ORDER BY day LIMIT 1000",
    )?;
    let rows = statement.query_map(params![id, from_day], |row| {
        Ok(SizePoint {
            day: row.get(0)?,
            bytes: row.get(1)?,
        })
    })?;
    rows.collect()
}

/// Every relation of a kind in `database` with its sizes from `from_day`
/// on: `(name, points)`, at most [`MAX_ROWS`] relations.
pub fn all_sizes(
    conn: &Connection,
    database: &str,
    kind: RelationKind,
    from_day: i64,
) -> rusqlite::Result<Vec<(String, Vec<SizePoint>)>> {
    let mut statement = conn.prepare_cached(
        "SELECT s.key, z.day, z.bytes FROM sizes z JOIN series s ON s.id = z.series
         WHERE s.kind = ?1 AND s.database = ?2 AND z.day >= ?3 ORDER BY s.key, z.day",
    )?;
    let mut out: Vec<(String, Vec<SizePoint>)> = Vec::new();
    let mut rows = statement.query(params![kind.as_str(), database, from_day])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let point = SizePoint {
            day: row.get(1)?,
            bytes: row.get(2)?,
        };
        match out.last_mut() {
            Some((last, points)) if *last == name => points.push(point),
            _ => {
                if out.len() >= MAX_ROWS {
                    break;
                }
                out.push((name, vec![point]));
            }
        }
    }
    Ok(out)
}

/// A stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// Its id.
    pub id: i64,
    /// When, Unix seconds.
    pub at: i64,
    /// What.
    pub kind: EventKind,
    /// The database, if one.
    pub database: Option<String>,
    /// Its label.
    pub label: String,
    /// Its details.
    pub detail: Option<String>,
}

/// Events in `[from, to)`, newest first, at most `limit` (capped at
/// [`MAX_ROWS`]).
pub fn events(
    conn: &Connection,
    from: i64,
    to: i64,
    limit: usize,
) -> rusqlite::Result<Vec<EventRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, ts, kind, database, label, detail FROM events
         WHERE ts >= ?1 AND ts < ?2 ORDER BY ts DESC, id DESC LIMIT ?3",
    )?;
    let rows = statement.query_map(
        params![from, to, i64::try_from(limit.min(MAX_ROWS)).unwrap_or(0)],
        |row| {
            let kind: String = row.get(2)?;
            Ok(EventRow {
                id: row.get(0)?,
                at: row.get(1)?,
                kind: EventKind::parse(&kind).unwrap_or(EventKind::Marker),
                database: row.get(3)?,
                label: row.get(4)?,
                detail: row.get(5)?,
            })
        },
    )?;
    rows.collect()
}

/// The newest event of a kind, if any.
pub fn last_event(conn: &Connection, kind: EventKind) -> rusqlite::Result<Option<EventRow>> {
    Ok(events_of(conn, kind, 1)?.into_iter().next())
}

/// The newest `limit` events of a kind.
pub fn events_of(
    conn: &Connection,
    kind: EventKind,
    limit: usize,
) -> rusqlite::Result<Vec<EventRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, ts, database, label, detail FROM events WHERE kind = ?1
         ORDER BY ts DESC, id DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(
        params![
            kind.as_str(),
            i64::try_from(limit.min(MAX_ROWS)).unwrap_or(0)
        ],
        |row| {
            Ok(EventRow {
                id: row.get(0)?,
                at: row.get(1)?,
                kind,
                database: row.get(2)?,
                label: row.get(3)?,
                detail: row.get(4)?,
            })
        },
    )?;
    rows.collect()
}

/// A finding as the store remembers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingRow {
    /// Its key.
    pub key: String,
    /// Its severity.
    pub severity: String,
    /// Its summary.
    pub summary: String,
    /// Opened, Unix seconds.
    pub opened: i64,
    /// Closed, if it has.
    pub closed: Option<i64>,
}

/// Findings open at any time in `[from, to)`, newest first.
pub fn findings(conn: &Connection, from: i64, to: i64) -> rusqlite::Result<Vec<FindingRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT key, severity, summary, opened, closed FROM findings
         WHERE opened < ?2 AND (closed IS NULL OR closed >= ?1)
         ORDER BY opened DESC LIMIT 1000",
    )?;
    let rows = statement.query_map(params![from, to], |row| {
        Ok(FindingRow {
            key: row.get(0)?,
            severity: row.get(1)?,
            summary: row.get(2)?,
            opened: row.get(3)?,
            closed: row.get(4)?,
        })
    })?;
    rows.collect()
}

/// The databases with stored statements, at most `limit` (capped at
/// [`MAX_ROWS`]).
pub fn statement_databases(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached(
        "SELECT DISTINCT database FROM series WHERE kind = 'statement' ORDER BY database LIMIT ?1",
    )?;
    let rows = statement.query_map([i64::try_from(limit.min(MAX_ROWS)).unwrap_or(0)], |row| {
        row.get(0)
    })?;
    rows.collect()
}

/// The findings open now whose key starts with `prefix`, newest first, at
/// most `limit` (capped at [`MAX_ROWS`]).
pub fn open_findings(
    conn: &Connection,
    prefix: &str,
    limit: usize,
) -> rusqlite::Result<Vec<FindingRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT key, severity, summary, opened, closed FROM findings
         WHERE closed IS NULL AND substr(key, 1, length(?1)) = ?1
         ORDER BY opened DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(
        params![prefix, i64::try_from(limit.min(MAX_ROWS)).unwrap_or(0)],
        |row| {
            Ok(FindingRow {
                key: row.get(0)?,
                severity: row.get(1)?,
                summary: row.get(2)?,
                opened: row.get(3)?,
                closed: row.get(4)?,
            })
        },
    )?;
    rows.collect()
}
