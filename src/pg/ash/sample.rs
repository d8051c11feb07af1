//! One sample's rows made observations: the server's connection slots as
//! the sample read them, and each active session of a watched database,
//! its statement normalized and its sqlcommenter tags read.
//!
//! Normalizing a text (parsing it) is the sample's main cost, and the same
//! statements run second after second, so [`Texts`] remembers what each
//! raw text gave, by a keyed hash of the text (no text is kept twice),
//! in two generations of at most [`TEXTS_PER_GENERATION`] entries: a text
//! seen in the last two generations is not parsed again, and the memory
//! stays bounded whatever the workload.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use super::observation::{Observation, StatementRef, WaitClass};
use crate::db::budget::ServerReading;
use crate::db::sqlcomment::{self, Comment};

/// The sample's query (one version band: `query_id` exists from 14, the
/// oldest supported version).
pub const SAMPLE: &str = include_str!("../../../sql/queries/ash_sample.sql");

/// Texts remembered per generation.
pub const TEXTS_PER_GENERATION: usize = 1_024;

/// What one raw text gave.
#[derive(Clone, Debug)]
struct Parsed {
    statement: Arc<StatementRef>,
    route: Option<Arc<str>>,
    trace_id: Option<Arc<str>>,
    cut: bool,
}

/// What raw texts gave, bounded (see the module docs).
#[derive(Debug, Default)]
pub struct Texts {
    hasher: std::collections::hash_map::RandomState,
    current: HashMap<(u64, Option<i64>), Parsed>,
    previous: HashMap<(u64, Option<i64>), Parsed>,
    /// Texts parsed (not found in either generation), for the benchmark.
    pub parsed: u64,
}

impl Texts {
    fn get(&mut self, raw: &str, query_id: Option<i64>) -> Parsed {
        let key = (self.hasher.hash_one(raw), query_id);
        if let Some(known) = self.current.get(&key) {
            return known.clone();
        }
        let parsed = match self.previous.remove(&key) {
            Some(known) => known,
            None => {
                self.parsed += 1;
                parse(raw, query_id)
            }
        };
        if self.current.len() >= TEXTS_PER_GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, parsed.clone());
        parsed
    }

    /// Entries held (both generations).
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn parse(raw: &str, query_id: Option<i64>) -> Parsed {
    let (tags, cut) = match sqlcomment::parse(raw) {
        Comment::Tags(tags) => (Some(tags), false),
        Comment::Cut => (None, true),
        Comment::None => (None, false),
    };
    Parsed {
        statement: Arc::new(StatementRef::of_text(raw, query_id)),
        route: tags
            .as_ref()
            .and_then(|t| t.endpoint())
            .map(|r| Arc::from(r.as_str())),
        trace_id: tags.and_then(|t| t.trace_id).map(Arc::from),
        cut,
    }
}

/// One session row of the sample, as read.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// `datname`.
    pub datname: String,
    /// `wait_event_type`.
    pub wait_event_type: Option<String>,
    /// `wait_event`.
    pub wait_event: Option<String>,
    /// `query_id`.
    pub query_id: Option<i64>,
    /// `query`, raw.
    pub query: String,
    /// `usename`.
    pub role: String,
    /// `application_name`.
    pub application: String,
    /// The first blocker's `query`, for a lock waiter.
    pub blocker_query: Option<String>,
}

/// A sample as read: the server's slots, and the sessions.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The server's connection slots.
    pub reading: ServerReading,
    /// Its active sessions in watched databases.
    pub sessions: Vec<Session>,
}

impl Sample {
    /// The sample of the query's rows.
    pub fn of_rows(rows: &[tokio_postgres::Row]) -> Result<Self, tokio_postgres::Error> {
        let mut reading = ServerReading {
            max_connections: 0,
            reserved: 0,
            in_use: 0,
        };
        let mut sessions = Vec::with_capacity(rows.len());
        for row in rows {
            reading = ServerReading {
                max_connections: row.try_get("max_connections")?,
                reserved: row.try_get("reserved")?,
                in_use: row.try_get("in_use")?,
            };
            if row.try_get::<_, Option<i32>>("pid")?.is_none() {
                continue;
            }
            sessions.push(Session {
                datname: row
                    .try_get::<_, Option<String>>("datname")?
                    .unwrap_or_default(),
                wait_event_type: row.try_get("wait_event_type")?,
                wait_event: row.try_get("wait_event")?,
                query_id: row.try_get("query_id")?,
                query: row.try_get("query")?,
                role: row.try_get("usename")?,
                application: row.try_get("application_name")?,
                blocker_query: row.try_get("blocker_query")?,
            });
        }
        Ok(Self { reading, sessions })
    }
}

/// The observations of a sample's sessions: each under every label its
/// database is watched as (`labels`, by `datname`), and how many texts had
/// their comment cut.
pub fn observations(
    sessions: &[Session],
    labels: &HashMap<String, Vec<Arc<str>>>,
    texts: &mut Texts,
) -> (Vec<Observation>, u32) {
    let mut observations = Vec::with_capacity(sessions.len());
    let mut cut = 0u32;
    let mut names: HashMap<&str, Arc<str>> = HashMap::new();
    for session in sessions {
        let Some(databases) = labels.get(&session.datname) else {
            continue;
        };
        let parsed = texts.get(&session.query, session.query_id);
        if parsed.cut {
            cut += 1;
        }
        let blocked_by = session
            .blocker_query
            .as_deref()
            .filter(|q| !q.is_empty())
            .map(|q| texts.get(q, None).statement);
        let class = WaitClass::of(session.wait_event_type.as_deref());
        let event = session
            .wait_event
            .as_deref()
            .filter(|_| class != WaitClass::Cpu)
            .map(|event| intern(&mut names, event));
        let role = intern(&mut names, &session.role);
        let application = intern(&mut names, &session.application);
        for database in databases {
            observations.push(Observation {
                database: database.clone(),
                class,
                event: event.clone(),
                statement: parsed.statement.clone(),
                role: role.clone(),
                application: application.clone(),
                route: parsed.route.clone(),
                trace_id: parsed.trace_id.clone(),
                blocked_by: blocked_by.clone(),
            });
        }
    }
    (observations, cut)
}

/// One `Arc` per name within a sample (the ring interns across samples).
fn intern<'a>(names: &mut HashMap<&'a str, Arc<str>>, text: &'a str) -> Arc<str> {
    names.entry(text).or_insert_with(|| Arc::from(text)).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(datname: &str, query: &str) -> Session {
        Session {
            datname: datname.into(),
            query: query.into(),
            role: "app".into(),
            application: "shop".into(),
            ..Session::default()
        }
    }

    #[test]
    fn sessions_of_watched_databases_become_observations_with_their_tags() {
        let labels = HashMap::from([("shop".to_owned(), vec![Arc::<str>::from("default")])]);
        let mut texts = Texts::default();
        let mut waiting = session(
            "shop",
            "UPDATE t SET v = 2 WHERE id = 1 /*route='%2Fapi%2Forders',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
        );
        waiting.wait_event_type = Some("Lock".into());
        waiting.wait_event = Some("transactionid".into());
        waiting.blocker_query = Some("UPDATE t SET v = 1 WHERE id = 1".into());
        let cut = session("shop", "SELECT 1 /*route='%2Fa");
        let elsewhere = session("other", "SELECT 2");
        let (observations, cuts) = observations(&[waiting, cut, elsewhere], &labels, &mut texts);
        assert_eq!(observations.len(), 2, "the unwatched database is left out");
        assert_eq!(cuts, 1);
        let o = &observations[0];
        assert_eq!(&*o.database, "default");
        assert_eq!(o.class, WaitClass::Lock);
        assert_eq!(o.event.as_deref(), Some("transactionid"));
        assert_eq!(o.route.as_deref(), Some("/api/orders"));
        assert_eq!(
            o.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert!(!o.statement.text.contains('2'), "{}", o.statement.text);
        assert!(o.blocked_by.is_some());
    }

    #[test]
    fn a_text_is_parsed_once_and_the_cache_stays_bounded() {
        let labels = HashMap::from([("db".to_owned(), vec![Arc::<str>::from("db")])]);
        let mut texts = Texts::default();
        let same = vec![session("db", "SELECT * FROM t WHERE id = 7"); 50];
        for _ in 0..10 {
            observations(&same, &labels, &mut texts);
        }
        assert_eq!(texts.parsed, 1);
        for i in 0..(TEXTS_PER_GENERATION * 3) {
            observations(
                &[session("db", &format!("SELECT {i} FROM t{i}"))],
                &labels,
                &mut texts,
            );
        }
        assert!(texts.len() <= 2 * TEXTS_PER_GENERATION, "{}", texts.len());
    }
}
