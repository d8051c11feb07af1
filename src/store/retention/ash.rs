//! The active session history's minutes through the tiers: points and
//! ticks are counts, so a bucket of a coarser tier is their sum.

use rusqlite::{Transaction, params};

use super::Tier;

/// Moves the rows of tier `from` older than `cutoff` into `to`'s buckets;
/// the rows moved.
pub fn roll(
    tx: &Transaction<'_>,
    from: i64,
    to: Tier,
    cutoff: i64,
) -> Result<usize, rusqlite::Error> {
    tx.execute(
        "INSERT INTO ash_points (tier, ts, series, samples)
         SELECT ?2, ts - ts % ?3, series, sum(samples)
         FROM ash_points WHERE tier = ?1 AND ts < ?4
         GROUP BY ts - ts % ?3, series
         ON CONFLICT (tier, ts, series) DO UPDATE SET samples = samples + excluded.samples",
        params![from, to.tier, to.step, cutoff],
    )?;
    tx.execute(
        "INSERT INTO ash_ticks (tier, database, ts, samples)
         SELECT ?2, database, ts - ts % ?3, sum(samples)
         FROM ash_ticks WHERE tier = ?1 AND ts < ?4
         GROUP BY database, ts - ts % ?3
         ON CONFLICT (tier, database, ts) DO UPDATE SET samples = samples + excluded.samples",
        params![from, to.tier, to.step, cutoff],
    )?;
    let moved = tx.execute(
        "DELETE FROM ash_points WHERE tier = ?1 AND ts < ?2",
        params![from, cutoff],
    )?;
    Ok(moved
        + tx.execute(
            "DELETE FROM ash_ticks WHERE tier = ?1 AND ts < ?2",
            params![from, cutoff],
        )?)
}

/// Deletes the rows of tier `tier` older than `expiry`.
pub fn expire(tx: &Transaction<'_>, tier: i64, expiry: i64) -> Result<usize, rusqlite::Error> {
    Ok(tx.execute(
        "DELETE FROM ash_points WHERE tier = ?1 AND ts < ?2",
        params![tier, expiry],
    )? + tx.execute(
        "DELETE FROM ash_ticks WHERE tier = ?1 AND ts < ?2",
        params![tier, expiry],
    )?)
}
