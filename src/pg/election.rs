//! One reader per database among the replicas of a host app: the process
//! that holds a session-level advisory lock on the database runs its
//! readers; the others serve only their own request metrics and try again
//! every read interval.
//!
//! Why a lock on a connection rather than a lease row or a leader flag:
//! it needs no table, no write and no clock, and the server ends it for
//! us: when the leader's connection dies (the process crashed, the network
//! broke, an admin terminated it), the server releases the lock with the
//! backend, and the next replica's try wins. The leader checks its
//! connection every interval and stops its readers when it is gone (after
//! the pass under way ends), so two replicas may read at once for up to an
//! interval, the read timeout and one pass.
//!
//! The lock is `pg_try_advisory_lock(NAMESPACE, <the database's oid>)`:
//! advisory locks are scoped to the current database by the server
//! already; the oid as the second key keeps the key readable in
//! `pg_locks` (`classid` = [`NAMESPACE`], `objid` = the database), and the
//! fixed namespace keeps clear of the app's own advisory locks unless it
//! picks the same number. It is held on a connection of its own, opened
//! through the connection budget like every other connection of the
//! agent's, and closed (releasing the lock) when the process stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::db::{DbError, TimedClient, TimedPool};
use crate::failure_log::{FailureLog, Report};

/// The advisory lock's first key, `pfsc` in ASCII: perfscope's namespace.
pub const NAMESPACE: i32 = 0x7066_7363;

/// Takes the reader lock of the current database, if free.
pub const TRY_LOCK: &str = "SELECT /* perfscope */ pg_catalog.pg_try_advisory_lock($1, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())::int)";

/// Why the lock could not be tried.
#[derive(Debug, thiserror::Error)]
enum TryError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("no answer within PERFSCOPE_READ_TIMEOUT")]
    Timeout,
}

/// Who runs a database's readers, as the self-check reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderRole {
    /// No election: this process always runs them (the agent).
    Always,
    /// This process won the election.
    Leader,
    /// Another replica holds the lock (or none could be taken yet).
    Follower,
}

/// A database's [`ReaderRole`], shared by the election and the self-check.
#[derive(Debug, Default)]
pub struct Leadership {
    /// 0 always, 1 leader, 2 follower.
    role: AtomicU8,
}

impl Leadership {
    /// A database whose readers are elected, not yet leading.
    pub fn elected() -> Self {
        Self {
            role: AtomicU8::new(2),
        }
    }

    /// Who runs the readers.
    pub fn role(&self) -> ReaderRole {
        match self.role.load(Ordering::Relaxed) {
            1 => ReaderRole::Leader,
            2 => ReaderRole::Follower,
            _ => ReaderRole::Always,
        }
    }

    fn set(&self, leader: bool) {
        self.role
            .store(if leader { 1 } else { 2 }, Ordering::Relaxed);
    }
}

/// The election of one database's reader.
#[derive(Debug)]
pub struct Election {
    /// The `database` label.
    pub database: Arc<str>,
    /// A budgeted pool for the lock's connection alone.
    pub lock_pool: TimedPool,
    /// How often a follower tries again and a leader checks its
    /// connection (`PERFSCOPE_READ_INTERVAL`).
    pub interval: Duration,
    /// Each try's and check's deadline (`PERFSCOPE_READ_TIMEOUT`).
    pub timeout: Duration,
    /// What the self-check reads.
    pub leadership: Arc<Leadership>,
    /// `perfscope_reader_leader{database}`.
    pub gauge: Gauge,
}

impl Election {
    /// Runs the election until `cancel`: while this process holds the
    /// lock, `readers` runs (until the token it is given fires, which
    /// happens when the lock's connection is lost or on `cancel`). Its
    /// connection is closed, releasing the lock, before the task ends.
    pub fn spawn(
        self,
        readers: impl Fn(CancellationToken) -> tokio::task::JoinHandle<()> + Send + 'static,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            self.gauge.set(0);
            let mut failures = FailureLog::default();
            let mut ticker = tokio::time::interval(self.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let won = tokio::select! {
                    () = cancel.cancelled() => return,
                    won = self.try_lead() => won,
                };
                let client = match won {
                    Ok(Some(client)) => client,
                    Ok(None) => {
                        self.log(failures.succeeded(Instant::now()), None);
                        continue;
                    }
                    Err(error) => {
                        self.log(failures.failed(Instant::now()), Some(&error));
                        continue;
                    }
                };
                self.log(failures.succeeded(Instant::now()), None);
                tracing::info!(database = %self.database, "this process runs the readers");
                self.leadership.set(true);
                self.gauge.set(1);
                let term = cancel.child_token();
                let running = readers(term.clone());
                self.hold(&client, &mut ticker, &cancel).await;
                term.cancel();
                let _ = running.await;
                // Closing the connection releases the lock.
                client.discard();
                self.gauge.set(0);
                self.leadership.set(false);
                if cancel.is_cancelled() {
                    return;
                }
                tracing::warn!(
                    database = %self.database,
                    "the reader lock's connection was lost: readers stopped, trying again"
                );
            }
        })
    }

    /// A connection holding the lock, or `None` when another process has
    /// it (the connection is then closed at once: a follower holds none).
    async fn try_lead(&self) -> Result<Option<TimedClient>, TryError> {
        let client = self.lock_pool.get_within(self.timeout).await?;
        let taken = tokio::time::timeout(self.timeout, client.query_one(TRY_LOCK, &[&NAMESPACE]))
            .await
            .map_err(|_| TryError::Timeout)?
            .map_err(DbError::from)?;
        if taken.try_get::<_, bool>(0).map_err(DbError::from)? {
            Ok(Some(client))
        } else {
            client.discard();
            Ok(None)
        }
    }

    /// Returns when `cancel` fires or the lock's connection is lost.
    async fn hold(
        &self,
        client: &TimedClient,
        ticker: &mut tokio::time::Interval,
        cancel: &CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let alive = tokio::select! {
                () = cancel.cancelled() => return,
                alive = tokio::time::timeout(self.timeout, client.query_one("SELECT 1", &[])) => alive,
            };
            if !matches!(alive, Ok(Ok(_))) {
                return;
            }
        }
    }

    fn log(&self, report: Report, error: Option<&TryError>) {
        match (report, error) {
            (Report::Started | Report::Still { .. }, Some(error)) => tracing::warn!(
                database = %self.database,
                %error,
                "could not try for the reader lock; trying again next interval"
            ),
            (Report::Recovered { failures, .. }, _) => tracing::info!(
                database = %self.database,
                failures,
                "the reader lock can be tried again"
            ),
            _ => {}
        }
    }
}

/// Watches the database behind `pool` as [`super::watch()`] does (listed
/// in [`super::Watched`] at once), its readers running only while this
/// process holds the reader lock, taken on a connection of `lock_pool`.
pub fn watch_elected(
    name: &str,
    pool: TimedPool,
    lock_pool: TimedPool,
    planner: Option<super::planner::Planner>,
    settings: &super::watch::WatchSettings,
    shared: super::watch::Shared<'_>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let name: Arc<str> = Arc::from(name);
    let leadership = Arc::new(Leadership::elected());
    let readers = super::watch::prepare(
        name.clone(),
        pool.clone(),
        planner,
        settings,
        shared,
        leadership.clone(),
    );
    let election = Election {
        database: name.clone(),
        lock_pool,
        interval: settings.interval,
        timeout: settings.timeout,
        leadership,
        gauge: shared
            .metrics
            .reader_leader
            .get_or_create(&crate::metrics::pg::LeaderLabels {
                database: name.clone(),
            })
            .clone(),
    };
    let metrics = shared.metrics.clone();
    let samplers = shared.samplers.clone();
    let (interval, timeout) = (settings.interval, settings.timeout);
    election.spawn(
        move |term| {
            // The server's ASH sampler runs while this process leads.
            samplers.join(name.clone(), pool.clone(), term.clone());
            super::runner::spawn(
                pool.clone(),
                name.clone(),
                readers.clone(),
                metrics.clone(),
                interval,
                timeout,
                term,
            )
        },
        cancel,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_spells_perfscope() {
        assert_eq!(NAMESPACE.to_be_bytes(), *b"pfsc");
    }

    #[test]
    fn leadership_starts_as_a_follower_when_elected() {
        assert_eq!(Leadership::default().role(), ReaderRole::Always);
        let elected = Leadership::elected();
        assert_eq!(elected.role(), ReaderRole::Follower);
        elected.set(true);
        assert_eq!(elected.role(), ReaderRole::Leader);
    }
}
