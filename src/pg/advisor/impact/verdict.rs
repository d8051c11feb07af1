//! The verdict on one statement around a new index, from its
//! pg_stat_statements figures before and after: kept apart from the
//! tracker so the rule (mean time the measure, blocks per call the
//! witness) reads in one place and is tested without a database.

use crate::pg::readers::statements::Figures;

/// Calls after the index before a verdict.
pub const MIN_CALLS_AFTER: i64 = 20;
/// The mean-time ratio that counts as a change (`helped` or `worse`).
pub const SPEEDUP: f64 = 1.5;
/// The least mean time "after" is taken as, so a speedup stays finite.
const MIN_MEAN_MS: f64 = 0.001;

/// What the comparison says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fewer than [`MIN_CALLS_AFTER`] calls since the index appeared.
    Pending,
    /// Faster by [`SPEEDUP`]× or more, with fewer blocks per call.
    Helped,
    /// Neither faster nor slower by that much (or blocks disagree).
    NoEffect,
    /// Slower by [`SPEEDUP`]× or more, with more blocks per call.
    Worse,
}

impl Verdict {
    /// Every verdict, in the metric's order.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Helped, Self::NoEffect, Self::Worse];

    /// Its name in the API and the metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Helped => "helped",
            Self::NoEffect => "no_effect",
            Self::Worse => "worse",
        }
    }
}

/// Shared blocks touched (hit or read) per call.
pub(super) fn blocks_per_call(figures: &Figures) -> f64 {
    per_call(figures, (figures.shared_hit + figures.shared_read) as f64)
}

pub(super) fn rows_per_call(figures: &Figures) -> f64 {
    per_call(figures, figures.rows as f64)
}

fn per_call(figures: &Figures, value: f64) -> f64 {
    if figures.calls > 0 {
        value / figures.calls as f64
    } else {
        0.0
    }
}

/// `before`'s mean time over `after`'s.
pub(super) fn speedup(before: &Figures, after: &Figures) -> f64 {
    before.mean_ms() / after.mean_ms().max(MIN_MEAN_MS)
}

/// The verdict on a statement from its figures before the index and its
/// figures since (both sums over calls).
pub fn judge(before: &Figures, after: &Figures) -> Verdict {
    if before.calls <= 0 || after.calls < MIN_CALLS_AFTER {
        return Verdict::Pending;
    }
    let speedup = speedup(before, after);
    let (blocks_before, blocks_after) = (blocks_per_call(before), blocks_per_call(after));
    if speedup >= SPEEDUP && blocks_after < blocks_before {
        Verdict::Helped
    } else if speedup <= 1.0 / SPEEDUP && blocks_after > blocks_before {
        Verdict::Worse
    } else {
        Verdict::NoEffect
    }
}

/// `now - earlier`, or `None` when any counter went backwards (a reset or
/// an eviction between the two reads).
pub(super) fn growth(now: &Figures, earlier: &Figures) -> Option<Figures> {
    let grown = now.minus(earlier);
    let backwards = grown.calls < 0
        || grown.total_ms < 0.0
        || grown.rows < 0
        || grown.shared_hit < 0
        || grown.shared_read < 0
        || grown.io_ms < 0.0
        || grown.temp_written < 0;
    (!backwards).then_some(grown)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn figures(calls: i64, total_ms: f64, blocks: i64) -> Figures {
        Figures {
            calls,
            total_ms,
            rows: calls,
            shared_hit: blocks,
            ..Figures::default()
        }
    }

    #[test]
    fn a_faster_statement_touching_fewer_blocks_was_helped() {
        let before = figures(100, 5_200.0, 40_000);
        let after = figures(30, 27.0, 120);
        assert_eq!(judge(&before, &after), Verdict::Helped);
        assert!((speedup(&before, &after) - 52.0 / 0.9).abs() < 1e-6);
    }

    #[test]
    fn too_few_calls_after_is_pending() {
        let before = figures(100, 5_200.0, 40_000);
        assert_eq!(
            judge(&before, &figures(MIN_CALLS_AFTER - 1, 1.0, 10)),
            Verdict::Pending
        );
        assert_eq!(
            judge(&Figures::default(), &figures(50, 1.0, 10)),
            Verdict::Pending
        );
    }

    #[test]
    fn time_alone_is_not_enough_blocks_must_agree() {
        let before = figures(100, 500.0, 40_000);
        // Twice as fast, same blocks: a less busy server, not the index.
        assert_eq!(
            judge(&before, &figures(100, 250.0, 40_000)),
            Verdict::NoEffect
        );
        // Slower with more blocks: worse; slower with the same: noise.
        assert_eq!(
            judge(&before, &figures(100, 1_000.0, 90_000)),
            Verdict::Worse
        );
        assert_eq!(
            judge(&before, &figures(100, 1_000.0, 40_000)),
            Verdict::NoEffect
        );
        // Within 1.5×: no effect.
        assert_eq!(
            judge(&before, &figures(100, 400.0, 30_000)),
            Verdict::NoEffect
        );
    }
}
