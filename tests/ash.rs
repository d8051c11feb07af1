//! The active session history on a real cluster: a driven workload of lock
//! waits, CPU-bound statements and sleeps yields the AAS it was driven
//! with; statements that carry sqlcommenter comments (as a Node or Python
//! library writes them) are attributed to their routes and traces; one
//! kept connection samples 100 databases of a server inside the
//! connection budget and the ring's bytes; the kept connection is given
//! back when the server runs short of free slots, and comes back after.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::db::PoolSettings;
use perfscope::pg::ash::{By, DbTime, SamplerState};
use support::pg::PgCluster;
use tokio_util::sync::CancellationToken;

/// The trace id the tagged statements carry.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The tolerance of each wait class's AAS against what was driven.
const TOLERANCE: f64 = 0.30;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn handle(memory: usize) -> Perfscope {
    handle_sampling_every("1000", memory)
}

fn handle_sampling_every(interval: &str, memory: usize) -> Perfscope {
    let config = RawConfig {
        ash_interval: Some(interval.into()),
        ash_memory: Some(memory.to_string()),
        // The readers stay out of the way: ASH is under test.
        read_interval: Some("60000".into()),
        ..Default::default()
    }
    .validate()
    .expect("valid config");
    Perfscope::new(config)
}

/// Watches `database` of `cluster` as the least-privilege `perfscope`
/// role, under `label`, on a budgeted pool as the agent does.
async fn watch(
    perfscope: &Perfscope,
    cluster: &PgCluster,
    database: &str,
    label: &str,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let pool = perfscope
        .connect_pool(
            &cluster.url("perfscope", database),
            PoolSettings {
                name: label.into(),
                min: 0,
                max: 2,
                wait_timeout: Duration::from_secs(5),
                budget: Some(perfscope.connection_budget().clone()),
                ..Default::default()
            },
        )
        .await
        .expect("pool");
    perfscope.watch_database(label, pool, cancel.clone())
}

/// A plain connection (no perfscope) as the superuser with this
/// `application_name`.
async fn session(cluster: &PgCluster, database: &str, application: &str) -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config =
        cluster.url("postgres", database).parse().expect("url");
    config.application_name(application);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    client
}

fn class_aas(answer: &DbTime, class: &str) -> f64 {
    answer
        .top
        .iter()
        .chain(answer.other.iter())
        .filter(|row| row.key == class || row.key.starts_with(&format!("{class}:")))
        .map(|row| row.aas)
        .sum()
}

fn assert_near(what: &str, got: f64, driven: f64) {
    assert!(
        (got - driven).abs() <= driven * TOLERANCE,
        "{what}: AAS {got:.2}, driven {driven} (±{:.0} %)",
        TOLERANCE * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aas_breakdown_matches_the_driven_workload_and_tags_name_routes() {
    const LOCK_WAITERS: usize = 3;
    const ON_CPU: usize = 2;
    const SLEEPERS: usize = 2;
    const DRIVEN: u64 = 14;
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster
        .exec(
            "postgres",
            "CREATE TABLE hot (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO hot VALUES (1, 0);",
        )
        .await;
    let perfscope = handle(4 << 20);
    let cancel = CancellationToken::new();
    let watcher = watch(&perfscope, &cluster, "postgres", "default", &cancel).await;

    // One session holds the row lock, idle in its transaction (not active:
    // not counted); the waiters queue behind it.
    let holder = session(&cluster, "postgres", "holder").await;
    holder
        .batch_execute("BEGIN; UPDATE hot SET v = v WHERE id = 1")
        .await
        .expect("holds the row");
    let mut work = Vec::new();
    for _ in 0..LOCK_WAITERS {
        let client = session(&cluster, "postgres", "locker").await;
        work.push(tokio::spawn(async move {
            let _ = client
                .execute("UPDATE hot SET v = v + 1 WHERE id = 1", &[])
                .await;
        }));
    }
    let busy = format!(
        "DO $$ DECLARE i bigint := 0; BEGIN
           WHILE clock_timestamp() < now() + interval '{DRIVEN} seconds' LOOP i := i + 1; END LOOP;
         END $$"
    );
    for _ in 0..ON_CPU {
        let client = session(&cluster, "postgres", "cruncher").await;
        let busy = busy.clone();
        work.push(tokio::spawn(async move {
            client.batch_execute(&busy).await.expect("busy loop");
        }));
    }
    // What a Node or Python sqlcommenter library appends: URL-encoded
    // values, the W3C traceparent of the request's span.
    let tagged = format!(
        "SELECT pg_sleep($1) /*route='%2Fapi%2Forders',traceparent='00-{TRACE_ID}-00f067aa0ba902b7-01'*/"
    );
    for _ in 0..SLEEPERS {
        let client = session(&cluster, "postgres", "orders-api").await;
        let tagged = tagged.clone();
        work.push(tokio::spawn(async move {
            client
                .query(tagged.as_str(), &[&(DRIVEN as f64)])
                .await
                .expect("sleeps");
        }));
    }
    // The window: whole seconds well inside the driven time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let since = now();
    tokio::time::sleep(Duration::from_secs(DRIVEN - 4)).await;
    let until = now();
    holder.batch_execute("ROLLBACK").await.expect("lets go");
    for task in work {
        task.await.expect("workload");
    }

    let ring = perfscope.ash();
    let waits = ring.db_time(Some("default"), since, until, By::Wait, 20);
    eprintln!("by wait over {}..{}: {waits:#?}", since, until);
    assert!(
        waits.samples >= (until - since) * 8 / 10,
        "{} samples over {} s",
        waits.samples,
        until - since
    );
    assert_near("Lock", class_aas(&waits, "Lock"), LOCK_WAITERS as f64);
    assert_near("CPU", class_aas(&waits, "CPU"), ON_CPU as f64);
    assert_near("Timeout", class_aas(&waits, "Timeout"), SLEEPERS as f64);
    assert_near("all", waits.aas, (LOCK_WAITERS + ON_CPU + SLEEPERS) as f64);
    // The lock waiters' row names their blocker's statement.
    let lock_row = waits
        .top
        .iter()
        .find(|row| row.key.starts_with("Lock:"))
        .expect("a lock row");
    assert!(
        lock_row.blocked_by.iter().any(|s| s.contains("update hot")),
        "{lock_row:?}"
    );

    let statements = ring.db_time(Some("default"), since, until, By::Statement, 10);
    let keys: Vec<&str> = statements.top.iter().map(|r| r.key.as_str()).collect();
    assert!(
        keys.iter().any(|k| k.contains("update hot set v = v +")),
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k.contains("pg_sleep")), "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.contains("traceparent")),
        "statements are shown without their comment: {keys:?}"
    );
    let applications = ring.db_time(Some("default"), since, until, By::Application, 10);
    for (name, driven) in [
        ("locker", LOCK_WAITERS),
        ("cruncher", ON_CPU),
        ("orders-api", SLEEPERS),
    ] {
        let row = applications
            .top
            .iter()
            .find(|r| r.key == name)
            .unwrap_or_else(|| panic!("no row for {name}: {applications:#?}"));
        assert_near(name, row.aas, driven as f64);
    }
    assert!(
        applications.top.iter().all(|r| r.key != "holder"),
        "an idle-in-transaction session spends no database time"
    );

    let routes = ring.db_time(Some("default"), since, until, By::Route, 10);
    let orders = routes
        .top
        .iter()
        .find(|r| r.key == "/api/orders")
        .unwrap_or_else(|| panic!("no /api/orders row: {routes:#?}"));
    assert_near("/api/orders", orders.aas, SLEEPERS as f64);
    assert_eq!(orders.waits[0].class, "Timeout");
    assert_eq!(orders.trace_ids, [TRACE_ID]);
    assert_eq!(routes.cut_comments, 0);

    // The self-check says what ASH sees with sql/install.sql's grants.
    let watched = perfscope.watched().get("default").expect("watched");
    let check = perfscope::pg::actions::self_check::run(&watched)
        .await
        .expect("self-check");
    for name in [
        "ash_other_roles",
        "track_activity_query_size",
        "compute_query_id",
        "ash_sampling",
    ] {
        let line = check
            .capabilities
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} line"));
        assert!(line.ok, "{line:?}");
    }

    cancel.cancel();
    watcher.await.expect("readers stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_kept_connection_samples_100_databases_inside_the_budget_and_memory() {
    const DATABASES: usize = 100;
    const MEMORY: usize = 256 << 10;
    let cluster = PgCluster::start_with("max_connections = 200");
    let install = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/install.sql"))
        .expect("sql/install.sql");
    cluster.exec("template1", &install).await;
    let admin = session(&cluster, "postgres", "setup").await;
    for i in 0..DATABASES {
        admin
            .batch_execute(&format!("CREATE DATABASE db{i:03} STRATEGY = FILE_COPY"))
            .await
            .expect("create database");
    }
    let perfscope = handle(MEMORY);
    let cancel = CancellationToken::new();
    let mut watchers = Vec::new();
    for i in 0..DATABASES {
        let name = format!("db{i:03}");
        watchers.push(watch(&perfscope, &cluster, &name, &name, &cancel).await);
    }
    // A session sleeping in every database.
    let mut sleepers = Vec::new();
    for i in 0..DATABASES {
        let client = session(&cluster, &format!("db{i:03}"), "app").await;
        sleepers.push(tokio::spawn(async move {
            let _ = client.query("SELECT pg_sleep(12)", &[]).await;
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let since = now();
    let budget = perfscope.connection_budget().max() as i64;
    let mut sampler_pids = std::collections::HashSet::new();
    for _ in 0..8 {
        let row = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE usename = 'perfscope'),
                        array_agg(pid) FILTER (WHERE query LIKE '-- One sample of the active session history%')
                 FROM pg_stat_activity WHERE backend_type = 'client backend'",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        let agent: i64 = row.get(0);
        assert!(
            agent <= budget,
            "{agent} agent connections, budget {budget}"
        );
        let pids: Option<Vec<i32>> = row.get(1);
        sampler_pids.extend(pids.unwrap_or_default());
        let bytes = perfscope.ash().stats().bytes;
        assert!(bytes <= MEMORY, "the ring holds {bytes} bytes");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let until = now();
    assert_eq!(
        sampler_pids.len(),
        1,
        "one kept connection samples the server: {sampler_pids:?}"
    );
    let statuses = perfscope.ash_samplers().statuses();
    assert_eq!(statuses.len(), 1, "one sampler per server: {statuses:?}");
    let status = &statuses[0].1;
    assert_eq!(status.state(), SamplerState::Sampling);
    assert!(status.sessions.load(Ordering::Relaxed) >= 100 * 5);
    for i in 0..DATABASES {
        let name = format!("db{i:03}");
        let answer = perfscope
            .ash()
            .db_time(Some(&name), since, until, By::Wait, 5);
        assert!(
            (answer.aas - 1.0).abs() <= TOLERANCE,
            "{name}: AAS {} of one sleeping session",
            answer.aas
        );
    }
    // The metrics, read in one pass over the ring: every database's
    // classes; the server's sampler counted once, under its first
    // database's name.
    let scrape = perfscope.encode_metrics().expect("metrics");
    let samples: Vec<&str> = scrape
        .lines()
        .filter(|l| l.starts_with("perfscope_ash_samples_total{"))
        .collect();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert!(samples[0].starts_with("perfscope_ash_samples_total{database=\"db000\"}"));
    let taken: f64 = samples[0]
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a value");
    assert!(taken >= 5.0, "{}", samples[0]);
    let sleeping = scrape
        .lines()
        .find(|l| {
            l.starts_with("pg_ash_active_sessions{database=\"db099\",wait_event_type=\"Timeout\"}")
        })
        .expect("db099's Timeout series");
    let aas: f64 = sleeping
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a value");
    // Over the scrape's last minute, which may start before the sleepers
    // did: some of it.
    assert!(aas > 0.0 && aas <= 1.0 + TOLERANCE, "{sleeping}");
    cancel.cancel();
    for sleeper in sleepers {
        let _ = sleeper.await;
    }
    for watcher in watchers {
        watcher.await.expect("readers stop");
    }
    assert!(perfscope.ash().stats().bytes <= MEMORY);
}

/// The pids of the sampler's connection.
async fn sampler_connections(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE query LIKE '-- One sample of the active session history%'",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kept_connection_is_given_back_under_the_headroom_and_comes_back() {
    // 30 slots less 3 reserved: 27 for ordinary roles; the headroom is 10.
    let cluster = PgCluster::start_with("max_connections = 30");
    cluster.install().await;
    let perfscope = handle(1 << 20);
    let cancel = CancellationToken::new();
    let watcher = watch(&perfscope, &cluster, "postgres", "default", &cancel).await;
    let admin = session(&cluster, "postgres", "admin").await;
    let status = perfscope.ash_samplers().statuses()[0].1.clone();
    support::until("the first samples", Duration::from_secs(30), || {
        status.samples.load(Ordering::Relaxed) >= 2
    })
    .await;
    assert_eq!(sampler_connections(&admin).await, 1);

    // The application takes the server down to fewer free slots than the
    // headroom: the sampler gives its connection back.
    let mut crowd = Vec::new();
    for _ in 0..16 {
        crowd.push(session(&cluster, "postgres", "crowd").await);
    }
    support::until(
        "the kept connection given back",
        Duration::from_secs(30),
        || status.released.load(Ordering::Relaxed) >= 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sampler_connections(&admin).await, 0, "no kept connection");
    assert!(
        matches!(status.state(), SamplerState::Waiting(ref why) if why.contains("HEADROOM")),
        "{:?}",
        status.state()
    );
    let before = status.samples.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        status.samples.load(Ordering::Relaxed),
        before,
        "no sample while the server is short of slots"
    );

    // The crowd leaves: sampling comes back after the budget's backoff.
    drop(crowd);
    support::until("sampling again", Duration::from_secs(90), || {
        status.samples.load(Ordering::Relaxed) > before && status.state() == SamplerState::Sampling
    })
    .await;
    assert_eq!(sampler_connections(&admin).await, 1);
    cancel.cancel();
    watcher.await.expect("readers stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_of_zero_samples_nothing_and_keeps_no_connection() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let perfscope = handle_sampling_every("0", 1 << 20);
    let cancel = CancellationToken::new();
    let watcher = watch(&perfscope, &cluster, "postgres", "default", &cancel).await;
    let admin = session(&cluster, "postgres", "admin").await;
    let sleeper = session(&cluster, "postgres", "app").await;
    let sleeping = tokio::spawn(async move {
        let _ = sleeper.query("SELECT pg_sleep(3)", &[]).await;
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sampler_connections(&admin).await, 0);
    assert!(perfscope.ash_samplers().statuses().is_empty());
    assert_eq!(perfscope.ash().stats().seconds, 0, "nothing sampled");
    let watched = perfscope.watched().get("default").expect("watched");
    assert_eq!(watched.ash.state(), SamplerState::Off);
    sleeping.await.expect("sleeps");
    cancel.cancel();
    watcher.await.expect("readers stop");
}
