//! `PERFSCOPE_SQL_COMMENTS` on a real server, read back from what the
//! server saw (`pg_stat_activity.query` of the pool's one connection,
//! which keeps its last statement while idle): with `all`, an axum app's
//! statements carry its route template, its application name and, for a
//! sampled request, the `traceparent` of the request's span (the one the
//! OTLP receiver got); with `sampled`, only a sampled request's do; a
//! statement outside any request and one the caller commented itself go
//! as written. Over 10,000 tagged requests the server's prepared
//! statements and the pool's caches stay flat; and pg_stat_statements'
//! `queryid` is the same with and without the comment on PostgreSQL 15
//! and 18.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use perfscope::Perfscope;
use perfscope::config::SqlComments;
use perfscope::db::sqlcomment::{self, Tags};
use perfscope::db::{PoolSettings, TimedPool};
use support::otlp::{Collector, grpc_export, grpc_receiver};
use support::pg::PgCluster;

/// perfscope exporting spans over OTLP/gRPC to `endpoint`, started; stop
/// with the token.
async fn traced_perfscope(
    endpoint: String,
) -> (
    Perfscope,
    tokio_util::sync::CancellationToken,
    perfscope::BackgroundTasks,
) {
    support::otlp::started_with(grpc_export(endpoint, "comments-test"), |_| {})
}

/// A pool of one connection named `application`, commenting as `mode`.
async fn pool(
    perfscope: &Perfscope,
    cluster: &PgCluster,
    application: &str,
    mode: SqlComments,
) -> TimedPool {
    perfscope
        .connect_pool(
            &cluster.url("postgres", "postgres"),
            PoolSettings {
                name: application.into(),
                min: 1,
                max: 1,
                application_name: Some(application.into()),
                sql_comments: mode,
                ..Default::default()
            },
        )
        .await
        .expect("pool")
}

const TEXT: &str = "SELECT name FROM items WHERE id = $1";
const PREPARED: &str = "SELECT count(*) FROM items WHERE id <= $1";
const OWN: &str = "SELECT name FROM items WHERE id = $1 /* the caller's own */";

async fn text(State(pool): State<TimedPool>, Path(id): Path<i32>) -> Result<String, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(TEXT, &[&id])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

async fn prepared(State(pool): State<TimedPool>, Path(id): Path<i32>) -> Result<String, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let statement = client.prepare(PREPARED).await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(&statement, &[&id])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get::<_, i64>(0).to_string())
}

async fn own(State(pool): State<TimedPool>, Path(id): Path<i32>) -> Result<String, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(OWN, &[&id])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

/// The app: one statement per route, through `pool`.
async fn serve(perfscope: &Perfscope, pool: TimedPool) -> String {
    let app = axum::Router::new()
        .route("/text/{id}", axum::routing::get(text))
        .route("/prepared/{id}", axum::routing::get(prepared))
        .route("/own/{id}", axum::routing::get(own))
        .with_state(pool)
        .layer(perfscope.axum_layer());
    support::serve_axum(app).await
}

/// GETs `path`, with `traceparent` when given.
async fn get(base: &str, path: &str, traceparent: Option<&str>) {
    // One client for the whole test: building one (its TLS roots) costs
    // more than a request.
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let mut request = CLIENT
        .get_or_init(support::client)
        .get(format!("{base}{path}"));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let answer = request.send().await.expect("request");
    assert_eq!(answer.status(), 200, "{path}");
}

/// Connects as the superuser.
async fn observer(cluster: &PgCluster) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connects");
    tokio::spawn(connection);
    client
}

/// The last statement the server saw from the connection named
/// `application`.
async fn last_statement(observer: &tokio_postgres::Client, application: &str) -> String {
    observer
        .query_one(
            "SELECT query FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await
        .expect("one connection of that name")
        .get(0)
}

/// The tags of `sql`'s comment, failing when it has none.
fn tags_of(sql: &str) -> Tags {
    sqlcomment::parse(sql)
        .tags()
        .unwrap_or_else(|| panic!("no sqlcommenter comment in {sql:?}"))
}

/// The span id of a `traceparent` in `sql`'s comment.
fn span_id_in(sql: &str) -> String {
    let start = sql.find("traceparent='").expect("a traceparent") + "traceparent='".len();
    let traceparent = &sql[start..start + 55];
    traceparent.split('-').nth(2).expect("span id").to_owned()
}

const T1: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const T2: &str = "771a43a4192642f0b136d5159a501700";
const T3: &str = "0af7651916cd43dd8448eb211c80319c";
const T4: &str = "5b8efff798038103d269b633813fc60c";
const P1: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_and_sampled_comments_as_the_server_sees_them() {
    let cluster = PgCluster::start();
    cluster.create_items().await;
    let collector = Collector::default();
    let (perfscope, cancel, tasks) = traced_perfscope(grpc_receiver(collector.clone()).await).await;
    let observer = observer(&cluster).await;

    // --- all
    let all = pool(&perfscope, &cluster, "shop-all", SqlComments::All).await;
    let base = serve(&perfscope, all.clone()).await;

    // A sampled request: route, application and the request span's
    // traceparent, in the caller's trace.
    get(&base, "/text/7", Some(&format!("00-{T1}-{P1}-01"))).await;
    let seen = last_statement(&observer, "shop-all").await;
    assert!(seen.starts_with(&format!("{TEXT} /*")), "{seen}");
    let tags = tags_of(&seen);
    assert_eq!(tags.route.as_deref(), Some("/text/{id}"), "{seen}");
    assert_eq!(tags.application.as_deref(), Some("shop-all"), "{seen}");
    assert_eq!(tags.trace_id.as_deref(), Some(T1), "{seen}");
    assert!(
        seen.ends_with("*/") && seen.contains("route='%2Ftext%2F%7Bid%7D'"),
        "URL-encoded: {seen}"
    );
    // The span it names is the request's server span, as exported.
    let span = span_id_in(&seen);
    support::until(
        "the request's span arrives",
        Duration::from_secs(10),
        || collector.span_ids(T1).contains(&span),
    )
    .await;

    // A statement the caller prepared is commented too (sent unnamed).
    get(&base, "/prepared/9", Some(&format!("00-{T2}-{P1}-01"))).await;
    let seen = last_statement(&observer, "shop-all").await;
    assert!(seen.starts_with(&format!("{PREPARED} /*")), "{seen}");
    assert_eq!(tags_of(&seen).trace_id.as_deref(), Some(T2), "{seen}");
    assert_eq!(
        tags_of(&seen).route.as_deref(),
        Some("/prepared/{id}"),
        "{seen}"
    );

    // An unsampled request: the route, no traceparent.
    get(&base, "/text/8", Some(&format!("00-{T3}-{P1}-00"))).await;
    let seen = last_statement(&observer, "shop-all").await;
    let tags = tags_of(&seen);
    assert_eq!(tags.route.as_deref(), Some("/text/{id}"), "{seen}");
    assert_eq!(tags.trace_id, None, "{seen}");

    // The caller's own comment is left as written.
    get(&base, "/own/3", Some(&format!("00-{T4}-{P1}-01"))).await;
    assert_eq!(last_statement(&observer, "shop-all").await, OWN);

    // Outside any request (a background job): as written.
    let client = all.get().await.expect("client");
    client.query_one(TEXT, &[&5_i32]).await.expect("query");
    drop(client);
    assert_eq!(last_statement(&observer, "shop-all").await, TEXT);

    // Everything perfscope keeps is keyed by the caller's texts: three
    // analysed, whatever the comments were.
    assert_eq!(all.analysed_statements(), 3);
    let scrape = perfscope.encode_metrics().expect("encodes");
    assert!(
        !scrape.contains("traceparent") && !scrape.contains("application="),
        "a comment leaked into the metrics: {scrape}"
    );

    // --- sampled
    let sampled = pool(&perfscope, &cluster, "shop-sampled", SqlComments::Sampled).await;
    let base = serve(&perfscope, sampled.clone()).await;
    get(&base, "/text/7", Some(&format!("00-{T3}-{P1}-01"))).await;
    let seen = last_statement(&observer, "shop-sampled").await;
    let tags = tags_of(&seen);
    assert_eq!(tags.trace_id.as_deref(), Some(T3), "{seen}");
    assert_eq!(tags.route.as_deref(), Some("/text/{id}"), "{seen}");
    assert_eq!(tags.application.as_deref(), Some("shop-sampled"), "{seen}");
    // An unsampled request's statements keep the cached, prepared path.
    get(&base, "/text/8", Some(&format!("00-{T4}-{P1}-00"))).await;
    assert_eq!(last_statement(&observer, "shop-sampled").await, TEXT);
    get(&base, "/prepared/8", Some(&format!("00-{T4}-{P1}-00"))).await;
    assert_eq!(last_statement(&observer, "shop-sampled").await, PREPARED);

    cancel.cancel();
    tasks.join().await;
}

/// The server's prepared statements on the pool's one connection, and the
/// driver's statement cache there, asked through the pool outside any
/// request (so uncommented).
async fn caches(pool: &TimedPool) -> (i64, usize) {
    let client = pool.get().await.expect("client");
    let prepared: i64 = client
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .await
        .expect("pg_prepared_statements")
        .get(0);
    (prepared, client.raw().statement_cache.size())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_stay_flat_over_10000_tagged_requests() {
    use futures_util::StreamExt;

    let cluster = PgCluster::start();
    cluster.create_items().await;
    // Spans go nowhere (their queue drops): what is measured is the pool,
    // not a receiver decoding 20,000 spans.
    let sink = support::black_hole().await;
    let (perfscope, cancel, tasks) = traced_perfscope(format!("http://{sink}")).await;
    let observer = observer(&cluster).await;
    let all = pool(&perfscope, &cluster, "shop-flat", SqlComments::All).await;
    let base = serve(&perfscope, all.clone()).await;
    // Warm: the prepared route's statement is cached once, as without
    // comments.
    get(&base, "/prepared/1", Some(&format!("00-{T1}-{P1}-01"))).await;
    get(&base, "/text/1", Some(&format!("00-{T1}-{P1}-01"))).await;
    let before = caches(&all).await;
    let analysed = all.analysed_statements();
    assert_eq!(before.1, 1, "the prepared route's statement, cached once");

    // Each request its own trace (a distinct comment each time).
    let requests = 10_000_u32;
    futures_util::stream::iter(0..requests)
        .map(|i| {
            let base = base.clone();
            async move {
                let traceparent = format!("00-{:032x}-{P1}-01", u128::from(i) + 1);
                let path = if i % 2 == 0 { "/text/" } else { "/prepared/" };
                get(&base, &format!("{path}{}", 1 + i % 100), Some(&traceparent)).await;
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    // The last ones were commented, each with its own trace.
    let seen = last_statement(&observer, "shop-flat").await;
    assert!(tags_of(&seen).trace_id.is_some(), "{seen}");

    let after = caches(&all).await;
    assert_eq!(
        after, before,
        "server prepared statements and the driver's statement cache"
    );
    assert_eq!(all.analysed_statements(), analysed);
    cancel.cancel();
    tasks.join().await;
}

/// The same statement, plain and commented, is one pg_stat_statements
/// entry (one `queryid`), and the commented one did reach the server.
async fn queryid_ignores_the_comment(cluster: &PgCluster) {
    cluster.install().await;
    cluster.create_items().await;
    let perfscope = Perfscope::new(perfscope::Config::default());
    let all = pool(&perfscope, cluster, "shop-queryid", SqlComments::All).await;
    let observer = observer(cluster).await;
    let sql = "SELECT id, name FROM items WHERE id = $1 AND name <> $2";
    let client = all.get().await.expect("client");
    client.query_opt(sql, &[&1_i32, &"x"]).await.expect("plain");
    assert_eq!(last_statement(&observer, "shop-queryid").await, sql);
    let ((), _) = perfscope::db::context::scope_routed(
        async {
            client
                .query_opt(sql, &[&2_i32, &"y"])
                .await
                .expect("commented");
        },
        Some(Arc::from("/items/{id}")),
    )
    .await;
    let seen = last_statement(&observer, "shop-queryid").await;
    assert_eq!(
        tags_of(&seen).route.as_deref(),
        Some("/items/{id}"),
        "{seen}"
    );
    let rows = observer
        .query(
            "SELECT queryid, calls FROM pg_stat_statements WHERE query LIKE $1 || '%'",
            &[&sql],
        )
        .await
        .expect("pg_stat_statements");
    let entries: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(entries.len(), 1, "one queryid for both: {entries:?}");
    assert_eq!(entries[0].1, 2, "both calls under it: {entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queryid_ignores_the_comment_on_postgres_15() {
    let cluster = PgCluster::start_major(15).expect("PostgreSQL 15 is the tests' default");
    queryid_ignores_the_comment(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queryid_ignores_the_comment_on_postgres_18() {
    let Some(cluster) = PgCluster::start_major(18) else {
        return;
    };
    queryid_ignores_the_comment(&cluster).await;
}
