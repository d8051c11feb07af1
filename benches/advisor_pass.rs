//! The index advisor's pass time for 20 and for 200 top statements, on a
//! throwaway loopback cluster (the test harness) with hypopg: 20 tables of
//! 20,000 rows and 10 integer columns, and 200 distinct statements (one
//! `SELECT id FROM w<t> WHERE c<j> = $1` per table and column), planned
//! through the planner role. Each advisor plans every considered
//! statement's generic plan, with its hypothetical index, and the claims
//! of the whole-workload selection; the pass time is the runner's
//! `perfscope_reader_duration_seconds{reader="index_advisor"}`. Three
//! passes each (the first is the cold one: first sight of every table).
//!
//!     cargo bench --bench advisor_pass

#[path = "../tests/support/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::sync::Arc;
use std::time::Duration;

use perfscope::config::PlannerConfig;
use perfscope::db::PoolSettings;
use perfscope::metrics::pg::{PgMetrics, ReaderLabels};
use perfscope::pg::advisor::IndexAdvisor;
use perfscope::pg::planner::Planner;
use perfscope::pg::readers::statements::StatementsReader;
use perfscope::pg::{Reader, runner};

const TABLES: usize = 20;
const COLUMNS: usize = 10;
const ROWS: usize = 20_000;
/// Generous, so no pass stops planning at half of it.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

fn setup() -> String {
    let mut sql = String::new();
    for t in 0..TABLES {
        let columns: Vec<String> = (0..COLUMNS).map(|j| format!("c{j} int NOT NULL")).collect();
        let values: Vec<String> = (0..COLUMNS)
            .map(|j| format!("(g * {}) % {}", j + 7, 1_000 + j * 100))
            .collect();
        sql.push_str(&format!(
            "CREATE TABLE w{t} (id int PRIMARY KEY, {});
             INSERT INTO w{t} SELECT g, {} FROM generate_series(1, {ROWS}) g;",
            columns.join(", "),
            values.join(", ")
        ));
    }
    // The set-up's own statements must not be the top ones.
    sql.push_str(
        "ANALYZE; GRANT SELECT ON ALL TABLES IN SCHEMA public TO perfscope_planner;
         SELECT pg_stat_statements_reset();",
    );
    sql
}

async fn workload(cluster: &pg::PgCluster) {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connects");
    let task = tokio::spawn(connection);
    for t in 0..TABLES {
        for j in 0..COLUMNS {
            let sql = format!("SELECT id FROM w{t} WHERE c{j} = $1");
            for _ in 0..2 {
                client.query(&sql, &[&7i32]).await.expect("statement");
            }
        }
    }
    drop(client);
    let _ = task.await;
}

/// Three advisor passes considering `considered` statements: each pass's
/// time, and the last pass's suggestions and skips.
async fn passes(cluster: &pg::PgCluster, considered: usize) {
    let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    let url = cluster.url("perfscope", "postgres");
    let pool = perfscope
        .connect_pool(&url, PoolSettings::default())
        .await
        .expect("pool");
    let database: Arc<str> = Arc::from("bench");
    let planner = Planner::new(
        &url,
        &PlannerConfig {
            user: "perfscope_planner".into(),
            password: None,
            roles: vec!["postgres".into()],
            trusted_owners: Vec::new(),
        },
        None,
        database.clone(),
    )
    .expect("planner");
    let statements =
        Arc::new(StatementsReader::new(1_000).with_own_roles(vec!["perfscope_planner".into()]));
    let advisor = Arc::new(
        IndexAdvisor::new(
            database.clone(),
            statements.clone(),
            Some(planner),
            READ_TIMEOUT,
        )
        .considering(considered),
    );
    let readers: Vec<Arc<dyn Reader>> = vec![statements, advisor.clone()];
    let metrics = PgMetrics::default();
    let mut failures = perfscope::failure_log::FailureLogs::default();
    let mut times = Vec::new();
    for pass in 0..3u64 {
        // Multiples of every reader's cadence: the advisor runs each time.
        runner::run_once(
            &pool,
            &database,
            &readers,
            &metrics,
            READ_TIMEOUT,
            pass * 4,
            &mut failures,
        )
        .await;
        let seconds = metrics
            .reader_duration
            .get_or_create(&ReaderLabels {
                database: database.clone(),
                reader: "index_advisor",
            })
            .get();
        times.push(seconds * 1_000.0);
    }
    let advice = advisor.latest().expect("an advisor pass");
    println!(
        "{considered} statements: advisor pass {:.0} ms (cold), {:.0} ms, {:.0} ms; {} suggestions, skipped {:?}",
        times[0],
        times[1],
        times[2],
        advice.suggestions.len(),
        advice.skipped
    );
}

/// The agent's and the planner's statements that took the most time over
/// all the passes: where an advisor pass spends it.
async fn where_the_time_goes(cluster: &pg::PgCluster) {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connects");
    let task = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT r.rolname::text, s.calls, s.total_exec_time + s.total_plan_time, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 70)
             FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
             WHERE r.rolname IN ('perfscope', 'perfscope_planner')
             ORDER BY 3 DESC LIMIT 8",
            &[],
        )
        .await
        .expect("pg_stat_statements");
    for row in rows {
        let (role, calls, ms, query): (String, i64, f64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        println!("  {ms:>8.0} ms {calls:>6} calls {role}: {query}");
    }
    drop(client);
    let _ = task.await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = pg::PgCluster::start();
    runtime.block_on(async {
        cluster.install().await;
        cluster.exec("postgres", &setup()).await;
        workload(&cluster).await;
        for considered in [20, 200] {
            passes(&cluster, considered).await;
        }
        where_the_time_goes(&cluster).await;
    });
}
