//! The Advice page (`GET /ui/advice`) and its one change, ANALYZE of a
//! table (`POST /ui/advice/analyze`, confirmed first): index suggestions
//! with the ready statement, whether new indexes helped ("Did it help?"),
//! health findings, runtime and cache advice.
//! The handlers, the findings they read and the view live together.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use crate::Perfscope;
use crate::findings::Recommendation;
use crate::ui::Ui;
use crate::ui::format;
use crate::ui::guard::{LoggedIn, Posted};
#[cfg(feature = "postgres")]
use crate::ui::layout::see_other;
use crate::ui::layout::{Page, answered, confirm, shown};
use crate::ui::session::Session;
use crate::ui::widgets::{copy_button, recommendations, sql};

#[handler]
pub async fn show(
    ui: Data<&Ui>,
    Query(query): Query<HashMap<String, String>>,
    logged_in: LoggedIn,
) -> Response {
    let session = &logged_in.session;
    let mut data = data(&ui.perfscope);
    #[cfg(feature = "postgres")]
    if let Some(id) = query.get("job").and_then(|j| j.parse::<u64>().ok())
        && let Some(job) = crate::service::maintenance::job(&ui.perfscope, id).await
    {
        data.flash = Some(format!(
            "{} {}: {:?} after {} — reload to follow it.",
            job.task.as_str().to_uppercase(),
            job.table.as_deref().unwrap_or("(database)"),
            job.state,
            crate::ui::format::millis(Some(job.duration_ms)),
        ));
    }
    #[cfg(not(feature = "postgres"))]
    let _ = &query;
    shown(Page::Advice, session, view(&data, &session.csrf))
}

/// `POST /ui/advice/analyze`: ANALYZE one table, after a confirmation.
#[handler]
pub async fn analyze(ui: Data<&Ui>, posted: Posted) -> Response {
    let Posted { session, form, .. } = posted;
    let table = form.get("table").map_or("", String::as_str);
    if table.is_empty() || table.len() > 127 {
        return answered(
            StatusCode::BAD_REQUEST,
            Page::Advice,
            &session,
            maud::html! {
                h1 { "Advice" } p.notice { "Field `table`: a schema.table name of 1 to 127 characters is required." }
            },
        );
    }
    if form.get("confirmed").map(String::as_str) != Some("yes") {
        return answered(
            StatusCode::OK,
            Page::Advice,
            &session,
            confirm(
                &format!(
                    "Run ANALYZE on {table}? It reads a sample of the table to refresh the planner's statistics; it does not block reads or writes."
                ),
                "/ui/advice/analyze",
                &[("table", table)],
                &session.csrf,
                "/ui/advice",
            ),
        );
    }
    start_analyze(&ui.perfscope, &session, table).await
}

#[cfg(feature = "postgres")]
async fn start_analyze(perfscope: &Perfscope, session: &Session, table: &str) -> Response {
    use crate::pg::actions::maintenance::Task;
    use crate::service::{ServiceError, Source, maintenance};
    match maintenance::start(perfscope, Task::Analyze, Some(table), Source::Ui).await {
        Ok(job) => see_other(&format!("/ui/advice?job={}", job.id)),
        Err(error) => {
            let (status, message) = crate::ui::refusal::refusal(&error);
            // Nothing to go back to without a database.
            let back = !matches!(error, ServiceError::NoDatabase);
            answered(
                status,
                Page::Advice,
                session,
                maud::html! {
                    h1 { "Advice" } p.notice { (message) } @if back { p { a href="/ui/advice" { "Back to the advice" } } }
                },
            )
        }
    }
}

#[cfg(not(feature = "postgres"))]
async fn start_analyze(_: &Perfscope, session: &Session, _: &str) -> Response {
    answered(
        StatusCode::SERVICE_UNAVAILABLE,
        Page::Advice,
        &session,
        maud::html! {
            h1 { "Advice" } p.notice { "This build has no Postgres support." }
        },
    )
}

/// The Advice page's findings now.
pub fn data(perfscope: &Perfscope) -> Advice {
    let process = crate::runtime::process::ProcessSnapshot::read();
    let runtime = perfscope.runtime().snapshot();
    let found = crate::service::advice::assemble(perfscope, true, &runtime, &process);
    let mut other = found.runtime;
    other.extend(found.caches);
    other.extend(found.database_cache);
    #[cfg(feature = "postgres")]
    {
        let suggestions = found
            .index_suggestions
            .into_iter()
            .map(|s| SuggestionRow {
                database: s.database,
                table: s.table.unwrap_or_default(),
                columns: s.columns.unwrap_or_default(),
                create_statement: s.create_statement.unwrap_or_default(),
                together: s.together.unwrap_or_default(),
                helps: s.helps.unwrap_or_default(),
                calls: s.calls,
                total_ms: s.total_ms,
                costs: s.cost_before.zip(s.cost_after),
                saving: s.estimated_saving,
                confirmed_by: s.confirmed_by,
                sampled: s.sampled_values_helped.zip(s.sampled_values_planned),
                weighing: (s.read_saving_per_second, s.write_cost_per_second),
                drop_with: s.drop_with.unwrap_or_default(),
            })
            .collect();
        let not_advised = found
            .not_advised
            .into_iter()
            .map(|s| NotAdvisedRow {
                database: s.database,
                queryid: s.queryid,
                reason: s.reason,
                statement: s.statement.unwrap_or_default(),
                tables: s.tables.unwrap_or_default(),
                calls: s.calls,
                total_ms: s.total_ms,
                create_statement: s.create_statement,
            })
            .collect();
        let impact = found
            .index_impact
            .into_iter()
            .map(|i| ImpactRow {
                database: i.database,
                queryid: i.queryid,
                definition: i.definition.unwrap_or_default(),
                verdict: i.verdict,
                message: i.message,
                before_mean_ms: i.before_mean_ms,
                after_mean_ms: i.after_mean_ms,
                before_blocks: i.before_blocks_per_call,
                after_blocks: i.after_blocks_per_call,
                after_calls: i.after_calls,
            })
            .collect();
        Advice {
            suggestions,
            not_advised,
            impact,
            health: found.health,
            other,
            maintenance: perfscope.maintenance().is_some(),
            flash: None,
        }
    }
    #[cfg(not(feature = "postgres"))]
    Advice {
        other,
        ..Default::default()
    }
}

/// One index suggestion.
#[derive(Clone, Debug, Default)]
pub struct SuggestionRow {
    /// The watched database.
    pub database: String,
    /// `schema.table`.
    pub table: String,
    /// Columns, in order.
    pub columns: Vec<String>,
    /// The ready statement.
    pub create_statement: String,
    /// The other indexes to create with it (an OR's branches).
    pub together: Vec<String>,
    /// Statements it helps.
    pub helps: Vec<String>,
    /// Their calls.
    pub calls: u64,
    /// Their total time, ms.
    pub total_ms: f64,
    /// Planner cost before and after (hypopg).
    pub costs: Option<(f64, f64)>,
    /// `1 - after / before`.
    pub saving: Option<f64>,
    /// `hypopg` or `statistics`.
    pub confirmed_by: String,
    /// Planned with real parameter values sampled in this process: how
    /// many samples it helps, of how many.
    pub sampled: Option<(u32, u32)>,
    /// Planner cost per second saved the statements it serves, and what
    /// its entries cost the table's writes.
    pub weighing: (f64, f64),
    /// The drops that go with it (`DROP INDEX CONCURRENTLY …`).
    pub drop_with: Vec<String>,
}

/// A top statement the advisor made no suggestion for.
#[derive(Clone, Debug, Default)]
pub struct NotAdvisedRow {
    /// The watched database.
    pub database: String,
    /// The statement's queryid.
    pub queryid: String,
    /// The advisor's reason (`small_table`, `no_saving`, …).
    pub reason: String,
    /// The normalized statement.
    pub statement: String,
    /// The tables it filters, as written.
    pub tables: Vec<String>,
    /// Its calls.
    pub calls: u64,
    /// Its total time, ms.
    pub total_ms: f64,
    /// For `pattern_unconfirmed`: the pattern index that would serve
    /// prefix values.
    pub create_statement: Option<String>,
}

/// How one statement fared after a new index.
#[derive(Clone, Debug, Default)]
pub struct ImpactRow {
    /// The watched database.
    pub database: String,
    /// The statement's queryid.
    pub queryid: String,
    /// The index's definition.
    pub definition: String,
    /// `helped`, `no_effect`, `worse` or `pending`.
    pub verdict: String,
    /// The verdict in a sentence.
    pub message: String,
    /// Mean time per call before and after, ms.
    pub before_mean_ms: f64,
    /// After (once there is a call).
    pub after_mean_ms: Option<f64>,
    /// Shared blocks touched per call before and after.
    pub before_blocks: f64,
    /// After (once there is a call).
    pub after_blocks: Option<f64>,
    /// Calls since the index appeared.
    pub after_calls: u64,
}

/// What a reason of the advisor means, in a sentence.
fn reason_text(reason: &str) -> &'static str {
    match reason {
        "unparsable" => "the advisor's SQL parser could not read it",
        "unsupported" => "not a plain SELECT, UPDATE or DELETE (INSERT, UNION, VALUES, …)",
        "no_candidate" => "no column is compared with a value",
        "table_not_found" => "its table was not found (or is not visible to the planner role)",
        "small_table" => "its tables have under 10,000 rows: a scan is cheap",
        "low_selectivity" => "its columns have too few distinct values for an index",
        "already_indexed" => "an index already leads with its column",
        "no_saving" => {
            "with a hypothetical index (hypopg) the plan's cost would drop by under 10 %"
        }
        "write_cost" => {
            "its index would cost the table's writes (and HOT updates) more than it saves its reads"
        }
        "catalog_error" => "reading the catalog for it failed",
        "expression_unconfirmed" => {
            "an expression index would serve it, but only a hypopg plan can confirm the server can hold it"
        }
        "pattern_unconfirmed" => {
            "it compares a column with LIKE $1: the pattern index below serves prefix values ('ab%'), which a generic plan cannot show"
        }
        "pattern_trigram_only" => {
            "LIKE with a leading wildcard: only a trigram index (pg_trgm, GIN) would serve it"
        }
        _ => "see perfscope_advisor_skipped_statements",
    }
}

/// What the Advice page shows.
#[derive(Clone, Debug, Default)]
pub struct Advice {
    /// Index suggestions.
    pub suggestions: Vec<SuggestionRow>,
    /// The top statements without a suggestion, and why.
    pub not_advised: Vec<NotAdvisedRow>,
    /// Whether new indexes helped.
    pub impact: Vec<ImpactRow>,
    /// Health findings of the databases.
    pub health: Vec<Recommendation>,
    /// Runtime and cache advice.
    pub other: Vec<Recommendation>,
    /// Whether maintenance can run (a DATABASE_URL is set).
    pub maintenance: bool,
    /// What the last action did.
    pub flash: Option<String>,
}

/// The Advice page's body.
pub fn view(data: &Advice, csrf: &str) -> Markup {
    html! {
        h1 { "Advice" }
        @if let Some(flash) = &data.flash {
            p.notice role="status" { (flash) }
        }
        section {
            h2 { "Indexes worth creating" }
            @if data.suggestions.is_empty() {
                p.empty { "No index suggestion. The advisor reads the slowest statements of pg_stat_statements and plans them with hypopg when it is installed; suggestions show here after its next pass." }
            }
            @for s in &data.suggestions {
                article.suggestion {
                    header {
                        h3 { code { (s.table) } " (" (s.columns.join(", ")) ")" }
                        @if let Some(saving) = s.saving {
                            span.saving { "−" (format::percent(Some(saving))) " planner cost" }
                        } @else if s.confirmed_by == "hypopg" {
                            span.muted { "planned with hypopg" }
                        } @else {
                            span.muted { "from column statistics (not confirmed with hypopg)" }
                        }
                    }
                    div.statement-row {
                        code.ddl { (s.create_statement) }
                        (copy_button(&s.create_statement))
                    }
                    @if !s.together.is_empty() {
                        p.muted { "Create it together with (the branches of an OR are served only by an index each):" }
                        @for other in &s.together {
                            div.statement-row {
                                code.ddl { (other) }
                                (copy_button(other))
                            }
                        }
                    }
                    p.muted {
                        (s.database) " · helps " (s.helps.len()) " statement(s), "
                        (format::count(s.calls)) " calls, " (format::millis(Some(s.total_ms))) " total"
                        @if let Some((before, after)) = s.costs { " · cost " (format!("{before:.0} → {after:.0}")) }
                        @if let Some((helped, planned)) = s.sampled { " · planned with real parameter values: helps " (helped) " of " (planned) " sampled" }
                        " · saves " (format!("{:.0}", s.weighing.0)) " cost/s of reads, costs " (format!("{:.0}", s.weighing.1)) " cost/s of writes"
                    }
                    @for statement in &s.helps {
                        div.helps { (sql(statement)) }
                    }
                    @if !s.drop_with.is_empty() {
                        p.muted { "With it, drop the table's unused or redundant indexes:" }
                        @for drop in &s.drop_with {
                            div.statement-row {
                                code.ddl { (drop) }
                                (copy_button(drop))
                            }
                        }
                    }
                    @if data.maintenance && s.database == "default" {
                        form.inline method="post" action="/ui/advice/analyze" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="table" value=(s.table);
                            button.secondary type="submit" { "Run ANALYZE on " (s.table) "…" }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Did it help?" }
            @if data.impact.is_empty() {
                p.empty { "No new index to judge yet. When an index appears (one suggested here, or any other), the statements it serves are compared before and after it from pg_stat_statements, once they ran 20 times since." }
            }
            @for i in &data.impact {
                article.impact {
                    p { strong { (i.verdict) } ": " (i.message) }
                    @if !i.definition.is_empty() {
                        div.statement-row { code.ddl { (i.definition) } }
                    }
                    p.muted {
                        (i.database) " · queryid " (i.queryid)
                        " · " (format::millis(Some(i.before_mean_ms))) " → "
                        @if let Some(after) = i.after_mean_ms { (format::millis(Some(after))) } @else { "…" }
                        " per call · " (format!("{:.0}", i.before_blocks)) " → "
                        @if let Some(after) = i.after_blocks { (format!("{after:.0}")) } @else { "…" }
                        " blocks per call · " (format::count(i.after_calls)) " calls since"
                    }
                }
            }
        }
        @if !data.not_advised.is_empty() {
            section {
                h2 { "Slow statements without index advice" }
                p.muted { "The advisor read these top statements and suggests no index for them, for the reason given." }
                @for s in &data.not_advised {
                    article.not-advised {
                        p {
                            strong { (s.reason) } ": " (reason_text(&s.reason))
                        }
                        @if !s.statement.is_empty() {
                            div.helps { (sql(&s.statement)) }
                        }
                        @if let Some(create) = &s.create_statement {
                            div.statement-row {
                                code.ddl { (create) }
                                (copy_button(create))
                            }
                        }
                        p.muted {
                            (s.database) " · queryid " (s.queryid)
                            @if !s.tables.is_empty() { " · " (s.tables.join(", ")) }
                            " · " (format::count(s.calls)) " calls, " (format::millis(Some(s.total_ms))) " total"
                        }
                    }
                }
            }
        }
        section {
            h2 { "Database health" }
            @if data.health.is_empty() {
                p.empty { "No finding: indexes, vacuum, sequences, wraparound and connections look fine (or no database is watched yet)." }
            } @else {
                (recommendations(&data.health))
            }
        }
        section {
            h2 { "Runtime and caches" }
            @if data.other.is_empty() {
                p.empty { "Nothing to change." }
            } @else {
                (recommendations(&data.other))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_of_the_advisor_is_explained() {
        for reason in [
            "unparsable",
            "unsupported",
            "no_candidate",
            "table_not_found",
            "small_table",
            "low_selectivity",
            "already_indexed",
            "expression_unconfirmed",
            "pattern_unconfirmed",
            "pattern_trigram_only",
            "no_saving",
            "write_cost",
            "catalog_error",
        ] {
            assert_ne!(
                reason_text(reason),
                reason_text("not a reason"),
                "{reason} has no sentence"
            );
        }
    }

    #[test]
    fn empty_states_say_what_to_do() {
        let page = view(&Advice::default(), "t").into_string();
        assert!(page.contains("No index suggestion"), "{page}");
    }

    #[test]
    fn advice_shows_the_statement_with_a_copy_button_and_the_saving() {
        let statement = "CREATE INDEX CONCURRENTLY ON \"public\".\"customers\" (\"email\");";
        let page = view(
            &Advice {
                suggestions: vec![SuggestionRow {
                    database: "default".into(),
                    table: "public.customers".into(),
                    columns: vec!["email".into()],
                    create_statement: statement.into(),
                    together: vec![
                        "CREATE INDEX CONCURRENTLY ON \"public\".\"customers\" (\"phone\");".into(),
                    ],
                    helps: vec!["select * from customers where email = $1 or phone = $2".into()],
                    calls: 1_000,
                    total_ms: 12_000.0,
                    costs: Some((1_500.0, 8.0)),
                    saving: Some(0.9947),
                    confirmed_by: "hypopg".into(),
                    sampled: Some((1, 4)),
                    weighing: (18_000.0, 40.0),
                    drop_with: vec!["DROP INDEX CONCURRENTLY \"public\".\"customers_old\";".into()],
                }],
                maintenance: true,
                ..Default::default()
            },
            "csrf-token-value",
        )
        .into_string();
        let escaped = statement.replace('"', "&quot;");
        assert!(page.contains(&escaped), "{page}");
        assert!(page.contains(&format!("data-copy=\"{escaped}\"")), "{page}");
        assert!(page.contains("−99 % planner cost"), "{page}");
        assert!(page.contains("Create it together with"), "{page}");
        assert!(
            page.contains("data-copy=\"CREATE INDEX CONCURRENTLY ON &quot;public&quot;.&quot;customers&quot; (&quot;phone&quot;);\""),
            "{page}"
        );
        assert!(page.contains("1500 → 8"), "{page}");
        assert!(
            page.contains("planned with real parameter values: helps 1 of 4 sampled"),
            "{page}"
        );
        assert!(
            page.contains("saves 18000 cost/s of reads, costs 40 cost/s of writes"),
            "{page}"
        );
        assert!(
            page.contains("DROP INDEX CONCURRENTLY &quot;public&quot;.&quot;customers_old&quot;;"),
            "{page}"
        );
        assert!(
            page.contains("name=\"csrf\" value=\"csrf-token-value\""),
            "{page}"
        );
        assert!(page.contains("action=\"/ui/advice/analyze\""), "{page}");
    }

    #[test]
    fn did_it_help_shows_the_verdict_and_the_figures() {
        let page = view(
            &Advice {
                impact: vec![ImpactRow {
                    database: "default".into(),
                    queryid: "-7".into(),
                    definition: "CREATE INDEX orders_customer ON public.orders USING btree (customer_id)".into(),
                    verdict: "helped".into(),
                    message: "index public.orders_customer on public.orders cut `select …` from 52.0 ms to 0.90 ms (57.8×)".into(),
                    before_mean_ms: 52.0,
                    after_mean_ms: Some(0.9),
                    before_blocks: 443.0,
                    after_blocks: Some(4.0),
                    after_calls: 30,
                }],
                ..Default::default()
            },
            "t",
        )
        .into_string();
        assert!(page.contains("Did it help?"), "{page}");
        assert!(page.contains("<strong>helped</strong>"), "{page}");
        assert!(page.contains("(57.8×)"), "{page}");
        assert!(page.contains("443 → 4 blocks per call"), "{page}");
        assert!(page.contains("queryid -7"), "{page}");
        let empty = view(&Advice::default(), "t").into_string();
        assert!(empty.contains("No new index to judge yet"), "{empty}");
    }

    #[test]
    fn statements_without_advice_are_listed_with_the_reason() {
        let page = view(
            &Advice {
                not_advised: vec![NotAdvisedRow {
                    database: "default".into(),
                    queryid: "-42".into(),
                    reason: "small_table".into(),
                    statement: "select * from tiny where id = $1".into(),
                    tables: vec!["tiny".into()],
                    calls: 10,
                    total_ms: 3.0,
                    create_statement: None,
                }, NotAdvisedRow {
                    database: "default".into(),
                    queryid: "7".into(),
                    reason: "pattern_unconfirmed".into(),
                    statement: "select * from accounts where username like $1".into(),
                    tables: vec!["accounts".into()],
                    calls: 10,
                    total_ms: 3.0,
                    create_statement: Some("CREATE INDEX CONCURRENTLY ON \"public\".\"accounts\" (\"username\" text_pattern_ops);".into()),
                }],
                ..Default::default()
            },
            "t",
        )
        .into_string();
        assert!(
            page.contains("Slow statements without index advice"),
            "{page}"
        );
        assert!(page.contains("small_table"), "{page}");
        assert!(page.contains("under 10,000 rows"), "{page}");
        assert!(page.contains("queryid -42"), "{page}");
        assert!(page.contains("serves prefix values"), "{page}");
        assert!(
            page.contains("(&quot;username&quot; text_pattern_ops);"),
            "{page}"
        );
        let empty = view(&Advice::default(), "t").into_string();
        assert!(!empty.contains("without index advice"), "{empty}");
    }
}
