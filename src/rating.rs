//! Rating one duration of an operation, for `POST /api/performance/analyze`.
//!
//! The seed rated against fixed thresholds only. Here, when the operation
//! has recorded history (custom measurements, or an HTTP route), the
//! duration is rated against that operation's own p50 and p95, and the
//! suggestions say by how much. A rating reads history and never records,
//! so callers cannot poison it.

use crate::metrics::Sketch;

/// Observations an operation needs before its own percentiles are trusted.
pub const MIN_HISTORY: u64 = 10;

/// Fixed thresholds (ms) used when there is no history: below each bound
/// the rating is the matching [`Performance`].
pub const FIXED_THRESHOLDS_MS: [(f64, Performance); 4] = [
    (100.0, Performance::Excellent),
    (300.0, Performance::Good),
    (1_000.0, Performance::Acceptable),
    (3_000.0, Performance::Poor),
];

/// The rating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Performance {
    Excellent,
    Good,
    Acceptable,
    Poor,
    Critical,
}

/// Where a baseline came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum BaselineSource {
    /// `custom_operation_duration_seconds`.
    Custom,
    /// `http_request_duration_seconds`.
    Http,
}

/// The operation's own percentiles, from its quantile sketch (within 1 %
/// of an observed value; the exported histogram's buckets are too coarse
/// to rate against: a route whose every request took 1.10 s read 1.75 s).
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
pub struct Baseline {
    /// Which metric the history comes from.
    pub source: BaselineSource,
    /// Observations in the history.
    pub samples: u64,
    /// Median, milliseconds.
    pub p50: f64,
    /// 95th percentile, milliseconds.
    pub p95: f64,
}

impl Baseline {
    /// A baseline from a history, if it has enough observations.
    pub fn from_history(source: BaselineSource, history: &Sketch) -> Option<Self> {
        let samples = history.count();
        if samples < MIN_HISTORY {
            return None;
        }
        Some(Self {
            source,
            samples,
            p50: history.quantile(0.5)? * 1_000.0,
            p95: history.quantile(0.95)? * 1_000.0,
        })
    }
}

/// The verdict on one duration.
#[derive(Clone, Debug, PartialEq)]
pub struct Rating {
    /// The rating.
    pub performance: Performance,
    /// What it means and what to do.
    pub suggestions: Vec<String>,
}

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0} ms")
    } else {
        format!("{value:.1} ms")
    }
}

/// Rates `duration_ms` of `operation`, against `baseline` when there is one.
pub fn rate(operation: &str, duration_ms: f64, baseline: Option<&Baseline>) -> Rating {
    let mut suggestions = Vec::new();
    let performance = match baseline {
        Some(b) => {
            let p95 = b.p95.max(f64::EPSILON);
            let ratio = duration_ms / p95;
            let performance = if duration_ms <= b.p50 {
                Performance::Excellent
            } else if duration_ms <= b.p95 {
                Performance::Good
            } else if ratio <= 1.5 {
                Performance::Acceptable
            } else if ratio <= 3.0 {
                Performance::Poor
            } else {
                Performance::Critical
            };
            let source = match b.source {
                BaselineSource::Custom => "custom measurements",
                BaselineSource::Http => "HTTP requests",
            };
            if duration_ms > b.p95 {
                suggestions.push(format!(
                    "{} is {ratio:.1}× this operation's p95 of {} (p50 {}, {} samples from {source}).",
                    ms(duration_ms),
                    ms(b.p95),
                    ms(b.p50),
                    b.samples
                ));
            } else {
                suggestions.push(format!(
                    "{} is within this operation's usual range (p50 {}, p95 {}, {} samples from {source}).",
                    ms(duration_ms),
                    ms(b.p50),
                    ms(b.p95),
                    b.samples
                ));
            }
            performance
        }
        None => {
            let performance = FIXED_THRESHOLDS_MS
                .iter()
                .find(|(bound, _)| duration_ms < *bound)
                .map_or(Performance::Critical, |(_, p)| *p);
            suggestions.push(format!(
                "'{operation}' has fewer than {MIN_HISTORY} recorded observations, so it is rated against fixed thresholds (excellent < 100 ms, good < 300 ms, acceptable < 1 s, poor < 3 s)."
            ));
            performance
        }
    };
    match performance {
        Performance::Excellent | Performance::Good => {}
        Performance::Acceptable => suggestions.push(
            "Watch this operation: if it keeps running this long, look at its queries and downstream calls.".into(),
        ),
        Performance::Poor | Performance::Critical => {
            suggestions.push(
                "Look at the queries it runs: the slow-query list and index suggestions in /api/performance/stats show where the time goes.".into(),
            );
            suggestions.push(
                "If it waits on independent I/O, run those calls concurrently; cache results that change rarely.".into(),
            );
        }
    }
    Rating {
        performance,
        suggestions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(p50: f64, p95: f64) -> Baseline {
        Baseline {
            source: BaselineSource::Custom,
            samples: 100,
            p50,
            p95,
        }
    }

    #[test]
    fn fixed_thresholds_without_history() {
        assert_eq!(rate("x", 50.0, None).performance, Performance::Excellent);
        assert_eq!(rate("x", 100.0, None).performance, Performance::Good);
        assert_eq!(rate("x", 999.0, None).performance, Performance::Acceptable);
        assert_eq!(rate("x", 2_000.0, None).performance, Performance::Poor);
        assert_eq!(rate("x", 3_000.0, None).performance, Performance::Critical);
        assert!(rate("x", 50.0, None).suggestions[0].contains("fixed thresholds"));
    }

    #[test]
    fn rated_against_own_percentiles() {
        let b = baseline(210.0, 480.0);
        let slow = rate("x", 1_500.0, Some(&b));
        assert_eq!(slow.performance, Performance::Critical);
        assert!(
            slow.suggestions[0].starts_with("1500 ms is 3.1× this operation's p95 of 480 ms"),
            "{:?}",
            slow.suggestions
        );
        assert_eq!(
            rate("x", 200.0, Some(&b)).performance,
            Performance::Excellent
        );
        assert_eq!(rate("x", 400.0, Some(&b)).performance, Performance::Good);
        assert_eq!(
            rate("x", 700.0, Some(&b)).performance,
            Performance::Acceptable
        );
        assert_eq!(rate("x", 1_400.0, Some(&b)).performance, Performance::Poor);
    }

    #[test]
    fn a_fast_operation_is_not_excellent_at_its_worst() {
        // 250 ms is "good" on fixed thresholds but far past this one's p95.
        let b = baseline(2.0, 5.0);
        assert_eq!(
            rate("x", 250.0, Some(&b)).performance,
            Performance::Critical
        );
    }

    #[test]
    fn short_history_gives_no_baseline() {
        let h = crate::metrics::AtomicSketch::default();
        for _ in 0..(MIN_HISTORY - 1) {
            h.observe(0.0011);
        }
        assert!(Baseline::from_history(BaselineSource::Http, &h.snapshot()).is_none());
        h.observe(0.0011);
        let b = Baseline::from_history(BaselineSource::Http, &h.snapshot()).expect("enough");
        assert_eq!(b.samples, MIN_HISTORY);
        // Every observation took 1.1 ms: so do the p50 and the p95 (the
        // histogram's 1–2.5 ms bucket said 1.75 ms and 2.4 ms).
        assert!((b.p50 - 1.1).abs() <= 1.1 * 0.01, "{b:?}");
        assert!((b.p95 - 1.1).abs() <= 1.1 * 0.01, "{b:?}");
    }
}
