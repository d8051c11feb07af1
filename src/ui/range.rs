//! The range a page's charts cover (`?range=1h|24h|7d|30d`), the selector
//! that switches it, and where an event falls on a chart's axis.
//!
//! Why a fixed set rather than any duration: each range has a step chosen
//! so a chart draws 120 to 180 points whatever its length (the store sums
//! its rows into those steps; Prometheus is asked at that step), and a
//! link per range is all a reader needs. Anything else in `range=` is a
//! mistake in a hand-written URL: the page answers 400 and says which
//! values it takes, with the selector to pick one, rather than silently
//! showing another range than the one asked for.

use maud::{Markup, html};

use crate::history::TimeRange;

/// A chart range (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChartRange {
    /// The last hour: the process's own history (a point every 10 s).
    #[default]
    Hour,
    /// The last 24 hours, a point every 10 min.
    Day,
    /// The last 7 days, a point every hour.
    Week,
    /// The last 30 days, a point every 4 hours.
    Month,
}

impl ChartRange {
    /// Every range, shortest first, as the selector lists them.
    pub const ALL: [Self; 4] = [Self::Hour, Self::Day, Self::Week, Self::Month];

    /// Reads `range=`: absent or empty is the hour; anything but the four
    /// names is refused with the sentence to show.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.unwrap_or_default() {
            "" => Ok(Self::Hour),
            text => Self::ALL
                .into_iter()
                .find(|range| range.as_str() == text)
                .ok_or_else(|| "Field `range`: one of 1h, 24h, 7d or 30d is required.".to_owned()),
        }
    }

    /// Its name in the query string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    /// Its length in words, after "the last".
    pub fn words(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "24 hours",
            Self::Week => "7 days",
            Self::Month => "30 days",
        }
    }

    /// Its length, seconds.
    pub fn span_secs(self) -> i64 {
        match self {
            Self::Hour => 3_600,
            Self::Day => 86_400,
            Self::Week => 7 * 86_400,
            Self::Month => 30 * 86_400,
        }
    }

    /// The time between two points read from the store or Prometheus,
    /// seconds: 120 to 180 points per chart.
    pub fn step_secs(self) -> i64 {
        match self {
            Self::Hour => 30,
            Self::Day => 600,
            Self::Week => 3_600,
            Self::Month => 4 * 3_600,
        }
    }

    /// Past the hour the process keeps in memory, so read from the store.
    pub fn is_stored(self) -> bool {
        self != Self::Hour
    }

    /// The range ending at `now` as the route sources take it.
    pub fn time_range(self, now: f64) -> TimeRange {
        let points = self.span_secs() / self.step_secs() + 1;
        TimeRange::ending(
            now,
            std::time::Duration::from_secs(self.span_secs().unsigned_abs()),
            points.unsigned_abs(),
        )
    }

    /// The range ending at `now` as the store reads it, and its axis (the
    /// store's steps are aligned to multiples of the step).
    #[cfg(feature = "store")]
    pub fn store_range(self, now: i64) -> (crate::store::Range, Axis) {
        // The hour's 30 s step is Prometheus's; the store's points are a
        // minute apart, and a finer step would draw every other slot empty.
        let step = self.step_secs().max(crate::store::RAW_POINT_SECS);
        let range = crate::store::Range {
            from: now - self.span_secs(),
            to: now + 1,
            step,
        };
        let first = range.from - range.from.rem_euclid(step);
        let points = usize::try_from((now - first) / step + 1).unwrap_or(1);
        let axis = Axis {
            last: (first + (points as i64 - 1) * step) as f64,
            step: step as f64,
        };
        (range, axis)
    }
}

/// A chart's time axis: the time of its last point and the time between
/// points; a series of `n` points starts `n - 1` steps before `last`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    /// The last point's time, Unix seconds.
    pub last: f64,
    /// Seconds between points.
    pub step: f64,
}

impl Axis {
    /// Where `at` falls on a chart of `points` points, 0 (first point) to
    /// 1 (last, which also holds the step after it, the one still
    /// running); `None` outside it.
    pub fn position(&self, points: usize, at: f64) -> Option<f64> {
        if points < 2 || self.step <= 0.0 {
            return None;
        }
        let span = (points - 1) as f64 * self.step;
        let share = (at - (self.last - span)) / span;
        let end = (span + self.step) / span;
        (0.0..end).contains(&share).then_some(share.min(1.0))
    }

    /// The markers of `events` (time and label) on a chart of `points`
    /// points, each a link to the compare view split at its moment.
    pub fn markers(&self, points: usize, events: &[(f64, String)]) -> Vec<crate::ui::svg::Marker> {
        events
            .iter()
            .filter_map(|(at, label)| {
                self.position(points, *at)
                    .map(|share| crate::ui::svg::Marker {
                        share,
                        label: label.clone(),
                        href: Some(format!("/ui/compare?at={}", at.floor() as i64)),
                    })
            })
            .collect()
    }
}

/// The range links: `base` is the page's path with its other parameters
/// (ending in `?` or `&`), already URL-encoded.
pub fn selector(current: ChartRange, base: &str) -> Markup {
    html! {
        nav.ranges aria-label="Chart range" {
            @for range in ChartRange::ALL {
                @if range == current {
                    a href=(format!("{base}range={}", range.as_str())) aria-current="page" { (range.as_str()) }
                } @else {
                    a href=(format!("{base}range={}", range.as_str())) { (range.as_str()) }
                }
            }
        }
    }
}

/// `text` for a URL's query string: unreserved bytes as they are, the
/// rest percent-encoded.
pub fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_by_name_and_refuse_the_rest() {
        assert_eq!(ChartRange::parse(None), Ok(ChartRange::Hour));
        assert_eq!(ChartRange::parse(Some("")), Ok(ChartRange::Hour));
        for range in ChartRange::ALL {
            assert_eq!(ChartRange::parse(Some(range.as_str())), Ok(range));
        }
        for bogus in ["bogus", "7D", "2h", "1h ", "<b>"] {
            assert!(ChartRange::parse(Some(bogus)).is_err(), "{bogus}");
        }
    }

    #[test]
    fn every_range_draws_120_to_180_points() {
        for range in ChartRange::ALL {
            let points = range.span_secs() / range.step_secs();
            assert!((120..=180).contains(&points), "{range:?}: {points}");
        }
    }

    #[cfg(feature = "store")]
    #[test]
    fn the_stores_hour_steps_a_minute_like_its_points() {
        let (range, axis) = ChartRange::Hour.store_range(1_000_050);
        assert_eq!(range.step, 60);
        assert_eq!(axis.step, 60.0);
        assert_eq!(axis.last, 1_000_020.0);
    }

    #[cfg(feature = "store")]
    #[test]
    fn the_store_axis_ends_at_the_step_holding_now() {
        let (range, axis) = ChartRange::Week.store_range(1_000_000);
        assert_eq!(range.from, 1_000_000 - 604_800);
        assert_eq!(axis.last, 997_200.0);
        assert_eq!(axis.position(169, 997_200.0), Some(1.0));
        assert_eq!(axis.position(169, 997_200.0 - 168.0 * 3_600.0), Some(0.0));
        assert_eq!(axis.position(169, 1_000_000.0), Some(1.0));
        assert_eq!(axis.position(169, 1_000_800.0), None);
        assert_eq!(axis.position(169, 997_200.0 - 168.0 * 3_600.0 - 1.0), None);
        assert_eq!(axis.position(1, 997_200.0), None);
        let markers = axis.markers(
            169,
            &[
                (997_200.0, "deploy: v2".into()),
                (1_000_800.0, "later".into()),
            ],
        );
        assert_eq!(markers.len(), 1, "{markers:?}");
        assert_eq!(markers[0].href.as_deref(), Some("/ui/compare?at=997200"));
    }

    #[test]
    fn the_selector_marks_the_current_range() {
        let nav = selector(ChartRange::Week, "/ui/explain?database=a%20b&").into_string();
        assert!(
            nav.contains(
                r#"<a href="/ui/explain?database=a%20b&amp;range=7d" aria-current="page">7d</a>"#
            ),
            "{nav}"
        );
        assert_eq!(nav.matches("aria-current").count(), 1, "{nav}");
        assert_eq!(query_value("a b&c=<d>"), "a%20b%26c%3D%3Cd%3E");
    }
}
