//! A statement's trend on its page (the Plan page, `/ui/explain`): calls
//! and mean time per step over the chosen range, with the store's events
//! marked, so "did it get slower after Tuesday's deploy?" is answered
//! beside its plan.
//!
//! With the history store on, every range reads it (the hour at 30 s
//! steps, from the raw passes); without it the hour is the process's own
//! means (a point every 10 s, no calls per step) and longer ranges say
//! there is no history.

use maud::{Markup, html};

use crate::Perfscope;
use crate::ui::format;
use crate::ui::range::{Axis, ChartRange, query_value, selector};
use crate::ui::svg::chart;
use crate::ui::timeline::Timeline;

/// What the trend section shows.
#[derive(Clone, Debug, Default)]
pub struct TrendView {
    /// The range.
    pub range: ChartRange,
    /// Calls per step, when known.
    pub calls: Option<Vec<Option<f64>>>,
    /// Mean time per call per step, ms.
    pub mean_ms: Vec<Option<f64>>,
    /// Calls over the range, when known.
    pub total_calls: Option<i64>,
    /// Time over the range, ms, when known.
    pub total_ms: Option<f64>,
    /// The points' axis, for the markers.
    pub axis: Option<Axis>,
    /// Events to mark: time and label.
    pub events: Vec<(f64, String)>,
    /// Why it covers less than the range.
    pub notice: Option<String>,
}

/// The trend of `queryid` in `database` over `range`.
pub async fn load(
    perfscope: &Perfscope,
    database: &str,
    queryid: i64,
    range: ChartRange,
) -> TrendView {
    let timeline = Timeline::load(perfscope, range).await;
    let mut trend = TrendView {
        range,
        axis: Some(Axis {
            last: timeline.now as f64,
            step: crate::history::SAMPLE_INTERVAL.as_secs_f64(),
        }),
        notice: timeline.notice.clone(),
        ..TrendView::default()
    };
    #[cfg(feature = "store")]
    if let Some(store) = perfscope.store() {
        let keys = vec![(database.to_owned(), queryid)];
        match crate::ui::timeline::stored::statements(store, keys, range, timeline.now).await {
            Ok((mut found, axis)) => {
                let stored = found
                    .remove(&(database.to_owned(), queryid))
                    .unwrap_or_default();
                trend.calls = Some(stored.calls);
                trend.mean_ms = stored.mean_ms;
                trend.total_calls = Some(stored.total_calls);
                trend.total_ms = Some(stored.total_ms);
                trend.axis = Some(axis);
                trend.events = timeline.events;
                return trend;
            }
            Err(error) => {
                tracing::warn!(%error, "the history store gave no statement trend");
            }
        }
    }
    if !range.is_stored() {
        let key = (std::sync::Arc::from(database), queryid);
        if let Some((points, calls)) = perfscope.history().statement(&key) {
            trend.mean_ms = points;
            trend.total_calls = i64::try_from(calls).ok();
        }
    }
    trend.events = timeline.events;
    trend
}

/// The trend section of `queryid`'s page.
pub fn view(trend: &TrendView, database: &str, queryid: i64) -> Markup {
    let base = format!(
        "/ui/explain?database={}&queryid={queryid}&",
        query_value(database)
    );
    let words = trend.range.words();
    let markers = |points: usize| {
        trend
            .axis
            .map(|axis| axis.markers(points, &trend.events))
            .unwrap_or_default()
    };
    html! {
        section.trend {
            h2 { "Trend" span.muted { " · the last " (words) } }
            (selector(trend.range, &base))
            @if let Some(notice) = &trend.notice {
                p.notice.range { (notice) }
            }
            div.cards {
                @if let Some(calls) = &trend.calls {
                    div.card {
                        h2 { "Calls per step" }
                        p.figure { @if let Some(total) = trend.total_calls { (format::count(u64::try_from(total).unwrap_or(0))) } }
                        (chart(calls, &format!("calls per step, the last {words}"), &markers(calls.len())))
                    }
                }
                div.card {
                    h2 { "Mean time per call" }
                    p.figure {
                        @match (trend.total_calls, trend.total_ms) {
                            (Some(calls), Some(ms)) if calls > 0 => { (format::millis(Some(ms / calls as f64))) }
                            _ => { "–" }
                        }
                    }
                    (chart(&trend.mean_ms, &format!("mean time per call per step, the last {words}"), &markers(trend.mean_ms.len())))
                }
            }
            @if trend.mean_ms.iter().all(Option::is_none) {
                p.empty { "No calls of this statement were recorded over the last " (words) "." }
            }
        }
    }
}
