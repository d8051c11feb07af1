//! Small pieces of markup the pages share: severity badges, folded SQL,
//! copy buttons, meters and recommendation lists.

use maud::{Markup, html};

use super::format;
use crate::findings::{Recommendation, Severity};

/// A severity badge.
pub(crate) fn severity(severity: Severity) -> Markup {
    let (class, text) = match severity {
        Severity::High => ("sev high", "high"),
        Severity::Medium => ("sev medium", "medium"),
        Severity::Low => ("sev low", "low"),
    };
    html! { span class=(class) { (text) } }
}

/// Long SQL: the start on one line, the whole text on demand.
pub(crate) fn sql(text: &str) -> Markup {
    const SHORT: usize = 110;
    if text.chars().count() <= SHORT {
        return html! { code.sql { (text) } };
    }
    let short: String = text.chars().take(SHORT).collect();
    html! {
        details.sql {
            summary { code { (short) "…" } }
            pre { code { (text) } }
        }
    }
}

/// A button that copies `text`.
pub(crate) fn copy_button(text: &str) -> Markup {
    html! { button.copy type="button" data-copy=(text) { "Copy" } }
}

/// A bar of `share` (0..1), marked past `warn`.
pub(crate) fn meter(share: f64, warn: f64) -> Markup {
    let width = 120.0;
    let filled = (share.clamp(0.0, 1.0) * width).round();
    let class = if share >= warn {
        "meter-fill warn"
    } else {
        "meter-fill"
    };
    html! {
        svg.meter width="120" height="8" viewBox="0 0 120 8" role="img" aria-label=(format::percent(Some(share))) {
            rect.meter-track x="0" y="0" width="120" height="8" rx="4" {}
            rect class=(class) x="0" y="0" width=(filled) height="8" rx="4" {}
        }
    }
}

/// A list of findings, each with its severity.
pub(crate) fn recommendations(list: &[Recommendation]) -> Markup {
    html! {
        ul.findings {
            @for r in list {
                li {
                    (severity(r.severity)) " "
                    strong { (r.kind) } " "
                    span { (r.message) }
                    @if let Some(objects) = &r.objects {
                        @if !objects.is_empty() {
                            div.muted { @for (i, o) in objects.iter().enumerate() { @if i > 0 { ", " } code { (o) } } }
                        }
                    }
                }
            }
        }
    }
}
