//! Plan changes caught: each top statement's generic plan, as the index
//! advisor plans it on every pass, is reduced to its shape ([`Shape`]:
//! node types, join types, relations and indexes, in tree order, without
//! costs) and a fingerprint; a statement whose fingerprint differs from the
//! one its previous plan had is a [`PlanChange`], kept with both shapes and
//! the statement's figures before and after, from pg_stat_statements.
//!
//! Why it is shaped so:
//! - **No planning of its own**: the shapes come from the generic plans the
//!   advisor already makes as the planner role (`super::planner`), so a
//!   pass costs no extra planner call. The price: only the generic plan is
//!   seen (what `force_generic_plan` gives, parameters unknown), not the
//!   custom plans the application runs, so a flip that depends on a
//!   parameter's value is not caught; only statements the advisor plans
//!   (the top ones of a role in `PERFSCOPE_PLAN_ROLES`) are watched; and a
//!   change is seen on the advisor's cadence.
//! - **Windows that do not mix plans**: a pass's statements read comes
//!   before its plans. The window of a plan starts at the first read after
//!   the pass that first planned it (the first plan the agent saw for a
//!   statement owns its history since pg_stat_statements' last reset), and
//!   the "before" of a change ends at the read of the last pass that still
//!   planned the old shape; calls between that read and the change's read
//!   may have run either plan and count on neither side. A counter going
//!   backwards (a reset) restarts the current window.
//! - **Bounded**: [`TRACKED_STATEMENTS`] statements per database (the one
//!   planned longest ago forgotten first), shapes capped at
//!   [`SHAPE_TEXT_BYTES`], the last [`KEPT_CHANGES`] changes per database.
//! - **A narrow read for a store**: [`PlanChanges::changes_since`] answers
//!   the changes recorded or updated after a sequence number.
//!
//! Shapes name relations and indexes: they are shown to the admin only.
//! This file is the tracker; `shape.rs` what a shape is, `change.rs` what a
//! change says and when it made a statement slower.

mod change;
mod shape;

pub use change::{MIN_CALLS, PlanChange, PlanWindow, SLOWER};
pub use shape::{SHAPE_TEXT_BYTES, Shape};

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::pg::readers::statements::Figures;

/// Statements whose current plan is remembered per database, at most.
pub const TRACKED_STATEMENTS: usize = 1_000;
/// Plan changes kept per database (the oldest dropped).
pub const KEPT_CHANGES: usize = 200;

/// One statement planned on a pass, with its counters from the read that
/// pass made before planning.
#[derive(Clone, Debug)]
pub struct Planned {
    /// pg_stat_statements' queryid.
    pub queryid: i64,
    /// The normalized text.
    pub text: Option<Arc<str>>,
    /// Its generic plan's shape.
    pub shape: Shape,
    /// Its cumulative counters, as the pass's read gave them.
    pub cumulative: Figures,
}

/// A statement's current plan and the window its figures count in.
#[derive(Debug)]
struct Tracked {
    shape: Shape,
    /// Counters where this plan's window starts; `None` until the first
    /// read after the pass that first planned it.
    start: Option<Figures>,
    /// Counters at the read of the last pass that planned this shape.
    last: Option<Figures>,
    /// The pass that last planned it (the least recent is forgotten first).
    pass: u64,
    /// The change that brought this plan (its "after" fills in).
    change: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    statements: HashMap<i64, Tracked>,
    changes: VecDeque<PlanChange>,
    seq: u64,
    passes: u64,
    resets: u64,
}

/// The plan changes of one watched database.
#[derive(Debug)]
pub struct PlanChanges {
    database: Arc<str>,
    state: Mutex<State>,
}

impl PlanChanges {
    /// No plan seen yet for `database`.
    pub fn new(database: Arc<str>) -> Self {
        Self {
            database,
            state: Mutex::default(),
        }
    }

    /// Takes one advisor pass's plans; `resets` is the count of
    /// pg_stat_statements resets its read had detected.
    pub fn record(&self, planned: Vec<Planned>, resets: u64, now: SystemTime) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *state;
        state.passes += 1;
        let reset = resets != state.resets;
        state.resets = resets;
        for plan in planned {
            self.observe(state, plan, reset, now);
        }
    }

    fn observe(&self, state: &mut State, plan: Planned, reset: bool, now: SystemTime) {
        let pass = state.passes;
        let Some(tracked) = state.statements.get_mut(&plan.queryid) else {
            if state.statements.len() >= TRACKED_STATEMENTS {
                forget_oldest(&mut state.statements);
            }
            state.statements.insert(
                plan.queryid,
                Tracked {
                    shape: plan.shape,
                    // The first plan seen owns the statement's history.
                    start: Some(Figures::default()),
                    last: Some(plan.cumulative),
                    pass,
                    change: None,
                },
            );
            return;
        };
        tracked.pass = pass;
        if tracked.shape.fingerprint != plan.shape.fingerprint {
            let before = tracked
                .start
                .zip(tracked.last)
                .and_then(|(start, last)| PlanWindow::of(&last.minus(&start)));
            state.seq += 1;
            let mut change = PlanChange {
                seq: state.seq,
                updated: state.seq,
                database: self.database.to_string(),
                queryid: plan.queryid.to_string(),
                statement: plan.text.as_deref().map(str::to_owned),
                detected_at: now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64()),
                before_fingerprint: tracked.shape.hex(),
                after_fingerprint: plan.shape.hex(),
                before_shape: tracked.shape.text.clone(),
                after_shape: plan.shape.text.clone(),
                before,
                after: None,
                slowdown: None,
                slower: false,
            };
            change.judge();
            *tracked = Tracked {
                shape: plan.shape,
                start: None,
                last: None,
                pass,
                change: Some(change.seq),
            };
            if state.changes.len() >= KEPT_CHANGES {
                state.changes.pop_front();
            }
            state.changes.push_back(change);
            return;
        }
        let now_figures = plan.cumulative;
        match tracked.start {
            // A reset, or counters gone backwards: the window restarts
            // (what ran since the reset ran this plan).
            Some(start) if reset || now_figures.calls < start.calls => {
                tracked.start = Some(Figures::default());
            }
            Some(_) => {}
            None => tracked.start = Some(now_figures),
        }
        tracked.last = Some(now_figures);
        let (Some(seq), Some(start)) = (tracked.change, tracked.start) else {
            return;
        };
        let after = PlanWindow::of(&now_figures.minus(&start));
        if let Some(change) = state.changes.iter_mut().find(|c| c.seq == seq)
            && after.is_some_and(|a| a.calls > 0)
            && change.after != after
        {
            change.after = after;
            state.seq += 1;
            change.updated = state.seq;
            change.judge();
        }
    }

    /// The changes kept, oldest first.
    pub fn changes(&self) -> Vec<PlanChange> {
        self.changes_since(0)
    }

    /// The changes recorded or updated after sequence number `seq`
    /// (compare with [`PlanChange::updated`]), oldest first: what a store
    /// has not persisted yet.
    pub fn changes_since(&self, seq: u64) -> Vec<PlanChange> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .changes
            .iter()
            .filter(|c| c.updated > seq)
            .cloned()
            .collect()
    }

    /// The advisor passes recorded since the agent started.
    pub fn passes(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .passes
    }

    /// Statements whose current plan is remembered.
    pub fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .statements
            .len()
    }
}

/// Forgets the statement planned longest ago.
fn forget_oldest(statements: &mut HashMap<i64, Tracked>) {
    if let Some(oldest) = statements
        .iter()
        .min_by_key(|(_, t)| t.pass)
        .map(|(queryid, _)| *queryid)
    {
        statements.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(node: &str) -> Shape {
        Shape::of(&json!({"Node Type": node, "Relation Name": "orders"}))
    }

    fn figures(calls: i64, total_ms: f64) -> Figures {
        Figures {
            calls,
            total_ms,
            shared_hit: calls * 3,
            ..Figures::default()
        }
    }

    fn pass(changes: &PlanChanges, node: &str, calls: i64, total_ms: f64) {
        changes.record(
            vec![Planned {
                queryid: 7,
                text: Some(Arc::from("select 1")),
                shape: shape(node),
                cumulative: figures(calls, total_ms),
            }],
            0,
            SystemTime::now(),
        );
    }

    #[test]
    fn the_same_shape_is_no_change() {
        let changes = PlanChanges::new(Arc::from("db"));
        pass(&changes, "Index Scan", 10, 10.0);
        pass(&changes, "Index Scan", 20, 20.0);
        assert!(changes.changes().is_empty());
        assert_eq!(changes.tracked(), 1);
    }

    #[test]
    fn a_change_keeps_both_shapes_and_fills_its_windows_without_the_mixed_calls() {
        let changes = PlanChanges::new(Arc::from("db"));
        // 20 calls of 1 ms under the index scan (since the reset).
        pass(&changes, "Index Scan", 10, 10.0);
        pass(&changes, "Index Scan", 20, 20.0);
        // Changed: the 5 calls since the last read may have run either.
        pass(&changes, "Seq Scan", 25, 60.0);
        let [change] = changes.changes().try_into().expect("one change");
        assert_eq!(change.before_shape, "Index Scan on orders\n");
        assert_eq!(change.after_shape, "Seq Scan on orders\n");
        assert_eq!(change.before.map(|b| (b.calls, b.mean_ms)), Some((20, 1.0)));
        assert_eq!(change.after, None);
        // The next read starts "after"; the one after fills it.
        pass(&changes, "Seq Scan", 30, 80.0);
        assert_eq!(changes.changes()[0].after, None);
        pass(&changes, "Seq Scan", 40, 130.0);
        let change = &changes.changes()[0];
        assert_eq!(change.after.map(|a| (a.calls, a.mean_ms)), Some((10, 5.0)));
        assert_eq!(change.slowdown, Some(5.0));
        assert!(change.slower);
        assert!(change.updated > change.seq);
        // A store that saw the first update sees nothing new until another.
        assert!(changes.changes_since(change.updated).is_empty());
        assert_eq!(changes.changes_since(change.seq).len(), 1);
        // Back to the index: a second change, the first one's after frozen.
        pass(&changes, "Index Scan", 50, 180.0);
        let all = changes.changes();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].after.map(|a| a.calls), Some(10));
        assert_eq!(all[1].before.map(|b| (b.calls, b.mean_ms)), Some((10, 5.0)));
        assert_eq!(all[1].before_fingerprint, all[0].after_fingerprint);
    }

    #[test]
    fn a_reset_restarts_the_window_instead_of_going_negative() {
        let changes = PlanChanges::new(Arc::from("db"));
        pass(&changes, "Index Scan", 10, 10.0);
        pass(&changes, "Seq Scan", 20, 20.0);
        pass(&changes, "Seq Scan", 30, 130.0);
        // Reset: counters from zero.
        changes.record(
            vec![Planned {
                queryid: 7,
                text: None,
                shape: shape("Seq Scan"),
                cumulative: figures(4, 40.0),
            }],
            1,
            SystemTime::now(),
        );
        let after = changes.changes()[0].after.expect("after");
        assert_eq!((after.calls, after.mean_ms), (4, 10.0));
    }

    #[test]
    fn statements_and_changes_are_capped() {
        let changes = PlanChanges::new(Arc::from("db"));
        for round in 0..2 {
            let node = if round == 0 { "Index Scan" } else { "Seq Scan" };
            let planned = (0..(TRACKED_STATEMENTS as i64 + 50))
                .map(|queryid| Planned {
                    queryid,
                    text: None,
                    shape: shape(node),
                    cumulative: figures(1, 1.0),
                })
                .collect();
            changes.record(planned, 0, SystemTime::now());
        }
        assert_eq!(changes.tracked(), TRACKED_STATEMENTS);
        assert_eq!(changes.changes().len(), KEPT_CHANGES);
        let seqs: Vec<u64> = changes.changes().iter().map(|c| c.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
    }
}
