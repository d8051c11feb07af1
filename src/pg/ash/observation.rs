//! One active session seen in one sample of `pg_stat_activity`, and the
//! wait class its wait event belongs to.
//!
//! Every text in an observation came from the database (a user's
//! statement, role and application names, tags another app wrote into
//! its SQL), so it is untrusted: the statement is normalized (no literal
//! value), tags are read by [`crate::db::sqlcomment`] (known keys,
//! bounded), and nothing here becomes a metric label unbounded.

use std::sync::Arc;

/// What a session spent its sample on: on CPU (active, no wait event) or
/// waiting, by Postgres' `wait_event_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WaitClass {
    /// Active with no wait event: running (or waiting on something
    /// Postgres does not instrument).
    Cpu,
    /// Reading or writing data files, WAL, …
    Io,
    /// A heavyweight lock another session holds (rows, tables, …).
    Lock,
    /// A lightweight lock on a shared-memory structure.
    LwLock,
    /// Waiting on the client (to send the next command, to read results).
    Client,
    /// Waiting on another process (parallel workers, sync replication, …).
    Ipc,
    /// A timeout (`pg_sleep`, vacuum delay, …).
    Timeout,
    /// A buffer pin.
    BufferPin,
    /// A background process' idle wait.
    Activity,
    /// An extension's wait.
    Extension,
    /// A type this version of perfscope does not know.
    Other,
}

impl WaitClass {
    /// Every class, in the order charts stack them.
    pub const ALL: [WaitClass; 11] = [
        WaitClass::Cpu,
        WaitClass::Io,
        WaitClass::Lock,
        WaitClass::LwLock,
        WaitClass::Client,
        WaitClass::Ipc,
        WaitClass::Timeout,
        WaitClass::BufferPin,
        WaitClass::Activity,
        WaitClass::Extension,
        WaitClass::Other,
    ];

    /// The class of an active session with this `wait_event_type`.
    pub fn of(wait_event_type: Option<&str>) -> Self {
        match wait_event_type {
            None | Some("") => WaitClass::Cpu,
            Some("IO") => WaitClass::Io,
            Some("Lock") => WaitClass::Lock,
            Some("LWLock") => WaitClass::LwLock,
            Some("Client") => WaitClass::Client,
            Some("IPC") => WaitClass::Ipc,
            Some("Timeout") => WaitClass::Timeout,
            Some("BufferPin") => WaitClass::BufferPin,
            Some("Activity") => WaitClass::Activity,
            Some("Extension") => WaitClass::Extension,
            Some(_) => WaitClass::Other,
        }
    }

    /// Its name as shown and labelled (`CPU`, `IO`, `Lock`, `LWLock`, …:
    /// Postgres' spelling of the type, `CPU` for none).
    pub fn as_str(self) -> &'static str {
        match self {
            WaitClass::Cpu => "CPU",
            WaitClass::Io => "IO",
            WaitClass::Lock => "Lock",
            WaitClass::LwLock => "LWLock",
            WaitClass::Client => "Client",
            WaitClass::Ipc => "IPC",
            WaitClass::Timeout => "Timeout",
            WaitClass::BufferPin => "BufferPin",
            WaitClass::Activity => "Activity",
            WaitClass::Extension => "Extension",
            WaitClass::Other => "Other",
        }
    }

    /// The class named `name` ([`WaitClass::as_str`]), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == name)
    }
}

/// The statement a session was running: its id, Postgres' `query_id`
/// when the server computed one, and its normalized text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatementRef {
    /// perfscope's fingerprint of the normalized text
    /// ([`crate::db::statement::parse`]): the same with or without a
    /// comment, and present when `query_id` is not (Postgres leaves it
    /// NULL without `compute_query_id`, and for many extended-protocol
    /// statements).
    pub fingerprint: u64,
    /// `pg_stat_activity.query_id` (PostgreSQL 14+), when known.
    pub query_id: Option<i64>,
    /// The normalized text: no literal value.
    pub text: Arc<str>,
}

impl StatementRef {
    /// The statement of a raw `pg_stat_activity.query` text, normalized.
    pub fn of_text(raw: &str, query_id: Option<i64>) -> Self {
        let parsed = crate::db::statement::parse(raw);
        Self {
            fingerprint: parsed.fingerprint,
            query_id: query_id.filter(|id| *id != 0),
            text: Arc::from(&*parsed.normalized),
        }
    }

    /// Bytes it holds, for the ring's bound.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.text.len() + 16
    }
}

/// One active client session in one sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Its database (the watched database's label).
    pub database: Arc<str>,
    /// What it was doing.
    pub class: WaitClass,
    /// The wait event, while waiting (`DataFileRead`, `transactionid`, …).
    pub event: Option<Arc<str>>,
    /// Its statement.
    pub statement: Arc<StatementRef>,
    /// The role it is logged in as.
    pub role: Arc<str>,
    /// Its `application_name`.
    pub application: Arc<str>,
    /// The route (or `controller#action`) its statement's sqlcommenter
    /// tags name.
    pub route: Option<Arc<str>>,
    /// The trace id of its statement's `traceparent` tag.
    pub trace_id: Option<Arc<str>>,
    /// While waiting on a lock: the statement of the first session that
    /// blocks it, when that one is a client session of the same sample.
    pub blocked_by: Option<Arc<StatementRef>>,
}

impl Observation {
    /// Bytes it holds beyond what the ring shares (its own struct; the
    /// texts are interned).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_classes_follow_postgres_names() {
        assert_eq!(WaitClass::of(None), WaitClass::Cpu);
        assert_eq!(WaitClass::of(Some("LWLock")), WaitClass::LwLock);
        assert_eq!(WaitClass::of(Some("Something new")), WaitClass::Other);
        for class in WaitClass::ALL {
            assert_eq!(WaitClass::parse(class.as_str()), Some(class));
        }
    }

    #[test]
    fn a_statement_is_the_same_with_or_without_its_comment_and_values() {
        let a = StatementRef::of_text("SELECT * FROM t WHERE id = 42", None);
        let b = StatementRef::of_text("SELECT * FROM t WHERE id = $1 /*route='%2Ft'*/", Some(7));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert!(!a.text.contains("42"), "{}", a.text);
        assert_eq!(b.query_id, Some(7));
        assert_eq!(StatementRef::of_text("SELECT 1", Some(0)).query_id, None);
    }
}
