//! What a plan change is, as the API, the page, the findings and the store
//! read it: the two shapes, when it was seen, and the statement's figures
//! before and after. A type of its own, apart from the tracker, so a
//! consumer (the store persisting changes, the findings) depends on what a
//! change says, not on how changes are found.

use crate::pg::readers::statements::Figures;

/// Calls each side of a change needs before the two are compared.
pub const MIN_CALLS: u64 = 10;
/// Mean time after over mean time before from which a change made the
/// statement slower (a finding).
pub const SLOWER: f64 = 2.0;

/// A statement's figures over one window around a change.
#[derive(Clone, Copy, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct PlanWindow {
    /// Calls in the window.
    pub calls: u64,
    /// Mean execution time per call, ms.
    pub mean_ms: f64,
    /// Shared blocks touched (hit or read) per call.
    pub blocks_per_call: f64,
}

impl PlanWindow {
    /// The window of `figures` (a growth of pg_stat_statements' counters),
    /// `None` when a counter went backwards.
    pub fn of(figures: &Figures) -> Option<Self> {
        if figures.calls < 0 || figures.total_ms < 0.0 || figures.shared_hit < 0 {
            return None;
        }
        let calls = u64::try_from(figures.calls).ok()?;
        let per_call = |v: f64| if calls > 0 { v / calls as f64 } else { 0.0 };
        Some(Self {
            calls,
            mean_ms: figures.mean_ms(),
            blocks_per_call: per_call((figures.shared_hit + figures.shared_read) as f64),
        })
    }
}

/// A statement whose generic plan's shape changed between two passes.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct PlanChange {
    /// Its sequence number in this database, from 1 (per agent process).
    pub seq: u64,
    /// The sequence number of its last update (its "after" window grows
    /// with each pass while the new plan holds).
    pub updated: u64,
    /// The watched database.
    pub database: String,
    /// pg_stat_statements' queryid.
    pub queryid: String,
    /// The normalized statement (no literal values).
    #[oai(skip_serializing_if_is_none)]
    pub statement: Option<String>,
    /// When the new plan was first seen, seconds since the Unix epoch.
    pub detected_at: f64,
    /// The earlier plan shape's fingerprint (16 hex digits).
    pub before_fingerprint: String,
    /// The new plan shape's fingerprint.
    pub after_fingerprint: String,
    /// The earlier plan's shape: one node a line, in tree order, with its
    /// relation and index (no costs, rows or conditions).
    pub before_shape: String,
    /// The new plan's shape.
    pub after_shape: String,
    /// The statement under the earlier plan: from the start of that plan's
    /// window (pg_stat_statements' last reset for the first plan the agent
    /// saw) to the last read before a pass that still planned it. Absent
    /// when that plan was seen on one pass only.
    #[oai(skip_serializing_if_is_none)]
    pub before: Option<PlanWindow>,
    /// The statement under the new plan, from the first read after the
    /// change was seen (calls in between may have run either plan), filled
    /// in as passes come; absent until the second pass after the change.
    #[oai(skip_serializing_if_is_none)]
    pub after: Option<PlanWindow>,
    /// `after.meanMs / before.meanMs`, once each side has at least 10
    /// calls.
    #[oai(skip_serializing_if_is_none)]
    pub slowdown: Option<f64>,
    /// Whether the statement got at least twice as slow (`slowdown` ≥ 2):
    /// a `plan_regression` finding.
    pub slower: bool,
}

impl PlanChange {
    /// Recomputes `slowdown` and `slower` from the two windows.
    pub(super) fn judge(&mut self) {
        self.slowdown = match (self.before, self.after) {
            (Some(before), Some(after))
                if before.calls >= MIN_CALLS
                    && after.calls >= MIN_CALLS
                    && before.mean_ms > 0.0 =>
            {
                Some(after.mean_ms / before.mean_ms)
            }
            _ => None,
        };
        self.slower = self.slowdown.is_some_and(|s| s >= SLOWER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(calls: u64, mean_ms: f64) -> PlanWindow {
        PlanWindow {
            calls,
            mean_ms,
            blocks_per_call: 1.0,
        }
    }

    fn change(before: Option<PlanWindow>, after: Option<PlanWindow>) -> PlanChange {
        let mut change = PlanChange {
            seq: 1,
            updated: 1,
            database: "db".into(),
            queryid: "1".into(),
            statement: None,
            detected_at: 0.0,
            before_fingerprint: String::new(),
            after_fingerprint: String::new(),
            before_shape: String::new(),
            after_shape: String::new(),
            before,
            after,
            slowdown: None,
            slower: false,
        };
        change.judge();
        change
    }

    #[test]
    fn twice_as_slow_with_enough_calls_each_side_is_slower() {
        let slower = change(Some(window(10, 1.0)), Some(window(10, 2.0)));
        assert_eq!(slower.slowdown, Some(2.0));
        assert!(slower.slower);
        assert!(!change(Some(window(10, 1.0)), Some(window(10, 1.9))).slower);
        // Too few calls on either side: no verdict.
        let few = change(Some(window(9, 1.0)), Some(window(100, 9.0)));
        assert_eq!((few.slowdown, few.slower), (None, false));
        assert!(!change(Some(window(100, 1.0)), Some(window(9, 9.0))).slower);
        assert!(!change(None, Some(window(100, 9.0))).slower);
    }

    #[test]
    fn a_window_of_counters_gone_backwards_is_none() {
        let figures = Figures {
            calls: 4,
            total_ms: 8.0,
            shared_hit: 6,
            shared_read: 2,
            ..Figures::default()
        };
        assert_eq!(
            PlanWindow::of(&figures),
            Some(PlanWindow {
                calls: 4,
                mean_ms: 2.0,
                blocks_per_call: 2.0
            })
        );
        let backwards = Figures {
            calls: -1,
            ..Figures::default()
        };
        assert_eq!(PlanWindow::of(&backwards), None);
    }
}
