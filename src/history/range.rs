//! A time range of a chart: where it starts and ends and how far apart its
//! points are. The charts' sources take it as a parameter, so a page can
//! ask for the last hour today and for a day or a month later (the longer
//! ranges are what an outside store such as Prometheus can answer; this
//! process's own history holds one hour).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most points a chart draws: a longer range is asked for with a larger
/// step instead.
pub const MAX_RANGE_POINTS: u64 = 1_000;

/// A chart's time range, in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeRange {
    /// First point, Unix seconds.
    pub start: f64,
    /// Last point, Unix seconds.
    pub end: f64,
    /// Time between points (at least a second).
    pub step: Duration,
}

impl TimeRange {
    /// The `span` ending now, with about `points` points (at least 2, at
    /// most [`MAX_RANGE_POINTS`]; the step is a whole number of seconds).
    pub fn last(span: Duration, points: u64) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Self::ending(now, span, points)
    }

    /// The `span` ending at `end` (Unix seconds), as [`TimeRange::last`].
    pub fn ending(end: f64, span: Duration, points: u64) -> Self {
        let span_secs = span.as_secs().max(1);
        let points = points.clamp(2, MAX_RANGE_POINTS);
        let step = span_secs.div_ceil(points - 1).max(1);
        Self {
            start: end - span_secs as f64,
            end,
            step: Duration::from_secs(step),
        }
    }

    // The arithmetic below serves the outside sources (Prometheus); the
    // process's own history keeps its fixed 10 s axis.

    /// The range's length, whole seconds (at least 1).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub fn span_secs(&self) -> u64 {
        ((self.end - self.start).max(1.0)).round() as u64
    }

    /// Points from start to end at the step.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub fn points(&self) -> usize {
        let step = self.step.as_secs().max(1);
        usize::try_from(self.span_secs() / step + 1).unwrap_or(usize::MAX)
    }

    /// The index of the point nearest `at` (Unix seconds), if in range.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub fn index_of(&self, at: f64) -> Option<usize> {
        let step = self.step.as_secs_f64().max(1.0);
        let index = ((at - self.start) / step).round();
        (index >= 0.0 && (index as usize) < self.points()).then_some(index as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_in_120_points_steps_every_31_seconds() {
        let range = TimeRange::ending(10_000.0, Duration::from_secs(3600), 120);
        assert_eq!(range.start, 6_400.0);
        assert_eq!(range.step, Duration::from_secs(31));
        assert_eq!(range.points(), 117);
        assert_eq!(range.index_of(6_400.0), Some(0));
        assert_eq!(range.index_of(6_431.0 + 10.0), Some(1));
        assert_eq!(range.index_of(6_000.0), None);
        assert_eq!(range.index_of(20_000.0), None);
    }

    #[test]
    fn a_month_is_capped_in_points() {
        let range = TimeRange::ending(0.0, Duration::from_secs(30 * 86_400), 1_000_000);
        assert!(range.points() <= MAX_RANGE_POINTS as usize + 1);
    }
}
