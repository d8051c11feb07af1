//! The Database page's growth section: per watched database, its growth
//! per day and the days until it doubles, its fastest-growing tables and
//! indexes each with a sparkline of its daily sizes, and the days until
//! each watched sequence runs out, from `service::growth`. A view
//! of its own so the page's file stays about the self-check; names are
//! untrusted and only ever rendered through maud (escaped).

use maud::{Markup, html};

use crate::findings::growth::{Fit, MIN_DAYS, WINDOW_DAYS};
use crate::service::growth::{GrowthReport, History, SizeGrowth};
use crate::ui::{format, svg};

/// Tables and indexes the page lists per database.
pub const SHOWN: usize = 10;

/// The growth section of one database.
pub fn section(report: &GrowthReport) -> Markup {
    html! {
        section.growth {
            h2 { (report.database) span.muted { " · growth" } }
            @match &report.history {
                History::NotKept(why) => { p.empty { (why) } }
                History::Kept => {
                    @if let Some(total) = &report.total {
                        p { "The database: " (bytes(total.fit.now())) ", " (per_day(&total.fit))
                            @if let Some(days) = total.days_until_double { ", twice its size in " (days_text(days)) } "." }
                    }
                    @if report.objects.is_empty() && report.total.is_none() {
                        p.empty { "Not enough history yet: sizes are kept once a day, and a trend needs "
                            (MIN_DAYS) " days (the last " (WINDOW_DAYS) " are used)." }
                    } @else {
                        div.scroll {
                            table {
                                thead { tr { th { "Table or index" } th { "Last " (WINDOW_DAYS) " days" } th.num { "Size" }
                                    th.num { "Per day" } th.num { "Days of history" } th.num { "Twice in" } } }
                                tbody {
                                    @for object in report.objects.iter().take(SHOWN) {
                                        tr {
                                            td { code { (object.name) } span.muted { " · " (object.kind.as_str()) } }
                                            td { (trend_chart(object)) }
                                            td.num { (bytes(object.fit.now())) }
                                            td.num { (per_day(&object.fit)) }
                                            td.num { (object.fit.days()) }
                                            td.num { (object.days_until_double.map_or_else(|| "–".to_owned(), days_text)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if !report.sequences.is_empty() {
                        table {
                            thead { tr { th { "Sequence past 75 %" } th.num { "Last value" } th.num { "Per day" } th.num { "Runs out in" } } }
                            tbody {
                                @for sequence in &report.sequences {
                                    tr {
                                        td { code { (sequence.name) } }
                                        td.num { (sequence.fit.now().map_or_else(|| "–".to_owned(), |v| format::count(v.abs() as u64))) }
                                        td.num { (sequence.fit.trend().map_or_else(|| "not enough history".to_owned(), |t| signed_count(t.per_day))) }
                                        td.num.warn[sequence.days_until_exhausted.is_some_and(|d| d < 90.0)] {
                                            (sequence.days_until_exhausted.map_or_else(|| "–".to_owned(), days_text))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The object's daily sizes as a sparkline, a gap where a day has none.
fn trend_chart(object: &SizeGrowth) -> Markup {
    let (Some(first), Some(last)) = (object.points.first(), object.points.last()) else {
        return svg::sparkline(&[], "no size kept yet");
    };
    let span = usize::try_from(last.0 - first.0 + 1)
        .unwrap_or(1)
        .min(WINDOW_DAYS as usize + 1);
    let mut days: Vec<Option<f64>> = vec![None; span];
    for (day, value) in &object.points {
        if let Some(slot) = usize::try_from(day - first.0)
            .ok()
            .and_then(|i| days.get_mut(i))
        {
            *slot = Some(*value);
        }
    }
    svg::sparkline(&days, &format!("{}: size per day", object.name))
}

fn bytes(value: Option<f64>) -> String {
    format::bytes(value.map(|v| v.max(0.0) as u64))
}

fn per_day(fit: &Fit) -> String {
    match fit {
        Fit::Trend(trend) if trend.per_day >= 0.0 => {
            format!("+{}/day", format::bytes(Some(trend.per_day as u64)))
        }
        Fit::Trend(trend) => format!("−{}/day", format::bytes(Some((-trend.per_day) as u64))),
        Fit::NotEnoughHistory { days, .. } => format!("not enough history ({days} d)"),
    }
}

/// A count per day with its sign: `+1,000,000`, `−20`.
fn signed_count(per_day: f64) -> String {
    let sign = if per_day < 0.0 { "−" } else { "+" };
    format!("{sign}{}", format::count(per_day.abs().round() as u64))
}

fn days_text(days: f64) -> String {
    if days < 1.0 {
        "less than a day".to_owned()
    } else {
        format!("{days:.0} d")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::growth::Trend;
    use crate::service::growth::{ObjectKind, SequenceGrowth};

    fn trend(now: f64, per_day: f64) -> Fit {
        Fit::Trend(Trend {
            now,
            day: 20_010,
            per_day,
            days: 10,
        })
    }

    #[test]
    fn the_section_lists_the_growth_and_escapes_names() {
        let report = GrowthReport {
            database: "shop".into(),
            history: History::Kept,
            target_bytes: None,
            total: Some(SizeGrowth {
                kind: ObjectKind::Database,
                name: "shop".into(),
                fit: trend(1024.0 * 1024.0 * 1024.0, 10.0 * 1024.0 * 1024.0),
                days_until_double: Some(102.4),
                days_until_target: None,
                points: vec![],
            }),
            objects: vec![SizeGrowth {
                kind: ObjectKind::Table,
                name: "public.<script>alert(1)</script>".into(),
                fit: trend(2048.0, 100.0),
                days_until_double: Some(20.48),
                days_until_target: None,
                points: vec![(20_008, 1_000.0), (20_009, 1_500.0), (20_010, 2_048.0)],
            }],
            sequences: vec![SequenceGrowth {
                name: "public.orders_id_seq".into(),
                fit: trend(2e9, 1e6),
                bound: Some(f64::from(i32::MAX)),
                days_until_exhausted: Some(47.5),
            }],
        };
        let page = section(&report).into_string();
        for expected in [
            "shop",
            "1.0 GiB, +10.0 MiB/day, twice its size in 102 d.",
            "public.&lt;script&gt;alert(1)&lt;/script&gt;",
            "+100 B/day",
            "20 d",
            "public.orders_id_seq",
            "2,000,000,000",
            "+1,000,000",
            "48 d",
            "<polyline",
        ] {
            assert!(page.contains(expected), "{expected} missing from {page}");
        }
        assert!(!page.contains("<script>"), "{page}");
    }

    #[test]
    fn the_section_says_when_there_is_no_history() {
        let mut report = GrowthReport {
            database: "shop".into(),
            history: History::Kept,
            target_bytes: None,
            total: None,
            objects: vec![],
            sequences: vec![],
        };
        assert!(
            section(&report)
                .into_string()
                .contains("Not enough history yet")
        );
        report.history = History::NotKept("no history is kept: PERFSCOPE_DATA_DIR is off".into());
        assert!(
            section(&report)
                .into_string()
                .contains("PERFSCOPE_DATA_DIR is off")
        );
    }
}
