//! The state of one condition rule for one subject: fire once when the
//! value has stayed at or above the threshold for the rule's `for`
//! duration, resolve once when it falls below the (lower) resolve level —
//! so a value hovering at the threshold neither flaps nor repeats.
//!
//! Pure: the caller passes the time, so tests need no clock.

use std::time::{Duration, Instant};

/// Where a condition stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    /// Below the threshold.
    Inactive,
    /// At or above the threshold since `since`, not yet for long enough.
    Pending { since: Instant },
    /// Firing since `since`.
    Firing { since: Instant },
}

/// What a new reading changed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transition {
    /// Nothing to tell.
    None,
    /// It starts firing (held since `since`).
    Fired { since: Instant },
    /// It stops firing (it fired at `since`).
    Resolved { since: Instant },
}

/// A rule's levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Levels {
    /// Fire at or above this…
    pub threshold: f64,
    /// …after holding for this long…
    pub hold: Duration,
    /// …and resolve below this (≤ threshold).
    pub resolve_below: f64,
}

/// One condition's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConditionState {
    /// Where it stands.
    pub phase: Phase,
    /// The last value seen.
    pub value: f64,
}

impl Default for ConditionState {
    fn default() -> Self {
        Self {
            phase: Phase::Inactive,
            value: 0.0,
        }
    }
}

impl ConditionState {
    /// Takes a reading at `now`.
    pub fn observe(&mut self, value: f64, levels: Levels, now: Instant) -> Transition {
        self.value = value;
        let (phase, transition) = match self.phase {
            Phase::Inactive if value >= levels.threshold => {
                if levels.hold.is_zero() {
                    (
                        Phase::Firing { since: now },
                        Transition::Fired { since: now },
                    )
                } else {
                    (Phase::Pending { since: now }, Transition::None)
                }
            }
            Phase::Inactive => (Phase::Inactive, Transition::None),
            Phase::Pending { .. } if value < levels.threshold => {
                (Phase::Inactive, Transition::None)
            }
            Phase::Pending { since } if now.duration_since(since) >= levels.hold => {
                (Phase::Firing { since }, Transition::Fired { since })
            }
            pending @ Phase::Pending { .. } => (pending, Transition::None),
            Phase::Firing { since } if value < levels.resolve_below => {
                (Phase::Inactive, Transition::Resolved { since })
            }
            firing @ Phase::Firing { .. } => (firing, Transition::None),
        };
        self.phase = phase;
        transition
    }

    /// Whether it is firing.
    pub fn is_firing(&self) -> bool {
        matches!(self.phase, Phase::Firing { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: Levels = Levels {
        threshold: 100.0,
        hold: Duration::from_secs(60),
        resolve_below: 80.0,
    };

    #[test]
    fn fires_once_after_holding_and_resolves_once_below_the_lower_level() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut state = ConditionState::default();
        let mut transitions = Vec::new();
        // Over the threshold from t=0; fires at t=60; hovers at 90-110
        // (above the resolve level) without flapping; resolves at t=200.
        let readings = [
            (0, 120.0),
            (30, 130.0),
            (59, 101.0),
            (60, 110.0),
            (90, 95.0),
            (120, 85.0),
            (150, 105.0),
            (200, 79.0),
            (210, 70.0),
        ];
        for (s, v) in readings {
            transitions.push((s, state.observe(v, LEVELS, at(s))));
        }
        let told: Vec<_> = transitions
            .into_iter()
            .filter(|(_, t)| *t != Transition::None)
            .collect();
        assert_eq!(
            told,
            vec![
                (60, Transition::Fired { since: at(0) }),
                (200, Transition::Resolved { since: at(0) })
            ]
        );
    }

    #[test]
    fn a_dip_below_the_threshold_restarts_the_hold() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut state = ConditionState::default();
        assert_eq!(state.observe(150.0, LEVELS, at(0)), Transition::None);
        assert_eq!(state.observe(99.0, LEVELS, at(50)), Transition::None);
        assert_eq!(state.observe(150.0, LEVELS, at(55)), Transition::None);
        assert_eq!(state.observe(150.0, LEVELS, at(100)), Transition::None);
        assert_eq!(
            state.observe(150.0, LEVELS, at(115)),
            Transition::Fired { since: at(55) }
        );
        assert!(state.is_firing());
    }

    #[test]
    fn zero_hold_fires_at_once() {
        let now = Instant::now();
        let mut state = ConditionState::default();
        let levels = Levels {
            hold: Duration::ZERO,
            ..LEVELS
        };
        assert_eq!(
            state.observe(100.0, levels, now),
            Transition::Fired { since: now }
        );
    }
}
