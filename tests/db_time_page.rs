//! The "Database time" page over real HTTP (issue 20, "How it is shown"):
//! an agent watching a throwaway cluster as `default`, its active session
//! history filled with known samples (`support::ash::fill`: the handle's
//! real ring, pushed what the sampler would push). The page needs a
//! session, says so while there are no samples, then draws the stacked
//! AAS chart by wait class with its legend, lists the routes with their
//! wait profiles, the locked statement's blocker with the link to the
//! lock chains and its trace id as a link through `PERFSCOPE_TRACE_URL`,
//! and refuses a bad range or an unwatched database by name.

#![cfg(all(feature = "postgres", feature = "ui"))]

mod support;

use support::ash::{TRACE_ID, agent, fill, now};
use support::pg::PgCluster;
use support::{ui_page, ui_session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_draws_the_stacked_chart_and_the_rows_of_a_filled_ring() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let (perfscope, app) = agent(&cluster, Some("https://tempo.example/trace/{trace_id}")).await;
    let base = app.base.as_str();

    let (status, _) = ui_page(base, "/ui/db-time", "perfscope_session=nope").await;
    assert_eq!(status, 303, "a session is needed");
    let cookie = ui_session(base).await;

    let (status, empty) = ui_page(base, "/ui/db-time", &cookie).await;
    assert_eq!(status, 200, "{empty}");
    assert!(
        empty.contains("No samples yet: ASH samples pg_stat_activity every PERFSCOPE_ASH_INTERVAL"),
        "{empty}"
    );
    assert!(
        empty.contains(r#"href="/ui/db-time" aria-current="page">Database time</a>"#),
        "in the nav: {empty}"
    );

    fill(&perfscope, now(), Some("/search<script>"));
    let (status, page) = ui_page(base, "/ui/db-time?database=default&range=15m", &cookie).await;
    assert_eq!(status, 200, "{page}");
    // The chart: CPU at the bottom, Lock above it, IO a thin band.
    let cpu = page
        .find(r#"<polygon class="aas-cpu""#)
        .expect("a CPU band");
    let lock = page
        .find(r#"<polygon class="aas-lock""#)
        .expect("a Lock band");
    assert!(cpu < lock, "CPU is drawn first, at the bottom");
    assert!(
        page.contains(r#"<rect class="aas-lock" x="0" y="0" width="10" height="10">"#),
        "legend swatch"
    );
    // The average: 3 sessions, plus the extra route's IO every 10th sample.
    assert!(
        page.contains("<strong>3.10</strong>")
            || page.contains("<strong>3.09</strong>")
            || page.contains("<strong>3.11</strong>"),
        "{page}"
    );
    // Routes with their wait profiles, the untrusted one escaped.
    assert!(page.contains("<code>/orders</code>"), "{page}");
    assert!(page.contains("<code>/pay</code>"), "{page}");
    assert!(page.contains("/search&lt;script&gt;"), "{page}");
    assert!(!page.contains("/search<script>"), "escaped");
    assert!(
        page.contains(r#"aria-label="Lock 100 %""#),
        "/pay's profile: {page}"
    );
    // The locked statement's blocker, the lock chains, the trace link.
    assert!(page.contains("delete from accounts where id = ?"), "{page}");
    assert!(
        page.contains(r#"<a href="/ui/activity">lock chains now</a>"#),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            r#"<a class="trace" href="https://tempo.example/trace/{TRACE_ID}" rel="noreferrer"><code>{TRACE_ID}</code></a>"#
        )),
        "{page}"
    );
    // Applications and roles.
    assert!(
        page.contains("<code>checkout</code>") && page.contains("<code>shop</code>"),
        "{page}"
    );
    assert!(
        !page.contains("id = 42") && !page.contains("id = 7"),
        "no literal value"
    );

    let (status, refused) = ui_page(base, "/ui/db-time?range=7d", &cookie).await;
    assert_eq!(status, 400);
    assert!(
        refused.contains("Field `range`: one of 15m, 1h, 6h or 24h"),
        "{refused}"
    );
    let (status, refused) = ui_page(base, "/ui/db-time?database=nope", &cookie).await;
    assert_eq!(status, 404);
    assert!(refused.contains("Field `database`"), "{refused}");
    app.stop().await;
}
