//! The overview's runtime cards past the hour: the store's runtime minutes
//! (`store::read::runtime_series`) on the range's axis. The process keeps
//! only its last hour of runtime samples in memory, so a day, a week or a
//! month of event-loop lag, utilization and resident memory comes from
//! the store, like the route charts beside them.
//!
//! What a step shows: the worst lag and the highest resident memory of
//! its minutes (a spike must not average away on a month's chart), and
//! their mean utilization.

use crate::ui::range::ChartRange;

/// The runtime over a stored range, a value per step of its axis (`None`
/// where no minute was recorded).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeTrend {
    /// The range drawn.
    pub range: ChartRange,
    /// Worst event-loop lag per step, seconds.
    pub lag_max: Vec<Option<f64>>,
    /// Mean utilization per step, 0..1.
    pub utilization: Vec<Option<f64>>,
    /// Highest resident memory per step, bytes.
    pub resident_max: Vec<Option<f64>>,
    /// The worst lag over the range, seconds.
    pub worst_lag: Option<f64>,
    /// The highest resident memory over the range, bytes.
    pub peak_resident: Option<u64>,
}

impl RuntimeTrend {
    /// What one step of the chart is, in words ("10 minutes").
    pub fn step_words(&self) -> &'static str {
        match self.range {
            ChartRange::Hour => "30 seconds",
            ChartRange::Day => "10 minutes",
            ChartRange::Week => "hour",
            ChartRange::Month => "4 hours",
        }
    }
}

#[cfg(feature = "store")]
mod stored {
    use super::RuntimeTrend;
    use crate::store::{RuntimeStep, Store, StoreError, read};
    use crate::ui::range::ChartRange;
    use crate::ui::timeline::stored::{Stamped, on_axis, slots};

    impl Stamped for RuntimeStep {
        fn ts(&self) -> i64 {
            self.ts
        }
    }

    impl RuntimeTrend {
        /// The runtime over `range` ending at `now`, read from `store`.
        pub async fn load(store: &Store, range: ChartRange, now: i64) -> Result<Self, StoreError> {
            let (window, _) = range.store_range(now);
            let steps = store
                .read(move |conn| read::runtime_series(conn, window))
                .await?;
            Ok(Self::new(range, now, &steps))
        }

        /// `steps` (as read) on the axis of `range` ending at `now`.
        pub fn new(range: ChartRange, now: i64, steps: &[RuntimeStep]) -> Self {
            let (window, _) = range.store_range(now);
            let points = slots(window);
            Self {
                range,
                lag_max: on_axis(window, points, steps, |p: &RuntimeStep| Some(p.lag_max)),
                utilization: on_axis(window, points, steps, |p: &RuntimeStep| Some(p.utilization)),
                resident_max: on_axis(window, points, steps, |p: &RuntimeStep| {
                    Some(p.resident_max as f64)
                }),
                worst_lag: steps.iter().map(|p| p.lag_max).reduce(f64::max),
                peak_resident: steps
                    .iter()
                    .map(|p| u64::try_from(p.resident_max).unwrap_or(0))
                    .max(),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn steps_land_on_the_axis_and_the_peaks_are_the_steps_maxima() {
            let now = 86_400 * 10 + 30;
            let steps = [
                RuntimeStep {
                    ts: 86_400 * 9 + 600,
                    minutes: 10,
                    lag_mean: 0.001,
                    lag_max: 0.25,
                    utilization: 0.5,
                    resident_mean: 1e7,
                    resident_max: 30 << 20,
                },
                RuntimeStep {
                    ts: 86_400 * 10,
                    minutes: 1,
                    lag_mean: 0.001,
                    lag_max: 0.002,
                    utilization: 0.1,
                    resident_mean: 1e7,
                    resident_max: 12 << 20,
                },
            ];
            let trend = RuntimeTrend::new(ChartRange::Day, now, &steps);
            assert_eq!(trend.lag_max.len(), 145);
            assert_eq!(trend.lag_max[0], None);
            assert_eq!(trend.lag_max[1], Some(0.25));
            assert_eq!(trend.utilization[144], Some(0.1));
            assert_eq!(trend.resident_max[1], Some(f64::from(30 << 20)));
            assert_eq!(trend.worst_lag, Some(0.25));
            assert_eq!(trend.peak_resident, Some(30 << 20));
            assert_eq!(trend.step_words(), "10 minutes");
        }
    }
}
