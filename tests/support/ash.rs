//! A host agent watching a real throwaway cluster as `default`, and its
//! active session history filled directly: the ring the handle keeps
//! (`Perfscope::ash`) is the real data structure the sampler fills once a
//! second, pushed the same samples the sampler would (not a mock), so the
//! answers, the metrics and the page can be checked against known shares
//! before the sampler itself runs in the agent.

use std::sync::Arc;

use perfscope::Perfscope;
use perfscope::pg::ash::{Observation, StatementRef, WaitClass};

use super::pg::PgCluster;
use super::{ADMIN_TOKEN, HostApp, METRICS_TOKEN, temp_dir};

/// The trace id the `/pay` statements carry in their `traceparent`.
pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The agent (served on a socket) watching `cluster` as `default`, with
/// `trace_url` as `PERFSCOPE_TRACE_URL` when given.
pub async fn agent(cluster: &PgCluster, trace_url: Option<&str>) -> (Perfscope, HostApp) {
    let config = perfscope::config::RawConfig {
        listen: Some("127.0.0.1:0".into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        metrics_token: Some(METRICS_TOKEN.into()),
        database_url: Some(cluster.url("perfscope", "postgres")),
        data_dir: Some(temp_dir("ash-history").display().to_string()),
        trace_url: trace_url.map(str::to_owned),
        // The ring is filled with known samples alone: the sampler, which
        // would add the cluster's own, is off (tests/ash.rs runs it).
        ash_interval: Some("0".into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = Perfscope::new(config);
    let app = HostApp::start(&perfscope, poem::Route::new()).await;
    super::until(
        "the database is watched",
        std::time::Duration::from_secs(10),
        || perfscope.watched().get("default").is_some(),
    )
    .await;
    (perfscope, app)
}

fn session(class: WaitClass, event: Option<&str>, text: &str, route: Option<&str>) -> Observation {
    Observation {
        database: Arc::from("default"),
        class,
        event: event.map(Arc::from),
        statement: Arc::new(StatementRef::of_text(text, None)),
        role: Arc::from("shop"),
        application: Arc::from("checkout"),
        route: route.map(Arc::from),
        trace_id: None,
        blocked_by: None,
    }
}

/// 301 samples of `default`, one a second up to `until`: in each, two
/// sessions on CPU running the `/orders` statement and one waiting on a
/// row lock (`Lock:transactionid`) in the `/pay` statement, which carries
/// [`TRACE_ID`] and is blocked by a `DELETE`. So AAS 3: CPU 2/3 and Lock
/// 1/3; `/orders` 2/3 and `/pay` 1/3. `extra_route` adds a CPU session
/// every 10th sample under that route (e.g. one with control characters).
pub fn fill(perfscope: &Perfscope, until: u64, extra_route: Option<&str>) {
    let databases = [Arc::<str>::from("default")];
    for at in until - 300..=until {
        let orders = "SELECT * FROM orders WHERE id = 42";
        let mut paying = session(
            WaitClass::Lock,
            Some("transactionid"),
            "UPDATE accounts SET balance = balance - 10 WHERE id = 7",
            Some("/pay"),
        );
        paying.trace_id = Some(Arc::from(TRACE_ID));
        paying.blocked_by = Some(Arc::new(StatementRef::of_text(
            "DELETE FROM accounts WHERE id = 7",
            None,
        )));
        let mut sessions = vec![
            session(WaitClass::Cpu, None, orders, Some("/orders")),
            session(WaitClass::Cpu, None, orders, Some("/orders")),
            paying,
        ];
        if let Some(route) = extra_route.filter(|_| at % 10 == 0) {
            sessions.push(session(
                WaitClass::Io,
                Some("DataFileRead"),
                "SELECT 1",
                Some(route),
            ));
        }
        perfscope.ash().push(at, &databases, sessions, 0);
    }
}

/// Now, Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
}
