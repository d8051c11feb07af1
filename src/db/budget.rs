//! [`ConnectionBudget`]: the most connections the agent opens across every
//! database it watches, and the rule that it never takes a server's last
//! free slots.
//!
//! Watching many databases on one server used to take two connections per
//! database, so 100 databases on a default server (`max_connections =
//! 100`) left the application "sorry, too many clients already". Now every
//! connection the agent opens (its readers, the API's fresh reads, explain,
//! cancel, maintenance) holds one permit of a semaphore of
//! `PERFSCOPE_MAX_DB_CONNECTIONS`; the reader pools close each connection
//! when it is released, so between passes the agent holds nothing, and the
//! databases take turns for the permits (tokio's semaphore is fair).
//!
//! Per server (host and port), the budget also remembers what the last
//! connection it opened read there: `max_connections` less the reserved
//! slots (`superuser_reserved_connections`, and `reserved_connections` on
//! 16+) less the client backends in use. A connection is opened only when
//! that reading, less what the agent opened since, leaves at least
//! `PERFSCOPE_DB_CONNECTION_HEADROOM` slots free afterwards; a connection
//! that finds fewer once open is closed at once. Either way, and on SQLSTATE
//! 53300 (too many connections), the server's connections back off with a
//! jittered delay that doubles per failure up to [`BACKOFF_MAX`], instead
//! of being retried every pass. The host app's own pools are not budgeted:
//! perfscope never throttles the application's traffic.
//!
//! A few connections are kept rather than opened per pass: the active
//! session history samples each server once a second, and opening a
//! connection per sample would cost more than the sample. They take their
//! permit from the same semaphore, so the total stays within the budget,
//! but only after a permit of the kept lane
//! ([`ConnectionBudget::acquire_kept_within`]), which holds at most half
//! of the budget: the readers and the planner still get turns however
//! many servers are sampled.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::budget::{BudgetLabels, BudgetMetrics};

/// The first backoff after a refusal; it doubles per failure in a row.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long a server's reading of free slots is trusted.
pub const READING_TTL: Duration = Duration::from_secs(60);
/// How long a permit stays taken after its connection closed: the
/// backend needs a moment to exit, and until it has, the server still
/// counts it.
pub const CLOSE_LINGER: Duration = Duration::from_millis(100);

/// Reads, on a connection just opened, what the budget needs from the
/// server, and sets `client_connection_check_interval` (PostgreSQL 14+,
/// settable by any user) so a backend whose client went away (a read the
/// agent gave up on) stops within a second instead of running on.
pub const SESSION_SETUP: &str = "SELECT /* perfscope */ pg_backend_pid(), \
     current_setting('max_connections')::int, \
     current_setting('superuser_reserved_connections')::int, \
     coalesce(current_setting('reserved_connections', true)::int, 0), \
     (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend'), \
     CASE WHEN current_setting('server_version_num')::int >= 140000 \
          THEN set_config('client_connection_check_interval', '1000', false) END";

/// Why the budget held a connection back.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// Every permit stayed taken for the wait timeout.
    #[error(
        "all {0} of the agent's database connections (PERFSCOPE_MAX_DB_CONNECTIONS) stayed busy"
    )]
    Exhausted(u32),
    /// Every permit of the kept lane is held (half of the budget).
    #[error(
        "the {0} connection(s) that may be kept open (half of PERFSCOPE_MAX_DB_CONNECTIONS) are all kept"
    )]
    KeptFull(usize),
    /// The server is backing off after a refusal or a shortage of slots.
    #[error("backing off from {server} for {remaining:?}: {reason}")]
    BackingOff {
        /// `host:port`.
        server: String,
        /// Until the next attempt.
        remaining: Duration,
        /// What started it.
        reason: String,
    },
}

/// What a connection's server reported right after it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerReading {
    /// `max_connections`.
    pub max_connections: i32,
    /// `superuser_reserved_connections` plus `reserved_connections` (16+).
    pub reserved: i32,
    /// Client backends, the new connection included.
    pub in_use: i32,
}

impl ServerReading {
    /// Runs [`SESSION_SETUP`] on a connection just opened: its backend's
    /// pid and what the server reports.
    pub async fn read(
        client: &tokio_postgres::Client,
    ) -> Result<(i32, Self), tokio_postgres::Error> {
        let row = client.query_one(SESSION_SETUP, &[]).await?;
        let reading = Self {
            max_connections: row.try_get(1)?,
            reserved: row.try_get::<_, i32>(2)? + row.try_get::<_, i32>(3)?,
            in_use: row.try_get(4)?,
        };
        Ok((row.try_get(0)?, reading))
    }

    /// Slots an ordinary role can still take.
    pub fn free(self) -> i64 {
        i64::from(self.max_connections) - i64::from(self.reserved) - i64::from(self.in_use)
    }
}

#[derive(Debug, Default)]
struct ServerState {
    /// The last reading: free slots, when, and connections opened since.
    reading: Option<(i64, Instant, i64)>,
    backoff_until: Option<Instant>,
    backoff_reason: String,
    failures: u32,
}

/// A budget permit; the connection it stands for closes before it drops.
#[derive(Debug)]
pub struct BudgetPermit {
    permit: Option<OwnedSemaphorePermit>,
    /// The kept lane's permit, for a kept connection.
    lane: Option<OwnedSemaphorePermit>,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for BudgetPermit {
    fn drop(&mut self) {
        self.gauge.dec();
        // Given back once the closed connection's backend has had
        // CLOSE_LINGER to exit (at once outside a runtime).
        if let (Some(permit), Ok(runtime)) =
            (self.permit.take(), tokio::runtime::Handle::try_current())
        {
            let lane = self.lane.take();
            runtime.spawn(async move {
                tokio::time::sleep(CLOSE_LINGER).await;
                drop(permit);
                drop(lane);
            });
        }
    }
}

/// The agent's connection budget; shared by every pool and connection the
/// agent opens.
#[derive(Debug)]
pub struct ConnectionBudget {
    permits: Arc<Semaphore>,
    /// The planner's lane (see [`ConnectionBudget::with_planner_lane`]).
    planner: Option<Arc<Semaphore>>,
    /// The kept connections' lane: at most half of the budget (see
    /// [`ConnectionBudget::acquire_kept_within`]).
    kept: Arc<Semaphore>,
    max: u32,
    headroom: u32,
    wait: Duration,
    servers: Mutex<HashMap<String, ServerState>>,
    metrics: BudgetMetrics,
}

impl ConnectionBudget {
    /// A budget of `max` connections that leaves `headroom` slots free on
    /// every server; a connection waits at most `wait` for a permit.
    pub fn new(max: u32, headroom: u32, wait: Duration, metrics: BudgetMetrics) -> Self {
        let max = max.max(1);
        metrics.budget.set(i64::from(max));
        Self {
            permits: Arc::new(Semaphore::new(max as usize)),
            planner: None,
            kept: Arc::new(Semaphore::new(kept_share(max))),
            max,
            headroom,
            wait,
            servers: Mutex::default(),
            metrics,
        }
    }

    /// Keeps one of the permits for planner connections (when there are at
    /// least two). A planner connection is opened while its advisor's pass
    /// already holds a reader permit; in the one first-come-first-served
    /// queue it would wait behind every other database's pass, time out,
    /// and a crowded agent would never plan. With a lane of its own the
    /// databases take turns at planning instead, and the total stays
    /// within the budget.
    pub fn with_planner_lane(mut self) -> Self {
        if self.max >= 2 {
            self.permits = Arc::new(Semaphore::new(self.max as usize - 1));
            self.planner = Some(Arc::new(Semaphore::new(1)));
        }
        self
    }

    /// Connections that may be kept open between uses at once (half of
    /// the budget, rounded down: none with a budget of one).
    pub fn kept_max(&self) -> usize {
        kept_share(self.max)
    }

    /// A permit for a connection kept open between uses (the active
    /// session history's, one per server): one of the kept lane's, which
    /// is tried without waiting (a full lane is an answer, not a queue),
    /// then one of the budget's, waiting at most `wait`. Both are held
    /// for the connection's life.
    pub async fn acquire_kept_within(
        &self,
        server: &str,
        database: &str,
        wait: Duration,
    ) -> Result<BudgetPermit, BudgetError> {
        let lane = self
            .kept
            .clone()
            .try_acquire_owned()
            .map_err(|_| BudgetError::KeptFull(self.kept_max()))?;
        let mut permit = self
            .acquire_from(&self.permits, server, database, wait)
            .await?;
        permit.lane = Some(lane);
        Ok(permit)
    }

    /// `PERFSCOPE_MAX_DB_CONNECTIONS`.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// `PERFSCOPE_DB_CONNECTION_HEADROOM`.
    pub fn headroom(&self) -> u32 {
        self.headroom
    }

    /// The families.
    pub fn metrics(&self) -> &BudgetMetrics {
        &self.metrics
    }

    /// Connections the agent holds open to `database` now (its reader
    /// pool's, its planner's, and its API reads').
    pub fn connections(&self, database: &str) -> u64 {
        u64::try_from(
            self.metrics
                .connections
                .get_or_create(&Self::labels(database))
                .get(),
        )
        .unwrap_or(0)
    }

    fn labels(database: &str) -> BudgetLabels {
        BudgetLabels {
            database: Arc::from(database),
        }
    }

    fn held_back(&self, database: &str) {
        self.metrics
            .backoff
            .get_or_create(&Self::labels(database))
            .inc();
    }

    /// A permit to open one connection to `server` for `database`, or why
    /// not (backing off, too few free slots, every permit busy).
    pub async fn acquire(&self, server: &str, database: &str) -> Result<BudgetPermit, BudgetError> {
        self.acquire_within(server, database, self.wait).await
    }

    /// [`ConnectionBudget::acquire`], waiting at most `wait` for a permit
    /// (a reader pool waits up to its interval: databases take turns).
    pub async fn acquire_within(
        &self,
        server: &str,
        database: &str,
        wait: Duration,
    ) -> Result<BudgetPermit, BudgetError> {
        self.acquire_from(&self.permits, server, database, wait)
            .await
    }

    /// A permit for a planner connection: from the planner's lane when
    /// there is one, else as any other connection.
    pub async fn acquire_planner_within(
        &self,
        server: &str,
        database: &str,
        wait: Duration,
    ) -> Result<BudgetPermit, BudgetError> {
        let lane = self.planner.as_ref().unwrap_or(&self.permits);
        self.acquire_from(lane, server, database, wait).await
    }

    async fn acquire_from(
        &self,
        semaphore: &Arc<Semaphore>,
        server: &str,
        database: &str,
        wait: Duration,
    ) -> Result<BudgetPermit, BudgetError> {
        self.check_server(server, database, false)?;
        let permit = tokio::time::timeout(wait, semaphore.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(BudgetError::Exhausted(self.max))?;
        // Checked again: the server may have been found crowded meanwhile.
        self.check_server(server, database, true)?;
        let gauge = self
            .metrics
            .connections
            .get_or_create(&Self::labels(database))
            .clone();
        gauge.inc();
        Ok(BudgetPermit {
            permit: Some(permit),
            lane: None,
            gauge,
        })
    }

    /// Fails while `server` backs off or, when `opening`, if the last
    /// reading leaves fewer than the headroom free after one more
    /// connection (then it backs off); counts the opening otherwise.
    fn check_server(&self, server: &str, database: &str, opening: bool) -> Result<(), BudgetError> {
        let now = Instant::now();
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let state = servers.entry(server.to_owned()).or_default();
        if let Some(until) = state.backoff_until {
            if until > now {
                drop(servers);
                self.held_back(database);
                return Err(self.backing_off(server, until - now));
            }
            state.backoff_until = None;
        }
        if !opening {
            return Ok(());
        }
        if let Some((free, at, opened)) = &mut state.reading
            && now.duration_since(*at) < READING_TTL
        {
            if *free - *opened - 1 < i64::from(self.headroom) {
                let reason = format!(
                    "{} free slot(s) left, fewer than PERFSCOPE_DB_CONNECTION_HEADROOM + 1 ({})",
                    *free - *opened,
                    self.headroom + 1
                );
                let until = back_off(state, reason, now);
                drop(servers);
                self.held_back(database);
                return Err(self.backing_off(server, until - now));
            }
            *opened += 1;
        }
        Ok(())
    }

    fn backing_off(&self, server: &str, remaining: Duration) -> BudgetError {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        BudgetError::BackingOff {
            server: server.to_owned(),
            remaining,
            reason: servers
                .get(server)
                .map(|s| s.backoff_reason.clone())
                .unwrap_or_default(),
        }
    }

    /// Records what a connection just opened to `server` read there; fails
    /// (and backs off) when fewer than the headroom slots are left, so the
    /// caller closes that connection at once.
    pub fn observe(
        &self,
        server: &str,
        database: &str,
        reading: ServerReading,
    ) -> Result<(), BudgetError> {
        let now = Instant::now();
        let free = reading.free();
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let state = servers.entry(server.to_owned()).or_default();
        state.reading = Some((free, now, 0));
        if free < i64::from(self.headroom) {
            let reason = format!(
                "{free} free slot(s) of max_connections {} (reserved {}), fewer than PERFSCOPE_DB_CONNECTION_HEADROOM ({})",
                reading.max_connections, reading.reserved, self.headroom
            );
            let until = back_off(state, reason, now);
            drop(servers);
            self.held_back(database);
            return Err(self.backing_off(server, until - now));
        }
        state.failures = 0;
        Ok(())
    }

    /// Records that `server` refused a connection with SQLSTATE 53300.
    pub fn refused(&self, server: &str, database: &str) {
        let now = Instant::now();
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let state = servers.entry(server.to_owned()).or_default();
        state.reading = None;
        back_off(
            state,
            "the server refused a connection: too many clients (53300)".into(),
            now,
        );
        drop(servers);
        self.held_back(database);
    }
}

/// The kept lane's size: half of `max`, rounded down.
fn kept_share(max: u32) -> usize {
    (max / 2) as usize
}

/// Starts (or lengthens) `state`'s backoff: [`BACKOFF_BASE`] doubled per
/// failure in a row, capped at [`BACKOFF_MAX`], times a random factor in
/// [0.5, 1) so many watchers of one server do not retry in step.
fn back_off(state: &mut ServerState, reason: String, now: Instant) -> Instant {
    let exponent = state.failures.min(16);
    state.failures = state.failures.saturating_add(1);
    let delay = BACKOFF_BASE
        .saturating_mul(1 << exponent)
        .min(BACKOFF_MAX)
        .mul_f64(0.5 + jitter() / 2.0);
    tracing::debug!(%reason, ?delay, "database connections backing off");
    state.backoff_reason = reason;
    // A reading taken before the shortage is no guide after it.
    state.reading = None;
    let until = now + delay;
    state.backoff_until = Some(until);
    until
}

/// A number in [0, 1) from the standard library's per-process random hash
/// keys (no random-number crate for one jitter).
fn jitter() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `host:port` of a connection's first host: the key of a server's
/// readings and backoff.
pub fn server_key(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max: u32, headroom: u32) -> ConnectionBudget {
        ConnectionBudget::new(
            max,
            headroom,
            Duration::from_millis(50),
            BudgetMetrics::default(),
        )
    }

    #[tokio::test]
    async fn permits_are_bounded_and_given_back() {
        let budget = budget(2, 0);
        let a = budget.acquire("s:1", "a").await.expect("first");
        let _b = budget.acquire("s:1", "b").await.expect("second");
        assert!(matches!(
            budget.acquire("s:1", "c").await,
            Err(BudgetError::Exhausted(2))
        ));
        drop(a);
        tokio::time::sleep(CLOSE_LINGER).await;
        budget.acquire("s:1", "c").await.expect("after a release");
    }

    #[tokio::test]
    async fn the_planner_lane_is_one_of_the_permits() {
        let lanes = budget(3, 0).with_planner_lane();
        let _a = lanes.acquire("s:1", "a").await.expect("first reader");
        let _b = lanes.acquire("s:1", "b").await.expect("second reader");
        // Readers have the other two…
        assert!(matches!(
            lanes.acquire("s:1", "c").await,
            Err(BudgetError::Exhausted(3))
        ));
        // …and the planner still gets its turn, once at a time.
        let planner = lanes
            .acquire_planner_within("s:1", "a", Duration::from_millis(50))
            .await
            .expect("the planner's lane");
        assert!(
            lanes
                .acquire_planner_within("s:1", "b", Duration::from_millis(50))
                .await
                .is_err()
        );
        drop(planner);
        tokio::time::sleep(CLOSE_LINGER).await;
        lanes
            .acquire_planner_within("s:1", "b", Duration::from_millis(50))
            .await
            .expect("the next planner");
        // One permit has no lane to spare.
        let single = budget(1, 0).with_planner_lane();
        let _only = single.acquire("s:1", "a").await.expect("the one permit");
        assert!(
            single
                .acquire_planner_within("s:1", "a", Duration::from_millis(50))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn kept_connections_hold_at_most_half_of_the_budget() {
        let budget = budget(4, 0).with_planner_lane();
        let a = budget
            .acquire_kept_within("s:1", "a", Duration::from_millis(50))
            .await
            .expect("first kept");
        let _b = budget
            .acquire_kept_within("t:1", "b", Duration::from_millis(50))
            .await
            .expect("second kept");
        assert!(matches!(
            budget
                .acquire_kept_within("u:1", "c", Duration::from_millis(50))
                .await,
            Err(BudgetError::KeptFull(2))
        ));
        // The readers still get the third permit, the planner its lane.
        let _reader = budget.acquire("s:1", "a").await.expect("a reader's turn");
        let _planner = budget
            .acquire_planner_within("s:1", "a", Duration::from_millis(50))
            .await
            .expect("the planner's turn");
        drop(a);
        tokio::time::sleep(CLOSE_LINGER * 2).await;
        budget
            .acquire_kept_within("u:1", "c", Duration::from_millis(50))
            .await
            .expect("kept again once one is given back");
        // A budget of one keeps nothing.
        assert!(matches!(
            budget_of_one()
                .acquire_kept_within("s:1", "a", Duration::from_millis(50))
                .await,
            Err(BudgetError::KeptFull(0))
        ));
    }

    fn budget_of_one() -> ConnectionBudget {
        budget(1, 0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_crowded_server_backs_off_with_growing_delays() {
        let budget = budget(4, 10);
        let crowded = ServerReading {
            max_connections: 100,
            reserved: 3,
            in_use: 90,
        };
        let permit = budget.acquire("s:1", "a").await.expect("unknown server");
        assert!(budget.observe("s:1", "a", crowded).is_err());
        drop(permit);
        let first = match budget.acquire("s:1", "a").await {
            Err(BudgetError::BackingOff { remaining, .. }) => remaining,
            other => panic!("expected a backoff, got {other:?}"),
        };
        assert!(
            first <= BACKOFF_BASE && first >= BACKOFF_BASE / 2,
            "{first:?}"
        );
        // Another server is not held back.
        budget.acquire("t:1", "b").await.expect("other server");
        tokio::time::advance(first).await;
        budget.refused("s:1", "a");
        let second = match budget.acquire("s:1", "a").await {
            Err(BudgetError::BackingOff { remaining, .. }) => remaining,
            other => panic!("expected a backoff, got {other:?}"),
        };
        assert!(second >= BACKOFF_BASE, "{second:?}");
        assert_eq!(
            budget
                .metrics()
                .backoff
                .get_or_create(&ConnectionBudget::labels("a"))
                .get(),
            4
        );
    }

    #[tokio::test]
    async fn a_reading_holds_back_connections_that_would_eat_the_headroom() {
        let budget = budget(10, 6);
        let reading = ServerReading {
            max_connections: 20,
            reserved: 3,
            in_use: 10,
        };
        // 7 free at the reading: one more leaves 6 (allowed), a second 5.
        let _first = budget.acquire("s:1", "a").await.expect("no reading yet");
        budget.observe("s:1", "a", reading).expect("7 free");
        let _second = budget.acquire("s:1", "a").await.expect("6 left after");
        assert!(matches!(
            budget.acquire("s:1", "a").await,
            Err(BudgetError::BackingOff { .. })
        ));
    }
}
