//! The ASH sampler: one task per server that samples `pg_stat_activity`
//! every `PERFSCOPE_ASH_INTERVAL` into the [`AshRing`].
//!
//! Why one per server: the view is cluster-wide, so one query covers every
//! watched database of a server (and one login role, which decides what
//! the view shows: the same key as the shared server views,
//! [`crate::db::TimedPool::views_key`]). The first database of a server
//! to be watched starts its sampler ([`AshSamplers::join`]), with the
//! token that stops that database's readers (in a host app's
//! `Integration`, the token of the election's lead), and the others join
//! it; it ends when every database that joined it has stopped.
//!
//! Why a kept connection: opening one per second would cost the server
//! more than the sample. It comes from the connection budget's kept lane
//! (at most half of `PERFSCOPE_MAX_DB_CONNECTIONS`, so readers and the
//! planner still get turns), is checked against the server's free slots
//! on every sample (the sample reads them) and given back when the server
//! keeps fewer than `PERFSCOPE_DB_CONNECTION_HEADROOM` free, the budget
//! then backing off before it is opened again. A server whose sampler gets
//! no permit is said so in its [`SamplerStatus`] (the self-check shows it)
//! and in the log, once per failure streak.
//!
//! Each sample runs under a short `statement_timeout` with a client-side
//! deadline; a sample past it is cancelled and its connection dropped (it
//! is opened again at the next sample). Failures are counted and logged
//! rate-limited, never once a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ring::AshRing;
use super::sample::{SAMPLE, Sample, Texts, observations};
use crate::db::{DbError, TimedClient, TimedPool};
use crate::failure_log::{FailureLog, Report};

/// The longest wait between two tries for a connection after failures.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What a server's sampler is doing, for the self-check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SamplerState {
    /// `PERFSCOPE_ASH_INTERVAL=0`.
    Off,
    /// Not started yet (no database of the server is read by this
    /// process, or it is waiting for its first connection).
    Idle,
    /// Sampling on its kept connection.
    Sampling,
    /// No connection: why (no permit of the kept lane, the budget backing
    /// off, the server short of free slots, a failure).
    Waiting(String),
}

/// A server's sampler's counters and state, shared with the self-check.
#[derive(Debug)]
pub struct SamplerStatus {
    /// Samples taken.
    pub samples: AtomicU64,
    /// Samples that failed (query error, deadline, broken connection).
    pub errors: AtomicU64,
    /// Active sessions seen (of watched databases), over every sample.
    pub sessions: AtomicU64,
    /// Texts seen with their sqlcommenter comment cut at
    /// `track_activity_query_size`.
    pub cut_comments: AtomicU64,
    /// Times the kept connection was given back for the server's headroom.
    pub released: AtomicU64,
    state: Mutex<SamplerState>,
}

impl SamplerStatus {
    fn new(state: SamplerState) -> Self {
        Self {
            samples: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            cut_comments: AtomicU64::new(0),
            released: AtomicU64::new(0),
            state: Mutex::new(state),
        }
    }

    /// What it is doing.
    pub fn state(&self) -> SamplerState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, state: SamplerState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }
}

/// A database sampled by a server's sampler.
#[derive(Clone, Debug)]
struct Member {
    label: Arc<str>,
    pool: TimedPool,
    cancel: CancellationToken,
}

/// One server's sampler.
#[derive(Debug)]
struct Server {
    members: Mutex<Vec<Member>>,
    running: AtomicBool,
    status: Arc<SamplerStatus>,
}

/// What every sampler shares.
#[derive(Clone, Debug)]
struct Settings {
    ring: Arc<AshRing>,
    interval: Duration,
    own_roles: Vec<String>,
}

/// The samplers of every watched server.
#[derive(Debug)]
pub struct AshSamplers {
    settings: Option<Settings>,
    servers: Mutex<HashMap<String, Arc<Server>>>,
    off: Arc<SamplerStatus>,
}

impl AshSamplers {
    /// Samplers pushing into `ring` every `interval` (none when `None`:
    /// ASH off), leaving out the sessions of `own_roles` (the planner
    /// role: the agent's own cost).
    pub fn new(ring: Arc<AshRing>, interval: Option<Duration>, own_roles: Vec<String>) -> Self {
        Self {
            settings: interval.map(|interval| Settings {
                ring,
                interval,
                own_roles,
            }),
            servers: Mutex::default(),
            off: Arc::new(SamplerStatus::new(SamplerState::Off)),
        }
    }

    fn server(&self, key: &str) -> Arc<Server> {
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Server {
                    members: Mutex::default(),
                    running: AtomicBool::new(false),
                    status: Arc::new(SamplerStatus::new(SamplerState::Idle)),
                })
            })
            .clone()
    }

    /// The status of the sampler of the server `pool` reads.
    pub fn status(&self, pool: &TimedPool) -> Arc<SamplerStatus> {
        if self.settings.is_none() {
            return self.off.clone();
        }
        self.server(pool.views_key()).status.clone()
    }

    /// Every server's status, by `role@host:port`.
    pub fn statuses(&self) -> Vec<(String, Arc<SamplerStatus>)> {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = servers
            .iter()
            .map(|(key, server)| (key.clone(), server.status.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Samples the database behind `pool` (as `label`) until `cancel`
    /// fires: with its server's sampler, started now if it is not running.
    pub fn join(&self, label: Arc<str>, pool: TimedPool, cancel: CancellationToken) {
        let Some(settings) = &self.settings else {
            return;
        };
        let server = self.server(pool.views_key());
        let mut members = server
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        members.push(Member {
            label,
            pool,
            cancel,
        });
        // Checked under the members' lock, as the task checks it before
        // it ends: a database joining a sampler that is ending starts a
        // new one.
        if !server.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(run(server.clone(), settings.clone()));
        }
    }
}

/// What the sampler holds between samples.
struct Task {
    server: Arc<Server>,
    settings: Settings,
    kept: Option<(TimedClient, TimedPool)>,
    texts: Texts,
    retry_at: Option<Instant>,
    retry_delay: Duration,
    failures: FailureLog,
}

async fn run(server: Arc<Server>, settings: Settings) {
    let mut ticker = tokio::time::interval(settings.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut task = Task {
        retry_delay: settings.interval,
        server,
        settings,
        kept: None,
        texts: Texts::default(),
        retry_at: None,
        failures: FailureLog::default(),
    };
    loop {
        let Some(first) = task.live_members() else {
            return;
        };
        tokio::select! {
            () = first.cancel.cancelled() => continue,
            _ = ticker.tick() => {}
        }
        if task.live_members().is_none() {
            return;
        }
        task.sample_once().await;
    }
}

impl Task {
    /// The first live member, or `None` (and the task marked ended) when
    /// every member has stopped.
    fn live_members(&mut self) -> Option<Member> {
        let mut members = self
            .server
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        members.retain(|m| !m.cancel.is_cancelled());
        if members.is_empty() {
            self.server.running.store(false, Ordering::Release);
            self.server.status.set(SamplerState::Idle);
            if let Some((client, _)) = self.kept.take() {
                client.discard();
            }
            return None;
        }
        members.first().cloned()
    }

    fn members(&self) -> Vec<Member> {
        self.server
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn sample_once(&mut self) {
        let members = self.members();
        let Some(first) = members.first() else {
            return;
        };
        // A kept connection belongs to a member's pool: once that database
        // is no longer watched, give its slot back and keep another's.
        if let Some((_, pool)) = &self.kept
            && !members.iter().any(|m| m.pool.dbname() == pool.dbname())
            && let Some((client, _)) = self.kept.take()
        {
            client.discard();
        }
        if self.kept.is_none() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                return;
            }
            match self.open(&first.pool).await {
                Ok(client) => {
                    self.kept = Some((client, first.pool.clone()));
                    self.retry_at = None;
                    self.retry_delay = self.settings.interval;
                }
                Err((reason, by_budget)) => {
                    self.wait(reason);
                    if by_budget {
                        self.retry_at = None;
                    }
                    return;
                }
            }
        }
        let mut labels: HashMap<String, Vec<Arc<str>>> = HashMap::new();
        let mut ticks = Vec::with_capacity(members.len());
        for member in &members {
            labels
                .entry(member.pool.dbname().to_owned())
                .or_default()
                .push(member.label.clone());
            if !ticks.contains(&member.label) {
                ticks.push(member.label.clone());
            }
        }
        let datnames: Vec<&str> = labels.keys().map(String::as_str).collect();
        let Some((client, pool)) = self.kept.take() else {
            return;
        };
        let deadline = self.settings.interval.max(Duration::from_millis(500));
        let result = tokio::time::timeout(
            deadline,
            client.query(SAMPLE, &[&self.settings.own_roles, &datnames]),
        )
        .await;
        let rows = match result {
            Ok(Ok(rows)) => rows,
            Ok(Err(error)) => {
                self.server.status.errors.fetch_add(1, Ordering::Relaxed);
                client.discard();
                self.wait(format!("the sample failed: {}", DbError::from(error)));
                return;
            }
            Err(_) => {
                self.server.status.errors.fetch_add(1, Ordering::Relaxed);
                let _ = client.cancel_query().await;
                client.discard();
                self.wait(format!("the sample took longer than {deadline:?}"));
                return;
            }
        };
        let sample = match Sample::of_rows(&rows) {
            Ok(sample) => sample,
            Err(error) => {
                self.server.status.errors.fetch_add(1, Ordering::Relaxed);
                client.discard();
                self.wait(format!("the sample's rows were unreadable: {error}"));
                return;
            }
        };
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (seen, cut) = observations(&sample.sessions, &labels, &mut self.texts);
        let status = &self.server.status;
        status.samples.fetch_add(1, Ordering::Relaxed);
        status
            .sessions
            .fetch_add(seen.len() as u64, Ordering::Relaxed);
        status
            .cut_comments
            .fetch_add(u64::from(cut), Ordering::Relaxed);
        self.settings.ring.push(at, &ticks, seen, cut);
        // Never keep one of the server's last free slots: the budget reads
        // the sample's count as it reads a new connection's, and backs off.
        if let Some(budget) = pool.budget()
            && let Err(error) = budget.observe(pool.server(), pool.name(), sample.reading)
        {
            status.released.fetch_add(1, Ordering::Relaxed);
            client.discard();
            tracing::info!(server = pool.server(), %error, "ASH gave its connection back");
            status.set(SamplerState::Waiting(error.to_string()));
            return;
        }
        self.kept = Some((client, pool));
        status.set(SamplerState::Sampling);
        if let Report::Recovered { failures, .. } = self.failures.succeeded(Instant::now()) {
            tracing::info!(server = self.key(), failures, "ASH sampling again");
        }
    }

    /// A kept connection with the sample's `statement_timeout` set; the
    /// error says why not, and whether the budget held it back (then the
    /// budget's own backoff decides when the next try may open one).
    async fn open(&self, pool: &TimedPool) -> Result<TimedClient, (String, bool)> {
        let client = match pool.get_kept(self.settings.interval).await {
            Ok(client) => client,
            Err(error @ DbError::Budget(_)) => return Err((error.to_string(), true)),
            Err(error) => return Err((error.to_string(), false)),
        };
        let timeout = (self.settings.interval / 2).max(Duration::from_millis(200));
        let set = format!(
            "SET statement_timeout = {}; SET lock_timeout = {}",
            timeout.as_millis(),
            timeout.as_millis()
        );
        match tokio::time::timeout(
            self.settings.interval.max(Duration::from_secs(1)),
            client.batch_execute(&set),
        )
        .await
        {
            Ok(Ok(())) => Ok(client),
            Ok(Err(error)) => {
                client.discard();
                Err((DbError::from(error).to_string(), false))
            }
            Err(_) => {
                client.discard();
                Err(("setting up the connection timed out".to_owned(), false))
            }
        }
    }

    fn key(&self) -> String {
        self.members()
            .first()
            .map(|m| m.pool.views_key().to_owned())
            .unwrap_or_default()
    }

    /// No sample this time: says why, waits longer after each failure.
    fn wait(&mut self, reason: String) {
        if let Report::Started | Report::Still { .. } = self.failures.failed(Instant::now()) {
            tracing::warn!(server = self.key(), %reason, "ASH cannot sample this server; trying again");
        }
        self.server.status.set(SamplerState::Waiting(reason));
        self.retry_at = Some(Instant::now() + self.retry_delay);
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
    }
}
