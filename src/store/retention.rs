//! Retention, downsampling and the size cap, run by the writer every few
//! minutes.
//!
//! Points live in three tiers: raw (a row per reader pass for statements,
//! per minute for routes and the runtime), 5-minute sums and hourly sums
//! ([`TIERS`]; the runtime's means and maxima: `retention/runtime.rs`). Once
//! a raw row is older than its tier keeps, it is added into the next
//! tier's row for its aligned bucket and deleted; hourly rows leave after
//! 90 days, sizes and events after a year. The active session history's
//! minutes (`retention/ash.rs`) go through the same tiers. Only whole buckets move (the
//! cutoff is aligned to the next tier's step), so no bucket is summed
//! twice.
//!
//! Then the cap: freed pages go back to the file system
//! (`incremental_vacuum`, a truncating WAL checkpoint) and while the file
//! is still above 90 % of `PERFSCOPE_STORE_MAX_BYTES` the oldest eighth of
//! what is kept goes, oldest first, so a cap too small for the workload
//! costs the far past before the recent detail.

mod ash;
mod runtime;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub use runtime::{RuntimeSums, add_runtime_point};

/// One tier of points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    /// Its number in the file.
    pub tier: i64,
    /// Its bucket, seconds (0: as written).
    pub step: i64,
    /// How long its rows stay before moving on (or leaving), seconds.
    pub keep: i64,
}

/// Raw for a day, 5-minute sums for 14 days, hourly for 90.
pub const TIERS: [Tier; 3] = [
    Tier {
        tier: 0,
        step: 0,
        keep: 86_400,
    },
    Tier {
        tier: 1,
        step: 300,
        keep: 14 * 86_400,
    },
    Tier {
        tier: 2,
        step: 3_600,
        keep: 90 * 86_400,
    },
];

/// Sizes, events and closed findings stay a year.
pub const KEEP_FACTS: i64 = 365 * 86_400;
/// Rounds of shaving the oldest eighth before giving up for this run.
const MAX_SHAVES: usize = 12;

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Rows moved into coarser tiers.
    pub rolled: usize,
    /// Rows past every tier, deleted.
    pub expired: usize,
    /// Rounds of the size cap.
    pub shaved: usize,
    /// Series left without points, deleted.
    pub series_removed: usize,
}

/// Retention, downsampling, the cap.
pub fn run(conn: &mut Connection, now: i64, max_bytes: u64) -> Result<Outcome, rusqlite::Error> {
    let mut outcome = Outcome::default();
    let tx = conn.transaction()?;
    for pair in TIERS.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let cutoff = (now - from.keep).div_euclid(to.step) * to.step;
        outcome.rolled += roll_statements(&tx, from.tier, to, cutoff)?;
        outcome.rolled += roll_routes(&tx, from.tier, to, cutoff)?;
        outcome.rolled += runtime::roll(&tx, from.tier, to, cutoff)?;
        outcome.rolled += ash::roll(&tx, from.tier, to, cutoff)?;
    }
    let last = TIERS[TIERS.len() - 1];
    let expiry = now - last.keep;
    outcome.expired += tx.execute(
        "DELETE FROM statement_points WHERE tier = ?1 AND ts < ?2",
        params![last.tier, expiry],
    )?;
    outcome.expired += tx.execute(
        "DELETE FROM route_points WHERE tier = ?1 AND ts < ?2",
        params![last.tier, expiry],
    )?;
    outcome.expired += tx.execute(
        "DELETE FROM runtime_points WHERE tier = ?1 AND ts < ?2",
        params![last.tier, expiry],
    )?;
    outcome.expired += ash::expire(&tx, last.tier, expiry)?;
    let facts = now - KEEP_FACTS;
    outcome.expired += tx.execute(
        "DELETE FROM sizes WHERE day < ?1",
        [facts.div_euclid(86_400)],
    )?;
    outcome.expired += tx.execute("DELETE FROM events WHERE ts < ?1", [facts])?;
    outcome.expired += tx.execute(
        "DELETE FROM findings WHERE closed IS NOT NULL AND closed < ?1",
        [facts],
    )?;
    tx.commit()?;
    reclaim(conn)?;
    while used_bytes(conn)? > max_bytes / 10 * 9 && outcome.shaved < MAX_SHAVES {
        if !shave(conn)? {
            break;
        }
        outcome.shaved += 1;
        reclaim(conn)?;
    }
    if outcome.rolled + outcome.expired + outcome.shaved > 0 {
        outcome.series_removed = conn.execute(
            "DELETE FROM series WHERE
                NOT EXISTS (SELECT 1 FROM statement_points p WHERE p.tier IN (0, 1, 2) AND p.series = series.id)
                AND NOT EXISTS (SELECT 1 FROM route_points p WHERE p.tier IN (0, 1, 2) AND p.series = series.id)
                AND NOT EXISTS (SELECT 1 FROM sizes s WHERE s.series = series.id)
                AND NOT EXISTS (SELECT 1 FROM ash_points p WHERE p.series = series.id)",
            [],
        )?;
    }
    Ok(outcome)
}

/// The main file's size in pages in use, bytes (the WAL is checkpointed
/// and truncated before this is read).
pub fn used_bytes(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(u64::try_from(pages.saturating_mul(size)).unwrap_or(0))
}

/// Gives freed pages back to the file system.
fn reclaim(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.execute_batch("PRAGMA incremental_vacuum")?;
    checkpoint(conn)
}

/// Writes the WAL into the file and truncates it.
pub fn checkpoint(conn: &Connection) -> Result<(), rusqlite::Error> {
    let _: (i64, i64, i64) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })?;
    Ok(())
}

/// Deletes the oldest eighth of the kept span of points, sizes and
/// events; false when there is nothing left to delete.
fn shave(conn: &mut Connection) -> Result<bool, rusqlite::Error> {
    let tx = conn.transaction()?;
    let span = |sql: &str| -> Result<Option<(i64, i64)>, rusqlite::Error> {
        tx.query_row(sql, [], |row| {
            Ok(
                match (row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?) {
                    (Some(min), Some(max)) => Some((min, max)),
                    _ => None,
                },
            )
        })
    };
    let mut deleted = 0;
    for (table, column, sql) in [
        (
            "statement_points",
            "ts",
            "SELECT min(ts), max(ts) FROM statement_points",
        ),
        (
            "route_points",
            "ts",
            "SELECT min(ts), max(ts) FROM route_points",
        ),
        (
            "runtime_points",
            "ts",
            "SELECT min(ts), max(ts) FROM runtime_points",
        ),
        (
            "ash_points",
            "ts",
            "SELECT min(ts), max(ts) FROM ash_points",
        ),
        ("ash_ticks", "ts", "SELECT min(ts), max(ts) FROM ash_ticks"),
        ("sizes", "day", "SELECT min(day), max(day) FROM sizes"),
        ("events", "ts", "SELECT min(ts), max(ts) FROM events"),
    ] {
        if let Some((min, max)) = span(sql)? {
            let cutoff = min + (max - min) / 8 + 1;
            deleted += tx.execute(
                &format!("DELETE FROM {table} WHERE {column} < ?1"),
                [cutoff],
            )?;
        }
    }
    tx.commit()?;
    Ok(deleted > 0)
}

fn roll_statements(
    tx: &Transaction<'_>,
    from: i64,
    to: Tier,
    cutoff: i64,
) -> Result<usize, rusqlite::Error> {
    tx.execute(
        "INSERT INTO statement_points
            (tier, series, ts, calls, total_us, rows, shared_hit, shared_read, temp_written, io_us)
         SELECT ?2, series, ts - ts % ?3, sum(calls), sum(total_us), sum(rows), sum(shared_hit),
                sum(shared_read), sum(temp_written), sum(io_us)
         FROM statement_points WHERE tier = ?1 AND ts < ?4
         GROUP BY series, ts - ts % ?3
         ON CONFLICT (tier, series, ts) DO UPDATE SET
            calls = calls + excluded.calls, total_us = total_us + excluded.total_us,
            rows = rows + excluded.rows, shared_hit = shared_hit + excluded.shared_hit,
            shared_read = shared_read + excluded.shared_read,
            temp_written = temp_written + excluded.temp_written, io_us = io_us + excluded.io_us",
        params![from, to.tier, to.step, cutoff],
    )?;
    tx.execute(
        "DELETE FROM statement_points WHERE tier = ?1 AND ts < ?2",
        params![from, cutoff],
    )
}

fn roll_routes(
    tx: &Transaction<'_>,
    from: i64,
    to: Tier,
    cutoff: i64,
) -> Result<usize, rusqlite::Error> {
    // In chunks of six hours, so a catch-up after a long stop does not
    // hold days of points in memory at once.
    const CHUNK: i64 = 6 * 3_600;
    let mut moved = 0;
    loop {
        let oldest: Option<i64> = tx
            .prepare_cached("SELECT min(ts) FROM route_points WHERE tier = ?1")?
            .query_row([from], |row| row.get(0))?;
        let Some(oldest) = oldest.filter(|&oldest| oldest < cutoff) else {
            return Ok(moved);
        };
        let end = cutoff.min((oldest + CHUNK).div_euclid(to.step) * to.step + to.step);
        let mut rows = Vec::new();
        {
            let mut statement = tx.prepare_cached(
                "SELECT series, ts, bounds, requests, errors, sum_us, buckets
                 FROM route_points WHERE tier = ?1 AND ts < ?2",
            )?;
            let mut query = statement.query(params![from, end])?;
            while let Some(row) = query.next()? {
                let blob: Vec<u8> = row.get(6)?;
                rows.push((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    RouteSums {
                        bounds: row.get(2)?,
                        requests: row.get(3)?,
                        errors: row.get(4)?,
                        sum_us: row.get(5)?,
                        buckets: decode_buckets(&blob).unwrap_or_default(),
                    },
                ));
            }
        }
        moved += rows.len();
        for (series, ts, sums) in rows {
            add_route_point(tx, to.tier, series, ts - ts.rem_euclid(to.step), &sums)?;
        }
        tx.execute(
            "DELETE FROM route_points WHERE tier = ?1 AND ts < ?2",
            params![from, end],
        )?;
    }
}

/// One route point's sums.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteSums {
    /// Id of its bounds.
    pub bounds: i64,
    /// Requests.
    pub requests: i64,
    /// Of them 5xx.
    pub errors: i64,
    /// Sum of durations, µs.
    pub sum_us: i64,
    /// Count per bucket.
    pub buckets: Vec<u64>,
}

/// Adds `sums` into the row at (tier, series, ts): created, or summed
/// into an existing row with the same bounds (a row with other bounds is
/// replaced: the newer bounds win).
pub fn add_route_point(
    tx: &Transaction<'_>,
    tier: i64,
    series: i64,
    ts: i64,
    sums: &RouteSums,
) -> Result<(), rusqlite::Error> {
    let existing = tx
        .prepare_cached(
            "SELECT bounds, requests, errors, sum_us, buckets FROM route_points
             WHERE tier = ?1 AND series = ?2 AND ts = ?3",
        )?
        .query_row(params![tier, series, ts], |row| {
            let blob: Vec<u8> = row.get(4)?;
            Ok(RouteSums {
                bounds: row.get(0)?,
                requests: row.get(1)?,
                errors: row.get(2)?,
                sum_us: row.get(3)?,
                buckets: decode_buckets(&blob).unwrap_or_default(),
            })
        })
        .optional()?;
    let mut merged = sums.clone();
    if let Some(old) = existing
        && old.bounds == sums.bounds
        && old.buckets.len() == sums.buckets.len()
    {
        merged.requests += old.requests;
        merged.errors += old.errors;
        merged.sum_us += old.sum_us;
        for (into, add) in merged.buckets.iter_mut().zip(&old.buckets) {
            *into += add;
        }
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO route_points
            (tier, series, ts, bounds, requests, errors, sum_us, buckets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        tier,
        series,
        ts,
        merged.bounds,
        merged.requests,
        merged.errors,
        merged.sum_us,
        encode_buckets(&merged.buckets)
    ])?;
    Ok(())
}

/// Bounds as stored: their shortest round-trip decimal forms.
pub fn bounds_text(bounds: &[f64]) -> String {
    bounds
        .iter()
        .map(|b| {
            if b.is_infinite() {
                "+Inf".to_owned()
            } else {
                b.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses [`bounds_text`].
pub fn parse_bounds(text: &str) -> Option<Vec<f64>> {
    text.split(',')
        .map(|part| {
            if part == "+Inf" {
                Some(f64::INFINITY)
            } else {
                part.parse().ok()
            }
        })
        .collect()
}

/// Bucket counts as LEB128 varints (most are 0: one byte each).
pub fn encode_buckets(buckets: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buckets.len() + 8);
    for &count in buckets {
        let mut value = count;
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// Reads [`encode_buckets`]; `None` for a malformed blob (at most 4096
/// buckets are read).
pub fn decode_buckets(bytes: &[u8]) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    let mut value: u64 = 0;
    let mut shift = 0u32;
    for &byte in bytes {
        if shift >= 64 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            out.push(value);
            if out.len() > 4_096 {
                return None;
            }
            value = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_and_garbage_is_refused() {
        let buckets = vec![0, 1, 127, 128, 300, u64::MAX, 0];
        assert_eq!(decode_buckets(&encode_buckets(&buckets)), Some(buckets));
        assert_eq!(decode_buckets(&[0x80]), None);
        assert_eq!(decode_buckets(&[0xff; 11]), None);
        assert_eq!(decode_buckets(&[]), Some(vec![]));
    }

    #[test]
    fn bounds_round_trip() {
        let bounds = [0.005, 0.1, 2.5, f64::INFINITY];
        assert_eq!(
            parse_bounds(&bounds_text(&bounds)).as_deref(),
            Some(&bounds[..])
        );
    }

    #[test]
    fn tiers_nest() {
        for pair in TIERS.windows(2) {
            assert!(pair[0].keep < pair[1].keep);
            assert!(pair[1].step > pair[0].step);
            assert_eq!(pair[0].keep % pair[1].step, 0);
        }
    }
}
