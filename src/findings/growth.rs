//! Growth forecasts: from a relation's daily sizes (or a sequence's daily
//! position) kept by the history store, the growth per day and the days
//! until a size (or the sequence's bound) is reached, by the observed
//! trend.
//!
//! The slope is Theil–Sen's (the median of the slopes between every two
//! days), not least squares: one day's outlier — a bulk load, a
//! `VACUUM FULL`, a day the reading came mid-import — moves a least-squares
//! line a lot and a median hardly at all, and a forecast of "days until
//! full" should not swing with one odd day. At most [`WINDOW_DAYS`] days
//! are used (old growth says little about next month's), and at least
//! [`MIN_DAYS`] are needed: two points are a line through anything.
//!
//! It takes plain `(day, value)` pairs, so it knows nothing of the store
//! and can be tested without one.

// Without the store nothing is forecast (the growth endpoint says why).
#![cfg_attr(not(feature = "store"), allow(dead_code))]

/// The most recent days a trend is fitted over.
pub const WINDOW_DAYS: i64 = 30;
/// The fewest days with a reading a trend needs.
pub const MIN_DAYS: usize = 3;
/// The most days ever reported until a target (about 100 years): beyond,
/// the forecast is "not by this trend".
pub const MAX_DAYS: f64 = 36_500.0;

/// A series' trend over its last days.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    /// The newest reading.
    pub now: f64,
    /// Its day (Unix day number).
    pub day: i64,
    /// Change per day (negative: shrinking, or a descending sequence).
    pub per_day: f64,
    /// Days with a reading the trend was fitted on.
    pub days: usize,
}

/// A trend, or why there is none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fit {
    /// Enough history: the trend.
    Trend(Trend),
    /// Fewer than [`MIN_DAYS`] days with a reading (how many there are),
    /// with the newest reading if any.
    NotEnoughHistory {
        /// Days with a reading.
        days: usize,
        /// The newest reading, if any.
        now: Option<f64>,
    },
}

impl Fit {
    /// The trend, if there is enough history.
    pub fn trend(&self) -> Option<&Trend> {
        match self {
            Self::Trend(trend) => Some(trend),
            Self::NotEnoughHistory { .. } => None,
        }
    }

    /// The newest reading, if any.
    pub fn now(&self) -> Option<f64> {
        match self {
            Self::Trend(trend) => Some(trend.now),
            Self::NotEnoughHistory { now, .. } => *now,
        }
    }

    /// Days with a reading used (or available, when too few).
    pub fn days(&self) -> usize {
        match self {
            Self::Trend(trend) => trend.days,
            Self::NotEnoughHistory { days, .. } => *days,
        }
    }
}

/// Fits the trend of `points` (`(day, value)`, any order, one per day:
/// a repeated day keeps its last value) over their last [`WINDOW_DAYS`]
/// days.
pub fn fit(points: &[(i64, f64)]) -> Fit {
    let mut points: Vec<(i64, f64)> = points
        .iter()
        .copied()
        .filter(|(_, value)| value.is_finite())
        .collect();
    points.sort_by_key(|(day, _)| *day);
    // One value per day: the last one given wins, as in the store.
    let mut daily: Vec<(i64, f64)> = Vec::with_capacity(points.len());
    for (day, value) in points {
        match daily.last_mut() {
            Some(last) if last.0 == day => last.1 = value,
            _ => daily.push((day, value)),
        }
    }
    let Some(&(newest_day, newest)) = daily.last() else {
        return Fit::NotEnoughHistory { days: 0, now: None };
    };
    daily.retain(|(day, _)| *day > newest_day - WINDOW_DAYS);
    if daily.len() < MIN_DAYS {
        return Fit::NotEnoughHistory {
            days: daily.len(),
            now: Some(newest),
        };
    }
    Fit::Trend(Trend {
        now: newest,
        day: newest_day,
        per_day: theil_sen(&daily),
        days: daily.len(),
    })
}

/// The median of the slopes between every two points (distinct days,
/// at most [`WINDOW_DAYS`] of them: at most 435 slopes).
fn theil_sen(points: &[(i64, f64)]) -> f64 {
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    for (i, &(x1, y1)) in points.iter().enumerate() {
        for &(x2, y2) in &points[i + 1..] {
            slopes.push((y2 - y1) / (x2 - x1) as f64);
        }
    }
    slopes.sort_by(f64::total_cmp);
    match slopes.len() {
        0 => 0.0,
        n if n % 2 == 1 => slopes[n / 2],
        n => (slopes[n / 2 - 1] + slopes[n / 2]) / 2.0,
    }
}

impl Trend {
    /// Days from the newest reading until the series reaches `target` by
    /// this trend: 0 when it already has, `None` when the trend does not
    /// go there (flat, or moving away) or would take over [`MAX_DAYS`].
    /// Works both ways: a descending sequence reaches its minimum.
    pub fn days_until(&self, target: f64) -> Option<f64> {
        let remaining = target - self.now;
        if remaining == 0.0 {
            return Some(0.0);
        }
        if self.per_day == 0.0 || !self.per_day.is_finite() {
            return None;
        }
        let days = remaining / self.per_day;
        (days > 0.0 && days <= MAX_DAYS).then_some(days)
    }

    /// Days until a size reaches `target` bytes: 0 when it is already
    /// there or past it.
    pub fn days_until_size(&self, target: f64) -> Option<f64> {
        if self.now >= target {
            return Some(0.0);
        }
        self.days_until(target)
    }

    /// Days until the series is twice its newest value (growing only).
    pub fn days_until_double(&self) -> Option<f64> {
        (self.now > 0.0)
            .then(|| self.days_until(self.now * 2.0))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(days: i64, start: f64, per_day: f64) -> Vec<(i64, f64)> {
        (0..days)
            .map(|d| (20_000 + d, start + per_day * d as f64))
            .collect()
    }

    #[test]
    fn too_few_days_are_not_a_trend() {
        assert_eq!(fit(&[]), Fit::NotEnoughHistory { days: 0, now: None });
        let two = linear(2, 100.0, 10.0);
        assert_eq!(
            fit(&two),
            Fit::NotEnoughHistory {
                days: 2,
                now: Some(110.0)
            }
        );
        // Readings on one day are one day.
        let same_day = [(1, 1.0), (1, 2.0), (1, 3.0), (2, 4.0)];
        assert_eq!(fit(&same_day).days(), 2);
        assert!(fit(&linear(3, 100.0, 10.0)).trend().is_some());
    }

    #[test]
    fn only_the_last_thirty_days_count() {
        // Fast growth long ago, flat for the last 30 days.
        let mut points = linear(40, 0.0, 1_000.0);
        let last = points[39].1;
        points.extend((40..70).map(|d| (20_000 + d, last)));
        let trend = *fit(&points).trend().expect("a trend");
        assert_eq!(trend.days, 30);
        assert_eq!(trend.per_day, 0.0);
        assert_eq!(trend.days_until_double(), None);
    }

    #[test]
    fn a_descending_series_reaches_a_lower_bound() {
        let trend = *fit(&linear(10, -100.0, -10.0)).trend().expect("a trend");
        let days = trend.days_until(-1_190.0).expect("it gets there");
        assert!((days - 100.0).abs() < 1e-6, "{days}");
        assert_eq!(trend.days_until(0.0), None, "moving away");
        assert_eq!(trend.days_until_double(), None, "not a size");
    }

    #[test]
    fn past_the_target_is_zero_days_and_too_far_is_none() {
        let trend = *fit(&linear(5, 100.0, 1.0)).trend().expect("a trend");
        assert_eq!(trend.days_until(104.0), Some(0.0));
        assert_eq!(trend.days_until(1e12), None);
        assert_eq!(trend.days_until(50.0), None, "behind it, by this trend");
        assert_eq!(
            trend.days_until_size(50.0),
            Some(0.0),
            "a size already past"
        );
    }
}
