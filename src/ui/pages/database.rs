//! The Database page (`GET /ui/database`): each watched database's
//! capability self-check with the fix for each missing piece, the agent's
//! own cost there, its space and replication, its server's I/O
//! (`database/io.rs`), and its growth (a view of its own, `growth.rs`).
//! Handler and views live together.

#[cfg(feature = "postgres")]
use maud::{Markup, html};
use poem::web::Data;
use poem::{Response, handler};

use crate::ui::Ui;
#[cfg(feature = "postgres")]
use crate::ui::format;
use crate::ui::guard::LoggedIn;
use crate::ui::layout::{Page, shown};
#[cfg(feature = "postgres")]
use crate::ui::widgets::copy_button;

#[cfg(feature = "postgres")]
pub mod io;

#[handler]
pub async fn show(ui: Data<&Ui>, logged_in: LoggedIn) -> Response {
    let session = &logged_in.session;
    #[cfg(feature = "postgres")]
    let body = {
        let mut checks = Vec::new();
        for watched in ui.perfscope.watched().all() {
            let check = crate::pg::actions::self_check::run(&watched).await;
            checks.push((
                watched.name.to_string(),
                check.map_err(|error| {
                    tracing::warn!(database = %watched.name, %error, "ui: self-check failed");
                    "The database cannot be reached; the self-check runs again on the next visit."
                        .to_owned()
                }),
            ));
        }
        let mut growth = Vec::new();
        for db in ui.perfscope.watched().all() {
            growth.push(
                crate::service::growth::report(
                    &ui.perfscope,
                    Some(&db.name),
                    Some(super::growth::SHOWN),
                    None,
                )
                .await
                .ok(),
            );
        }
        let views: Vec<Markup> = ui
            .perfscope
            .watched()
            .all()
            .iter()
            .zip(&growth)
            .map(|(db, growth)| {
                maud::html! {
                    (own_cost(
                        &db.name,
                        &db.statements.latest().unwrap_or_default(),
                        Some(ui.perfscope.connection_budget().connections(&db.name)),
                    ))
                    (space_and_replication(
                        &db.name,
                        db.space.latest().as_deref(),
                        db.replication.latest().as_deref(),
                    ))
                    (io::section(&db.name, db.io.latest().as_deref()))
                    @if let Some(growth) = growth { (super::growth::section(growth)) }
                }
            })
            .collect();
        maud::html! {
            (view(&checks))
            @for view in &views { (view) }
        }
    };
    #[cfg(not(feature = "postgres"))]
    let _ = &ui;
    #[cfg(not(feature = "postgres"))]
    let body = maud::html! { h1 { "Database" } p.empty { "This build has no Postgres support." } };
    shown(Page::Database, session, body)
}

/// One database's self-check, or why it could not run.
#[cfg(feature = "postgres")]
pub type CheckResult = (
    String,
    Result<crate::pg::actions::self_check::SelfCheck, String>,
);

/// The Database page's body.
#[cfg(feature = "postgres")]
pub fn view(checks: &[CheckResult]) -> Markup {
    html! {
        h1 { "Database" }
        @if checks.is_empty() {
            p.empty { "No database is watched. Set DATABASE_URL (and PERFSCOPE_WATCH_DATABASES for more), after running sql/install.sql as a superuser." }
        }
        @for (name, check) in checks {
            section {
                @match check {
                    Ok(check) => {
                        h2 { (name) span.muted { " · " (check.database_name) " as " (check.role) ", PostgreSQL " (check.server_version) } }
                        table {
                            thead { tr { th { "Capability" } th { "State" } th { "Detail" } th { "Fix" } } }
                            tbody {
                                @for c in &check.capabilities {
                                    tr {
                                        td { (c.name) }
                                        td { @if c.ok { span.sev.low { "ok" } } @else { span.sev.high { "missing" } } }
                                        td { (c.detail)
                                            @if !c.ok && !c.disables.is_empty() { div.muted { "turns off: " (c.disables.join(", ")) } } }
                                        td { @if let Some(fix) = &c.fix { div.statement-row { code.ddl { (fix) } (copy_button(fix)) } } }
                                    }
                                }
                            }
                        }
                    }
                    Err(error) => {
                        h2 { (name) }
                        p.notice { (error) }
                    }
                }
            }
        }
    }
}

/// The Database page's "perfscope's own cost" of one database: the
/// agent's statements there (as src/pg/own.rs recognises them) since the
/// last stats reset, and their share of all statement time, so an operator
/// can watch that the agent does no harm. `connections` is the agent's
/// connections open to the database now (between passes, none).
#[cfg(feature = "postgres")]
pub fn own_cost(
    name: &str,
    statements: &crate::pg::readers::statements::StatementsSnapshot,
    connections: Option<u64>,
) -> Markup {
    let own = &statements.own;
    let all_ms: f64 = own.total_ms
        + statements
            .statements
            .iter()
            .map(|s| s.cumulative.total_ms)
            .sum::<f64>();
    let share = (all_ms > 0.0).then(|| own.total_ms / all_ms);
    html! {
        section.own-cost {
            h2 { (name) span.muted { " · perfscope's own cost" } }
            @if statements.at.is_none() {
                p.empty { "Not read yet: pg_stat_statements has not been read in this database." }
            } @else {
                table {
                    thead { tr { th.num { "Statements" } th.num { "Calls" } th.num { "Total time" } th.num { "Share of statement time" } th.num { "Connections" } } }
                    tbody {
                        tr {
                            td.num { (statements.own_statements) }
                            td.num { (format::count(u64::try_from(own.calls).unwrap_or(0))) }
                            td.num { (format::millis(Some(own.total_ms))) }
                            td.num { (format::percent(share)) }
                            td.num { (connections.map_or_else(|| "–".to_owned(), |c| c.to_string())) }
                        }
                    }
                }
                p.muted { "The agent's own statements in pg_stat_statements since its last reset (also perfscope_agent_statement_calls_total and perfscope_agent_statement_seconds_total); they are left out of every statement list. Connections: those the agent holds open to this database now, within its budget of PERFSCOPE_MAX_DB_CONNECTIONS across every database (perfscope_db_connections); between passes it holds none." }
            }
        }
    }
}

/// The Database page's space and replication views of one database, from
/// the readers' last passes.
#[cfg(feature = "postgres")]
pub fn space_and_replication(
    name: &str,
    space: Option<&crate::pg::readers::space::SpaceSnapshot>,
    replication: Option<&crate::pg::readers::replication::ReplicationSnapshot>,
) -> Markup {
    let bytes = |b: i64| format::bytes(u64::try_from(b).ok());
    html! {
        section {
            h2 { (name) span.muted { " · space" } }
            @match space {
                None => { p.empty { "Not read yet: the space reader runs every fourth pass of the readers." } }
                Some(space) => {
                    div.scroll {
                        table {
                            thead { tr { th { "Table" } th.num { "Rows" } th.num { "Heap" } th.num { "TOAST" } th.num { "Indexes" }
                                th.num { "Total" } th.num { "Bloat (est.)" } th.num { "Growth" } } }
                            tbody {
                                @for t in space.tables.iter().take(10) {
                                    tr {
                                        td { code { (t.schema) "." (t.name) } }
                                        td.num { (format::count(t.rows_estimate.max(0.0) as u64)) }
                                        td.num { (bytes(t.heap_bytes)) }
                                        td.num { (bytes(t.toast_bytes)) }
                                        td.num { (bytes(t.index_bytes)) }
                                        td.num { (bytes(t.total_bytes)) }
                                        td.num.warn[t.bloat_ratio.is_some_and(|r| r >= crate::pg::readers::space::BLOAT_SHARE)] {
                                            (format::percent(t.bloat_ratio))
                                        }
                                        td.num { (t.growth_bytes.map_or_else(|| "–".to_owned(), |g| if g >= 0 { format!("+{}", bytes(g)) } else { format!("−{}", bytes(-g)) })) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { (name) span.muted { " · replication" } }
            @match replication {
                None => { p.empty { "Not read yet." } }
                Some(r) => {
                    p {
                        @if r.standby { "A standby, replaying from its primary." }
                        @else if r.standbys.is_empty() { "A primary with no standby connected." }
                        @else { "A primary with " (r.standbys.len()) " standby(s)." }
                        " "
                        @if r.slots.is_empty() { "No replication slot." }
                    }
                    @if !r.standbys.is_empty() {
                        table {
                            thead { tr { th { "Standby" } th { "State" } th.num { "Write lag" } th.num { "Flush lag" } th.num { "Replay lag" } th.num { "Behind" } } }
                            tbody {
                                @for s in &r.standbys {
                                    tr {
                                        td { (s.name) @if !s.client.is_empty() { span.muted { " · " (s.client) } } }
                                        td { (s.state) @if !s.sync_state.is_empty() { span.muted { " · " (s.sync_state) } } }
                                        td.num { (format::seconds(s.write_lag_seconds)) }
                                        td.num { (format::seconds(s.flush_lag_seconds)) }
                                        td.num { (format::seconds(s.replay_lag_seconds)) }
                                        td.num { (format::bytes(s.bytes_behind.map(|b| b.max(0.0) as u64))) }
                                    }
                                }
                            }
                        }
                    }
                    @if !r.slots.is_empty() {
                        table {
                            thead { tr { th { "Slot" } th { "Type" } th { "Active" } th { "WAL status" } th.num { "WAL retained" } } }
                            tbody {
                                @for slot in &r.slots {
                                    tr {
                                        td { code { (slot.name) } }
                                        td { (slot.slot_type) }
                                        td.warn[!slot.active] { @if slot.active { "yes" } @else { "no" } }
                                        td { (slot.wal_status) }
                                        td.num { (format::bytes(slot.retained_bytes.map(|b| b.max(0.0) as u64))) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn the_database_page_gives_the_fix_for_each_missing_piece() {
        use crate::pg::actions::self_check::{Capability, SelfCheck};
        let fix =
            "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'; -- then restart";
        let checks = vec![
            (
                "default".to_owned(),
                Ok(SelfCheck {
                    database: "default".into(),
                    database_name: "app".into(),
                    role: "perfscope".into(),
                    server_version: "15.18".into(),
                    capabilities: vec![
                        Capability {
                            name: "pg_stat_statements_loaded".into(),
                            ok: false,
                            detail: "statement statistics".into(),
                            disables: vec!["slow queries".into(), "index advice".into()],
                            fix: Some(fix.into()),
                        },
                        Capability {
                            name: "hypopg".into(),
                            ok: true,
                            detail: "hypothetical indexes".into(),
                            disables: vec![],
                            fix: None,
                        },
                    ],
                }),
            ),
            (
                "reports".to_owned(),
                Err("The database cannot be reached.".to_owned()),
            ),
        ];
        let page = view(&checks).into_string();
        for expected in [
            "app as perfscope, PostgreSQL 15.18",
            "pg_stat_statements_loaded",
            "missing",
            "turns off: slow queries, index advice",
            "ALTER SYSTEM SET shared_preload_libraries = &#39;pg_stat_statements&#39;",
            "The database cannot be reached.",
        ] {
            let expected = expected.replace("&#39;", "'");
            assert!(page.contains(&expected), "{expected} missing from {page}");
        }
        assert_eq!(page.matches("class=\"copy\"").count(), 1, "{page}");
        assert!(view(&[]).into_string().contains("No database is watched"));
    }
}
