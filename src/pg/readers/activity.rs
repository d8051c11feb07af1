//! The activity reader: what runs in a watched database right now, from
//! `pg_stat_activity` — each client session's state, wait event, query and
//! transaction age and normalized statement (never a literal), the
//! sessions that block it, and flags for long-running queries,
//! idle-in-transaction sessions and blocked ones. The agent's own
//! sessions are left out (see `sql/queries/activity.sql`).
//!
//! The reader keeps the latest pass for the metrics and the findings; the
//! endpoints read afresh ([`read_activity`]), since "what is running" must
//! be now. Lock chains ([`ActivitySnapshot::lock_chains`]) are built from
//! the same rows: each root blocker first, then every session waiting
//! behind it, breadth first.
//!
//! Cancelling or terminating a backend is an action, not a read: see
//! [`crate::pg::actions::signal`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::db::TimedTransaction;
use crate::pg::ReadError;

const ACTIVITY: &str = include_str!("../../../sql/queries/activity.sql");

/// One client session.
// A Postgres backend (a process serving one client connection), named
// `Backend` apart from the pages' login session; the schema keeps its
// published name.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename = "Session", rename_all = "camelCase")]
pub struct Backend {
    /// Its backend's pid.
    pub pid: i32,
    /// The role it is logged in as.
    pub user: String,
    /// Its `application_name`.
    pub application: String,
    /// The client's address (`local` for a Unix socket).
    pub client: String,
    /// `active`, `idle`, `idle in transaction`, …
    pub state: String,
    /// The wait event's type (`Lock`, `IO`, `Client`, …), while waiting.
    #[oai(skip_serializing_if_is_none)]
    pub wait_event_type: Option<String>,
    /// The wait event.
    #[oai(skip_serializing_if_is_none)]
    pub wait_event: Option<String>,
    /// Seconds since its current (or last) query started.
    #[oai(skip_serializing_if_is_none)]
    pub query_seconds: Option<f64>,
    /// Seconds since its transaction started, while one is open.
    #[oai(skip_serializing_if_is_none)]
    pub transaction_seconds: Option<f64>,
    /// Seconds in its current state.
    #[oai(skip_serializing_if_is_none)]
    pub state_seconds: Option<f64>,
    /// The current (or last) statement, normalized: no literal values.
    pub query: String,
    /// The sqlcommenter tags at the end of its statement (written by the
    /// app's library in any language, or by perfscope's pool with
    /// `PERFSCOPE_SQL_COMMENTS`).
    #[oai(skip_serializing_if_is_none)]
    pub tags: Option<SqlTags>,
    /// The pids that block it, while it waits on a lock.
    pub blocked_by: Vec<i32>,
    /// When its backend started (Postgres' text): pass it back to cancel or
    /// terminate this very session, not a later one that reused the pid.
    pub backend_start: String,
    /// `long_running`, `idle_in_transaction`, `blocked`, `blocking`.
    pub flags: Vec<String>,
}

/// The sqlcommenter tags of a statement, as [`crate::db::sqlcomment`]
/// reads them: only the known keys, URL-decoded, each at most 128
/// characters, never a control character.
#[derive(Clone, Debug, Default, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct SqlTags {
    /// `route`.
    #[oai(skip_serializing_if_is_none)]
    pub route: Option<String>,
    /// `controller`.
    #[oai(skip_serializing_if_is_none)]
    pub controller: Option<String>,
    /// `action`.
    #[oai(skip_serializing_if_is_none)]
    pub action: Option<String>,
    /// `framework`.
    #[oai(skip_serializing_if_is_none)]
    pub framework: Option<String>,
    /// `db_driver`.
    #[oai(skip_serializing_if_is_none)]
    pub db_driver: Option<String>,
    /// `application`.
    #[oai(skip_serializing_if_is_none)]
    pub application: Option<String>,
    /// The trace id of `traceparent` (32 hex digits).
    #[oai(skip_serializing_if_is_none)]
    pub trace_id: Option<String>,
}

impl SqlTags {
    /// The tags at the end of `raw`, a statement as the server shows it.
    pub fn of(raw: &str) -> Option<Self> {
        let tags = crate::db::sqlcomment::parse(raw).tags()?;
        let text = |value: Option<Box<str>>| value.map(String::from);
        Some(Self {
            route: text(tags.route),
            controller: text(tags.controller),
            action: text(tags.action),
            framework: text(tags.framework),
            db_driver: text(tags.db_driver),
            application: text(tags.application),
            trace_id: text(tags.trace_id),
        })
    }
}

/// One pass over `pg_stat_activity`.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivitySnapshot {
    /// When it was read.
    pub at: SystemTime,
    /// The client sessions, oldest query first.
    pub sessions: Vec<Backend>,
}

/// A session in a lock chain.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct ChainMember {
    /// Its pid.
    pub pid: i32,
    /// 0 for the root blocker, 1 for the sessions it blocks directly, …
    pub depth: u32,
    /// Its state (`not visible` when the blocker is not one of the
    /// database's listed sessions, e.g. the agent's own).
    pub state: String,
    /// Its normalized statement.
    #[oai(skip_serializing_if_is_none)]
    pub query: Option<String>,
    /// For the root: how long its transaction has been open (it holds its
    /// locks until the transaction ends); for the others: how long they
    /// have been waiting.
    #[oai(skip_serializing_if_is_none)]
    pub seconds: Option<f64>,
    /// Who blocks it (empty for the root).
    pub blocked_by: Vec<i32>,
}

/// A root blocker and everything waiting behind it, breadth first.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct LockChain {
    /// The root first.
    pub sessions: Vec<ChainMember>,
}

/// The figures the metrics and findings read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ActivitySummary {
    /// The longest-running active query, seconds.
    pub longest_query: f64,
    /// The oldest open transaction, seconds.
    pub longest_transaction: f64,
    /// Sessions waiting on a lock another session holds.
    pub blocked: usize,
    /// Active queries over the long-query threshold.
    pub long_running: usize,
    /// Sessions idle in a transaction over the threshold.
    pub idle_in_transaction: usize,
}

/// Flag thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Active queries longer than this are `long_running`.
    pub long_query: Duration,
    /// Idle-in-transaction sessions longer than this are flagged.
    pub idle_in_transaction: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            long_query: Duration::from_millis(crate::config::DEFAULT_LONG_QUERY_THRESHOLD_MS),
            idle_in_transaction: Duration::from_millis(
                crate::config::DEFAULT_IDLE_IN_TRANSACTION_THRESHOLD_MS,
            ),
        }
    }
}

/// Reads the sessions now, flagged against `thresholds`.
pub async fn read_activity(
    tx: &TimedTransaction<'_>,
    thresholds: Thresholds,
) -> Result<ActivitySnapshot, ReadError> {
    let mut sessions = Vec::new();
    for row in tx.query(ACTIVITY, &[]).await? {
        let query: String = row.try_get("query")?;
        sessions.push(Backend {
            pid: row.try_get("pid")?,
            user: row.try_get("usename")?,
            application: row.try_get("application_name")?,
            client: row.try_get("client")?,
            state: row.try_get("state")?,
            wait_event_type: row.try_get("wait_event_type")?,
            wait_event: row.try_get("wait_event")?,
            query_seconds: row.try_get("query_seconds")?,
            transaction_seconds: row.try_get("xact_seconds")?,
            state_seconds: row.try_get("state_seconds")?,
            query: crate::db::statement::normalize(&query),
            tags: SqlTags::of(&query),
            blocked_by: row.try_get("blocked_by")?,
            backend_start: row
                .try_get::<_, Option<String>>("backend_start")?
                .unwrap_or_default(),
            flags: Vec::new(),
        });
    }
    let mut snapshot = ActivitySnapshot {
        at: SystemTime::now(),
        sessions,
    };
    snapshot.flag(thresholds);
    Ok(snapshot)
}

/// Reads the sessions now through `pool`, in a read-only transaction under
/// `statement_timeout` = `timeout` (as the readers do).
pub async fn read_now(
    pool: &crate::db::TimedPool,
    thresholds: Thresholds,
    timeout: Duration,
) -> Result<ActivitySnapshot, ReadError> {
    let mut client = pool.get().await?;
    let tx = crate::pg::read_only(&mut client, timeout).await?;
    let snapshot = read_activity(&tx, thresholds).await?;
    tx.commit().await?;
    Ok(snapshot)
}

impl ActivitySnapshot {
    /// Sets each session's flags.
    pub fn flag(&mut self, thresholds: Thresholds) {
        let blocking: HashSet<i32> = self
            .sessions
            .iter()
            .flat_map(|s| s.blocked_by.iter().copied())
            .collect();
        for s in &mut self.sessions {
            s.flags.clear();
            let over = |seconds: Option<f64>, limit: Duration| {
                seconds.is_some_and(|v| v > limit.as_secs_f64())
            };
            if s.state == "active" && over(s.query_seconds, thresholds.long_query) {
                s.flags.push("long_running".into());
            }
            if s.state.starts_with("idle in transaction")
                && over(s.state_seconds, thresholds.idle_in_transaction)
            {
                s.flags.push("idle_in_transaction".into());
            }
            if !s.blocked_by.is_empty() {
                s.flags.push("blocked".into());
            }
            if blocking.contains(&s.pid) {
                s.flags.push("blocking".into());
            }
        }
    }

    /// The figures for metrics and findings.
    pub fn summary(&self) -> ActivitySummary {
        let flagged = |flag: &str| {
            self.sessions
                .iter()
                .filter(|s| s.flags.iter().any(|f| f == flag))
                .count()
        };
        ActivitySummary {
            longest_query: self
                .sessions
                .iter()
                .filter(|s| s.state == "active")
                .filter_map(|s| s.query_seconds)
                .fold(0.0, f64::max),
            longest_transaction: self
                .sessions
                .iter()
                .filter_map(|s| s.transaction_seconds)
                .fold(0.0, f64::max),
            blocked: flagged("blocked"),
            long_running: flagged("long_running"),
            idle_in_transaction: flagged("idle_in_transaction"),
        }
    }

    /// Each root blocker with the sessions waiting behind it.
    pub fn lock_chains(&self) -> Vec<LockChain> {
        let by_pid: HashMap<i32, &Backend> = self.sessions.iter().map(|s| (s.pid, s)).collect();
        let mut waiters: HashMap<i32, Vec<i32>> = HashMap::new();
        for s in &self.sessions {
            for blocker in &s.blocked_by {
                waiters.entry(*blocker).or_default().push(s.pid);
            }
        }
        // Roots: blockers nobody blocks (or, in a cycle the deadlock
        // detector has not broken yet, its lowest pid).
        let mut roots: Vec<i32> = waiters
            .keys()
            .copied()
            .filter(|pid| by_pid.get(pid).is_none_or(|s| s.blocked_by.is_empty()))
            .collect();
        roots.sort_unstable();
        let mut covered: HashSet<i32> = HashSet::new();
        let mut chains = Vec::new();
        let build = |root: i32, covered: &mut HashSet<i32>| {
            let mut members = Vec::new();
            let mut seen = HashSet::from([root]);
            let mut queue = VecDeque::from([(root, 0u32)]);
            while let Some((pid, depth)) = queue.pop_front() {
                covered.insert(pid);
                let session = by_pid.get(&pid);
                members.push(ChainMember {
                    pid,
                    depth,
                    state: session.map_or_else(|| "not visible".to_owned(), |s| s.state.clone()),
                    query: session.map(|s| s.query.clone()),
                    seconds: session.and_then(|s| {
                        if depth == 0 {
                            s.transaction_seconds
                        } else {
                            s.state_seconds
                        }
                    }),
                    blocked_by: if depth == 0 {
                        Vec::new()
                    } else {
                        session.map(|s| s.blocked_by.clone()).unwrap_or_default()
                    },
                });
                let mut next = waiters.get(&pid).cloned().unwrap_or_default();
                next.sort_unstable();
                for waiter in next {
                    if seen.insert(waiter) {
                        queue.push_back((waiter, depth + 1));
                    }
                }
            }
            LockChain { sessions: members }
        };
        for root in roots {
            chains.push(build(root, &mut covered));
        }
        let mut cyclic: Vec<i32> = waiters
            .keys()
            .copied()
            .filter(|pid| !covered.contains(pid))
            .collect();
        cyclic.sort_unstable();
        for pid in cyclic {
            if !covered.contains(&pid) {
                chains.push(build(pid, &mut covered));
            }
        }
        chains
    }
}

/// The activity reader of one database.
#[derive(Debug)]
pub struct ActivityReader {
    thresholds: Thresholds,
    latest: crate::pg::Latest<ActivitySnapshot>,
}

impl ActivityReader {
    /// A reader flagging against `thresholds`.
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            latest: crate::pg::Latest::default(),
        }
    }

    /// Its thresholds.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// The latest pass, once one succeeded.
    pub fn latest(&self) -> Option<Arc<ActivitySnapshot>> {
        self.latest.get()
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let snapshot = read_activity(tx, self.thresholds).await?;
        self.latest.set(snapshot);
        Ok(())
    }
}

crate::pg::impl_reader!(ActivityReader, "activity");

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pid: i32, state: &str, blocked_by: &[i32]) -> Backend {
        Backend {
            pid,
            user: "app".into(),
            application: "api".into(),
            client: "10.0.0.1".into(),
            state: state.into(),
            wait_event_type: (!blocked_by.is_empty()).then(|| "Lock".into()),
            wait_event: None,
            query_seconds: Some(f64::from(pid)),
            transaction_seconds: Some(100.0 + f64::from(pid)),
            state_seconds: Some(f64::from(pid) / 2.0),
            query: format!("update t set a = $1 where id = {pid}"),
            tags: None,
            blocked_by: blocked_by.to_vec(),
            backend_start: "2026-11-29 06:00:00+00".into(),
            flags: Vec::new(),
        }
    }

    #[test]
    fn chains_start_at_the_root_and_go_breadth_first() {
        let mut snapshot = ActivitySnapshot {
            at: SystemTime::now(),
            sessions: vec![
                session(30, "active", &[20]),
                session(20, "active", &[10]),
                session(10, "idle in transaction", &[]),
                session(21, "active", &[10]),
                session(40, "active", &[]),
            ],
        };
        snapshot.flag(Thresholds::default());
        let chains = snapshot.lock_chains();
        assert_eq!(chains.len(), 1);
        let order: Vec<(i32, u32)> = chains[0]
            .sessions
            .iter()
            .map(|m| (m.pid, m.depth))
            .collect();
        assert_eq!(order, vec![(10, 0), (20, 1), (21, 1), (30, 2)]);
        assert_eq!(
            chains[0].sessions[0].seconds,
            Some(110.0),
            "the root's transaction age"
        );
        assert_eq!(chains[0].sessions[1].blocked_by, vec![10]);
        let summary = snapshot.summary();
        assert_eq!(summary.blocked, 3);
        assert_eq!(summary.longest_transaction, 140.0);
        let root = snapshot
            .sessions
            .iter()
            .find(|s| s.pid == 10)
            .expect("root");
        assert!(root.flags.contains(&"blocking".to_owned()));
    }

    #[test]
    fn an_invisible_blocker_and_a_cycle_still_make_chains() {
        let snapshot = ActivitySnapshot {
            at: SystemTime::now(),
            sessions: vec![
                session(5, "active", &[99]),
                session(7, "active", &[8]),
                session(8, "active", &[7]),
            ],
        };
        let chains = snapshot.lock_chains();
        assert_eq!(chains.len(), 2, "{chains:?}");
        assert_eq!(chains[0].sessions[0].pid, 99);
        assert_eq!(chains[0].sessions[0].state, "not visible");
        assert_eq!(chains[1].sessions[0].pid, 7);
        assert_eq!(chains[1].sessions.len(), 2);
    }

    #[test]
    fn flags_follow_the_thresholds() {
        let mut long = session(90, "active", &[]);
        long.query_seconds = Some(61.0);
        let mut idle = session(91, "idle in transaction", &[]);
        idle.state_seconds = Some(31.0);
        let mut snapshot = ActivitySnapshot {
            at: SystemTime::now(),
            sessions: vec![long, idle, session(92, "idle", &[])],
        };
        snapshot.flag(Thresholds::default());
        assert_eq!(snapshot.sessions[0].flags, vec!["long_running"]);
        assert_eq!(snapshot.sessions[1].flags, vec!["idle_in_transaction"]);
        assert!(snapshot.sessions[2].flags.is_empty());
        let summary = snapshot.summary();
        assert_eq!((summary.long_running, summary.idle_in_transaction), (1, 1));
        assert_eq!(summary.longest_query, 61.0);
    }
}
