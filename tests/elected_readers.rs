//! A host app's replicas through `perfscope::Integration`, against one
//! real throwaway cluster: exactly one process runs the readers of the
//! database (it holds the reader lock); the other serves its own request
//! metrics and says in the self-check that readers run in another replica;
//! when the leader stops, or its lock's connection dies, a replica takes
//! over within a few intervals. The readers log in with the app's own
//! `DATABASE_URL`, and still the app's statements are listed and the
//! app's sessions shown: the readers' connections are told apart by their
//! texts and their `application_name`, never by the role.

mod support;

use std::time::Duration;

use perfscope::config::{Config, DatabaseUrl};
use perfscope::{Integrated, Integration, Perfscope};
use support::pg::PgCluster;
use support::until;
use tokio_util::sync::CancellationToken;

/// `perfscope_reader_leader`'s key in `pg_locks` (`classid`).
const NAMESPACE: i64 = 0x7066_7363;
const INTERVAL: Duration = Duration::from_millis(200);

/// A cluster with `items` and an `app` role that the app and its readers
/// both log in as (pg_monitor, as sql/install.sql grants the agent's).
async fn cluster() -> PgCluster {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster.create_items().await;
    cluster
        .exec(
            "postgres",
            "CREATE ROLE app LOGIN; GRANT pg_monitor TO app; GRANT SELECT ON items TO app;",
        )
        .await;
    cluster
}

/// One replica of the app, started as a host app would.
struct Replica {
    integrated: Integrated,
    cancel: CancellationToken,
}

impl Replica {
    async fn start(cluster: &PgCluster) -> Self {
        let mut config = Config::default();
        config.database.url = Some(DatabaseUrl::new(cluster.url("app", "postgres")));
        config.readers.interval = INTERVAL;
        config.readers.timeout = Duration::from_secs(2);
        // Every statement is "slow": the slow log must still hold only the
        // app's, never the readers' (they are the agent's own).
        config.database.slow_query_threshold = Duration::ZERO;
        let cancel = CancellationToken::new();
        let integrated = Integration::new(config)
            .start(&cancel)
            .await
            .expect("the integration starts");
        Self { integrated, cancel }
    }

    fn perfscope(&self) -> &Perfscope {
        &self.integrated.perfscope
    }

    /// `perfscope_reader_leader{database="default"}` is 1.
    fn leads(&self) -> bool {
        let scrape = self.perfscope().encode_metrics().expect("exposition");
        assert!(
            scrape.contains("perfscope_reader_leader{database=\"default\"}"),
            "the gauge is exposed on every replica"
        );
        scrape.contains("perfscope_reader_leader{database=\"default\"} 1")
    }

    /// Whether its statements reader has read at all.
    fn has_read(&self) -> bool {
        self.perfscope()
            .watched()
            .get("default")
            .and_then(|db| db.statements.latest())
            .is_some()
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.integrated.tasks.join().await;
    }
}

async fn superuser(cluster: &PgCluster) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connects");
    tokio::spawn(connection);
    client
}

/// The backends holding the reader lock of `postgres`.
async fn lock_holders(admin: &tokio_postgres::Client) -> Vec<i32> {
    admin
        .query(
            "SELECT l.pid FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid
               AND l.objid = (SELECT oid FROM pg_database WHERE datname = 'postgres')",
            &[&NAMESPACE],
        )
        .await
        .expect("pg_locks")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn settle(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !probe().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_reads_and_another_takes_over_when_it_stops() {
    let cluster = cluster().await;
    let admin = superuser(&cluster).await;
    let first = Replica::start(&cluster).await;
    until("the first replica leads", Duration::from_secs(20), || {
        first.leads()
    })
    .await;
    let second = Replica::start(&cluster).await;
    // `/readyz`'s database is the app's pool on DATABASE_URL, on every
    // replica.
    until(
        "the database is up on both",
        Duration::from_secs(20),
        || {
            [&first, &second]
                .iter()
                .all(|r| r.perfscope().database_health() == perfscope::DatabaseHealth::Up)
        },
    )
    .await;

    // The app's own statement, through the first replica's timed pool,
    // under the role its readers log in as.
    let client = first.integrated.pool.get().await.expect("a connection");
    for id in 1..=5 {
        client
            .query_one("SELECT name FROM items WHERE id = $1", &[&id])
            .await
            .expect("the app's query");
    }
    drop(client);
    let queryid: i64 = admin
        .query_one(
            "SELECT queryid FROM pg_stat_statements
             WHERE userid = 'app'::regrole AND query = 'SELECT name FROM items WHERE id = $1'",
            &[],
        )
        .await
        .expect("the app's statement is in pg_stat_statements")
        .get(0);
    until(
        "the app's statement in the leader's statements",
        Duration::from_secs(20),
        || {
            first
                .perfscope()
                .watched()
                .get("default")
                .and_then(|db| db.statements.latest())
                .is_some_and(|snapshot| snapshot.statements.iter().any(|s| s.queryid == queryid))
        },
    )
    .await;
    // The readers' own statements (the lock's try among them) are the
    // agent's, never listed as the app's.
    let snapshot = first
        .perfscope()
        .watched()
        .get("default")
        .and_then(|db| db.statements.latest())
        .expect("a pass");
    assert!(snapshot.own_statements > 0, "the readers' cost is counted");
    // The app's slow log: its own statement, none of the readers'.
    let slow: Vec<String> = first
        .perfscope()
        .db()
        .slow_log
        .summary()
        .iter()
        .map(|s| s.statement.normalized.to_string())
        .collect();
    assert!(
        slow.iter()
            .any(|s| s == "select name from items where id = $1"),
        "{slow:?}"
    );
    assert!(
        slow.iter()
            .all(|s| !s.contains("pg_stat") && !s.contains("pg_try_advisory_lock")),
        "the readers' statements are not the app's: {slow:?}"
    );
    let lock_try: Vec<i64> = admin
        .query(
            "SELECT queryid FROM pg_stat_statements WHERE query LIKE '%pg_try_advisory_lock%'",
            &[],
        )
        .await
        .expect("pg_stat_statements")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(!lock_try.is_empty(), "the lock was tried");
    assert!(
        snapshot
            .statements
            .iter()
            .all(|s| !lock_try.contains(&s.queryid)),
        "the lock's try is the agent's own statement"
    );
    // The app's sessions are shown, the readers' not.
    until(
        "the app's sessions in the activity",
        Duration::from_secs(20),
        || {
            first
                .perfscope()
                .watched()
                .get("default")
                .and_then(|db| db.activity.latest())
                .is_some_and(|activity| {
                    activity
                        .sessions
                        .iter()
                        .any(|s| s.application == "perfscope")
                })
        },
    )
    .await;
    let activity = first
        .perfscope()
        .watched()
        .get("default")
        .and_then(|db| db.activity.latest())
        .expect("an activity pass");
    assert!(
        activity
            .sessions
            .iter()
            .all(|s| s.application != "perfscope-readers"),
        "the readers' sessions are the agent's: {:?}",
        activity.sessions
    );

    // Several intervals later the second replica still only follows.
    tokio::time::sleep(INTERVAL * 6).await;
    assert!(first.leads() && !second.leads(), "exactly one leads");
    assert!(!second.has_read(), "the follower runs no reader");
    assert_eq!(lock_holders(&admin).await.len(), 1);
    let database = second
        .perfscope()
        .watched()
        .get("default")
        .expect("listed on every replica");
    let check = perfscope::pg::actions::self_check::run(&database)
        .await
        .expect("the follower's self-check");
    let readers = check
        .capabilities
        .iter()
        .find(|c| c.name == "reader_leader")
        .expect("a reader_leader capability");
    assert!(!readers.ok);
    assert!(
        readers.detail.contains("readers run in another replica"),
        "{}",
        readers.detail
    );
    // Without PERFSCOPE_PLANNER_USER nothing is planned, and it says why.
    let planner = check
        .capabilities
        .iter()
        .find(|c| c.name == "planner_role")
        .expect("a planner_role capability");
    assert!(!planner.ok);
    assert!(
        planner
            .fix
            .as_deref()
            .is_some_and(|fix| fix.contains("PERFSCOPE_PLANNER_USER"))
    );
    assert!(
        first
            .perfscope()
            .watched()
            .get("default")
            .is_some_and(|db| db.advisor.planner().is_none())
    );

    // The leader stops: its lock goes with its connection, and the
    // second replica takes over within a few intervals.
    let stopping = std::time::Instant::now();
    first.stop().await;
    until("the second replica leads", INTERVAL * 15, || second.leads()).await;
    eprintln!(
        "takeover after the leader stopped: {:?} (read interval {INTERVAL:?})",
        stopping.elapsed()
    );
    until("the second replica reads", Duration::from_secs(20), || {
        second.has_read()
    })
    .await;
    assert_eq!(lock_holders(&admin).await.len(), 1);
    second.stop().await;
    settle("no lock left", async || {
        lock_holders(&admin).await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leaders_lock_connection_dies_one_replica_reads_again() {
    let cluster = cluster().await;
    let admin = superuser(&cluster).await;
    let first = Replica::start(&cluster).await;
    let second = Replica::start(&cluster).await;
    until("one replica leads", Duration::from_secs(20), || {
        first.leads() ^ second.leads()
    })
    .await;
    let holders = lock_holders(&admin).await;
    assert_eq!(holders.len(), 1);
    let (leader, follower) = if first.leads() {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert!(!follower.leads());
    until("the leader reads", Duration::from_secs(20), || {
        leader.has_read()
    })
    .await;

    let terminated: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&holders[0]])
        .await
        .expect("terminate")
        .get(0);
    assert!(terminated);
    let terminating = std::time::Instant::now();
    settle("another backend holds the lock", async || {
        let now = lock_holders(&admin).await;
        now.len() == 1 && now[0] != holders[0]
    })
    .await;
    until("exactly one replica leads", INTERVAL * 15, || {
        first.leads() ^ second.leads()
    })
    .await;
    eprintln!(
        "a new lock holder after the leader's connection died: {:?} (read interval {INTERVAL:?})",
        terminating.elapsed()
    );
    let at = |replica: &Replica| {
        replica
            .perfscope()
            .watched()
            .get("default")
            .and_then(|db| db.statements.latest())
            .and_then(|s| s.at)
    };
    let new_leader = if first.leads() { &first } else { &second };
    let before = at(new_leader);
    until("the new leader reads", Duration::from_secs(20), || {
        at(new_leader) > before
    })
    .await;
    first.stop().await;
    second.stop().await;
}
