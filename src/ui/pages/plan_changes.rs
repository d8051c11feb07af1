//! The Plan changes page (`GET /ui/plan-changes`, `?database=` to show
//! one): each statement whose generic plan changed shape, the two shapes
//! side by side with the figures before and after (see
//! `crate::pg::plans`). Shapes and statements name the database's objects:
//! untrusted text, escaped like everything maud renders.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::web::{Data, Query};
use poem::{Response, handler};

use crate::ui::Ui;
use crate::ui::format;
use crate::ui::guard::LoggedIn;
use crate::ui::layout::{Page, shown};
use crate::ui::widgets::sql;

#[handler]
pub fn show(
    ui: Data<&Ui>,
    Query(query): Query<HashMap<String, String>>,
    logged_in: LoggedIn,
) -> Response {
    let session = &logged_in.session;
    #[cfg(feature = "postgres")]
    let data = data(&ui.perfscope, query.get("database").map(String::as_str));
    #[cfg(not(feature = "postgres"))]
    let data = {
        let _ = (&ui, &query);
        PlanChanges::default()
    };
    shown(Page::Queries, session, view(&data))
}

/// The changes of `database` (every watched database without one), newest
/// first.
#[cfg(feature = "postgres")]
pub fn data(perfscope: &crate::Perfscope, database: Option<&str>) -> PlanChanges {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut rows = Vec::new();
    let mut tracked = 0;
    for watched in perfscope.watched().all() {
        if database.is_some_and(|name| name != &*watched.name) {
            continue;
        }
        let plans = watched.advisor.plan_changes();
        tracked += plans.tracked();
        rows.extend(plans.changes().into_iter().map(|change| {
            ChangeRow {
                age_seconds: (now - change.detected_at).max(0.0),
                database: change.database,
                queryid: change.queryid,
                statement: change.statement,
                before_fingerprint: change.before_fingerprint,
                after_fingerprint: change.after_fingerprint,
                before_shape: change.before_shape,
                after_shape: change.after_shape,
                before: change
                    .before
                    .map(|w| (w.calls, w.mean_ms, w.blocks_per_call)),
                after: change
                    .after
                    .map(|w| (w.calls, w.mean_ms, w.blocks_per_call)),
                slowdown: change.slowdown,
                slower: change.slower,
            }
        }));
    }
    rows.sort_by(|a, b| a.age_seconds.total_cmp(&b.age_seconds));
    PlanChanges {
        database: database.map(str::to_owned),
        tracked,
        changes: rows,
    }
}

/// What the page shows.
#[derive(Clone, Debug, Default)]
pub struct PlanChanges {
    /// The database asked for (`None`: all).
    pub database: Option<String>,
    /// Statements whose plan is remembered.
    pub tracked: usize,
    /// The changes, newest first.
    pub changes: Vec<ChangeRow>,
}

/// One change.
#[derive(Clone, Debug, Default)]
pub struct ChangeRow {
    /// The watched database.
    pub database: String,
    /// The queryid.
    pub queryid: String,
    /// The normalized statement.
    pub statement: Option<String>,
    /// Seconds since it was seen.
    pub age_seconds: f64,
    /// The earlier plan's fingerprint.
    pub before_fingerprint: String,
    /// The new plan's fingerprint.
    pub after_fingerprint: String,
    /// The earlier plan's shape.
    pub before_shape: String,
    /// The new plan's shape.
    pub after_shape: String,
    /// `(calls, mean ms, blocks per call)` under the earlier plan.
    pub before: Option<(u64, f64, f64)>,
    /// The same under the new plan.
    pub after: Option<(u64, f64, f64)>,
    /// After over before mean time.
    pub slowdown: Option<f64>,
    /// At least twice as slow.
    pub slower: bool,
}

fn figures(window: Option<(u64, f64, f64)>, none: &str) -> Markup {
    html! {
        @match window {
            Some((calls, mean, blocks)) => {
                (format::count(calls)) " calls · mean " (format::millis(Some(mean)))
                " · " (format!("{blocks:.0}")) " blocks/call"
            }
            None => span.muted { (none) }
        }
    }
}

/// The page's body.
pub fn view(data: &PlanChanges) -> Markup {
    html! {
        h1 { "Plan changes" @if let Some(db) = &data.database { span.muted { " · " (db) } } }
        p.muted {
            "The generic plan the agent computes for each top statement (as the planner role, on the index advisor's passes) is reduced to its shape: node types, joins, relations and indexes, without costs. "
            "A custom plan the application runs for particular values is not seen, so a plan that flips with a parameter's value does not show here. "
            (data.tracked) " statements watched."
        }
        @if data.changes.is_empty() {
            p.empty { "No plan has changed since the agent started. Statements the advisor plans (top statements of a role in PERFSCOPE_PLAN_ROLES) show here when their plan's shape changes." }
        }
        @for change in &data.changes {
            section.plan-change {
                h2 {
                    (change.database) " · queryid " (change.queryid)
                    span.muted { " · " (format::age(change.age_seconds)) " ago" }
                    @if change.slower {
                        " " span class="sev high" { (format!("{:.1}× slower", change.slowdown.unwrap_or_default())) }
                    } @else if let Some(slowdown) = change.slowdown {
                        span.muted { (format!(" · {slowdown:.2}× the mean time before")) }
                    }
                }
                @if let Some(statement) = &change.statement { (sql(statement)) }
                div.sides {
                    div {
                        h3 { "Before " code { (change.before_fingerprint) } }
                        p { (figures(change.before, "seen on one pass only")) }
                        pre.plan { code { (change.before_shape) } }
                    }
                    div {
                        h3 { "After " code { (change.after_fingerprint) } }
                        p { (figures(change.after, "filled in over the next passes")) }
                        pre.plan { code { (change.after_shape) } }
                    }
                }
                p { a href=(format!("/ui/explain?database={}&queryid={}", crate::ui::range::query_value(&change.database), change.queryid)) { "the plan now" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_side_by_side_escaped() {
        let page = view(&PlanChanges {
            database: None,
            tracked: 3,
            changes: vec![ChangeRow {
                database: "default".into(),
                queryid: "42".into(),
                statement: Some("select * from \"<b>\" where id = $1".into()),
                before_shape: "Index Scan on <script>x</script> using i\n".into(),
                after_shape: "Seq Scan on <script>x</script>\n".into(),
                before_fingerprint: "00000000000000aa".into(),
                after_fingerprint: "00000000000000bb".into(),
                before: Some((20, 1.0, 4.0)),
                after: Some((30, 9.0, 400.0)),
                slowdown: Some(9.0),
                slower: true,
                ..Default::default()
            }],
        })
        .into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
        assert!(page.contains("Index Scan on &lt;script&gt;"), "{page}");
        assert!(page.contains("Seq Scan on &lt;script&gt;"), "{page}");
        let sides = page.find("class=\"sides\"").expect("sides");
        let (before, after) = (
            page.find("00000000000000aa").expect("before"),
            page.find("00000000000000bb").expect("after"),
        );
        assert!(sides < before && before < after, "{page}");
        assert!(page.contains("9.0× slower"), "{page}");
        assert!(page.contains("3 statements watched"), "{page}");
    }

    #[test]
    fn no_change_says_which_statements_would_show() {
        let page = view(&PlanChanges::default()).into_string();
        assert!(page.contains("PERFSCOPE_PLAN_ROLES"), "{page}");
    }
}
