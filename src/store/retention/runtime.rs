//! The runtime's minutes through the tiers. A row sums `minutes` minutes:
//! means are kept as sums (lag, utilization, resident memory; divided by
//! `minutes` when read, so a step's mean weighs each minute once: the mean
//! of the minutes' means) and maxima as maxima (the worst lag, the highest
//! resident memory: the max of the maxes). Rolling a bucket up is then a
//! plain `sum` and `max`, like the statements' sums beside it.

use rusqlite::{Transaction, params};

use super::Tier;
use crate::store::records::RuntimeMinute;

/// One runtime row's sums and maxima.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeSums {
    /// Minutes summed in.
    pub minutes: i64,
    /// Sum of the minutes' mean lag, µs.
    pub lag_us_sum: i64,
    /// Worst lag, µs.
    pub lag_max_us: i64,
    /// Sum of the minutes' mean utilization, parts per million.
    pub busy_ppm_sum: i64,
    /// Sum of the minutes' mean resident memory, bytes.
    pub resident_sum: i64,
    /// Highest resident memory, bytes.
    pub resident_max: i64,
}

impl RuntimeSums {
    /// One minute as stored (negative or non-finite figures count as 0).
    pub fn minute(minute: &RuntimeMinute) -> Self {
        let micros = |seconds: f64| {
            if seconds.is_finite() {
                (seconds.max(0.0) * 1e6).round() as i64
            } else {
                0
            }
        };
        let ppm = if minute.utilization.is_finite() {
            (minute.utilization.clamp(0.0, 1.0) * 1e6).round() as i64
        } else {
            0
        };
        let bytes = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        Self {
            minutes: 1,
            lag_us_sum: micros(minute.lag_mean),
            lag_max_us: micros(minute.lag_max),
            busy_ppm_sum: ppm,
            resident_sum: bytes(minute.resident_mean),
            resident_max: bytes(minute.resident_max),
        }
    }
}

/// Adds `sums` into the row at (tier, ts): sums added, maxima kept.
pub fn add_runtime_point(
    tx: &Transaction<'_>,
    tier: i64,
    ts: i64,
    sums: &RuntimeSums,
) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO runtime_points
            (tier, ts, minutes, lag_us_sum, lag_max_us, busy_ppm_sum, resident_sum, resident_max)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (tier, ts) DO UPDATE SET
            minutes = minutes + excluded.minutes, lag_us_sum = lag_us_sum + excluded.lag_us_sum,
            lag_max_us = max(lag_max_us, excluded.lag_max_us),
            busy_ppm_sum = busy_ppm_sum + excluded.busy_ppm_sum,
            resident_sum = resident_sum + excluded.resident_sum,
            resident_max = max(resident_max, excluded.resident_max)",
    )?
    .execute(params![
        tier,
        ts,
        sums.minutes,
        sums.lag_us_sum,
        sums.lag_max_us,
        sums.busy_ppm_sum,
        sums.resident_sum,
        sums.resident_max,
    ])?;
    Ok(())
}

/// Moves the rows of tier `from` older than `cutoff` into `to`'s buckets;
/// the rows moved.
pub fn roll(
    tx: &Transaction<'_>,
    from: i64,
    to: Tier,
    cutoff: i64,
) -> Result<usize, rusqlite::Error> {
    tx.execute(
        "INSERT INTO runtime_points
            (tier, ts, minutes, lag_us_sum, lag_max_us, busy_ppm_sum, resident_sum, resident_max)
         SELECT ?2, ts - ts % ?3, sum(minutes), sum(lag_us_sum), max(lag_max_us),
                sum(busy_ppm_sum), sum(resident_sum), max(resident_max)
         FROM runtime_points WHERE tier = ?1 AND ts < ?4
         GROUP BY ts - ts % ?3
         ON CONFLICT (tier, ts) DO UPDATE SET
            minutes = minutes + excluded.minutes, lag_us_sum = lag_us_sum + excluded.lag_us_sum,
            lag_max_us = max(lag_max_us, excluded.lag_max_us),
            busy_ppm_sum = busy_ppm_sum + excluded.busy_ppm_sum,
            resident_sum = resident_sum + excluded.resident_sum,
            resident_max = max(resident_max, excluded.resident_max)",
        params![from, to.tier, to.step, cutoff],
    )?;
    tx.execute(
        "DELETE FROM runtime_points WHERE tier = ?1 AND ts < ?2",
        params![from, cutoff],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_is_stored_in_whole_units_and_nonsense_counts_as_zero() {
        let sums = RuntimeSums::minute(&RuntimeMinute {
            at: 60,
            lag_mean: 0.000_25,
            lag_max: 0.0123,
            utilization: 1.5,
            resident_mean: 20 << 20,
            resident_max: 21 << 20,
        });
        assert_eq!(
            sums,
            RuntimeSums {
                minutes: 1,
                lag_us_sum: 250,
                lag_max_us: 12_300,
                busy_ppm_sum: 1_000_000,
                resident_sum: 20 << 20,
                resident_max: 21 << 20,
            }
        );
        let nonsense = RuntimeSums::minute(&RuntimeMinute {
            lag_mean: f64::NAN,
            lag_max: -1.0,
            utilization: f64::INFINITY,
            ..RuntimeMinute::default()
        });
        assert_eq!(
            (
                nonsense.lag_us_sum,
                nonsense.lag_max_us,
                nonsense.busy_ppm_sum
            ),
            (0, 0, 0)
        );
    }
}
