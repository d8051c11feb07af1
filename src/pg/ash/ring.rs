//! The samples of the active session history, kept in memory and bounded
//! in bytes across every watched database.
//!
//! Two tiers: the recent seconds whole (each sample's sessions, for a
//! fine chart and the trace ids of the last minutes), and every minute
//! rolled up into counts by (database, wait, statement, role,
//! application, route). A sample goes into both at once, so the minutes
//! never wait for a rollup pass and a query of a longer range reads only
//! them. When the ring holds more than its bytes, the oldest seconds go
//! first (down to a quarter of the bound), then the oldest minutes; a
//! minute that would outgrow half the bound on its own counts its new
//! keys under one "over the memory cap" statement instead.
//!
//! Texts (statements, roles, applications, routes, trace ids) are
//! interned: a sample of fifty sessions running five statements holds
//! five texts. An interned text is forgotten once no sample holds it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::answer::{AasPoint, By, ClassTime, DbTime, DbTimeRow};
use super::observation::{Observation, StatementRef, WaitClass};

/// Trace ids kept per minute and key.
const TRACE_IDS_PER_CELL: usize = 2;
/// Blocking statements kept per minute and key.
const BLOCKERS_PER_CELL: usize = 3;
/// Trace ids shown per row.
const TRACE_IDS_PER_ROW: usize = 5;
/// Blocking statements shown per row.
const BLOCKERS_PER_ROW: usize = 3;
/// A range up to this long is charted from the whole seconds.
const FINE_RANGE: u64 = 15 * 60;
/// The step of a chart from the whole seconds.
const FINE_STEP: u64 = 10;
/// A chart has at most about this many steps.
const MAX_STEPS: u64 = 180;
/// What an interned text costs beside its bytes (the set's slot, the
/// `Arc`'s counts).
const INTERN_OVERHEAD: usize = 48;
/// What a minute's key and cell cost beside their texts.
const CELL_BYTES: usize = std::mem::size_of::<Key>() + std::mem::size_of::<Cell>() + 32;

/// How much the ring keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes held (`PERFSCOPE_ASH_MEMORY`).
    pub max_bytes: usize,
    /// How long whole seconds are kept (then only their minutes).
    pub raw_for: Duration,
    /// The sampling interval (`PERFSCOPE_ASH_INTERVAL`): what one sample
    /// stands for.
    pub interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 8 << 20,
            raw_for: Duration::from_secs(10 * 60),
            interval: Duration::from_secs(1),
        }
    }
}

/// What the ring holds now (for the self-check, the metrics and the
/// benchmark).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Bytes held (estimated from what it keeps: structs, texts, maps).
    pub bytes: usize,
    /// Whole samples kept.
    pub seconds: usize,
    /// Minutes kept.
    pub minutes: usize,
    /// The oldest minute kept, Unix seconds.
    pub oldest: Option<u64>,
    /// Minutes dropped to stay within the bytes.
    pub dropped_minutes: u64,
    /// Observations counted under the "over the memory cap" statement.
    pub folded: u64,
}

/// The active session history of every watched database.
#[derive(Debug)]
pub struct AshRing {
    limits: Limits,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seconds: VecDeque<Second>,
    minutes: VecDeque<Minute>,
    texts: HashSet<Arc<str>>,
    statements: HashMap<u64, Arc<StatementRef>>,
    raw_bytes: usize,
    minute_bytes: usize,
    dict_bytes: usize,
    dropped_minutes: u64,
    folded: u64,
    overflow: Option<Arc<StatementRef>>,
}

/// One sample of one server.
#[derive(Debug)]
struct Second {
    at: u64,
    databases: Vec<Arc<str>>,
    sessions: Vec<Observation>,
    cut: u32,
}

impl Second {
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.databases.len() * std::mem::size_of::<Arc<str>>()
            + self.sessions.iter().map(Observation::bytes).sum::<usize>()
    }
}

/// One minute's samples as counts.
#[derive(Debug)]
struct Minute {
    at: u64,
    ticks: HashMap<Arc<str>, u32>,
    cells: HashMap<Key, Cell>,
    cut: u32,
    bytes: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    database: Arc<str>,
    class: WaitClass,
    event: Option<Arc<str>>,
    statement: Arc<StatementRef>,
    role: Arc<str>,
    application: Arc<str>,
    route: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct Cell {
    count: u32,
    trace_ids: Vec<Arc<str>>,
    blocked_by: Vec<Arc<StatementRef>>,
}

impl AshRing {
    /// An empty ring keeping at most `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits: Limits {
                max_bytes: limits.max_bytes.max(64 << 10),
                interval: limits.interval.max(Duration::from_millis(100)),
                ..limits
            },
            inner: Mutex::default(),
        }
    }

    /// What it keeps.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one sample of one server taken at `at` (Unix seconds): it
    /// covered `databases` (each gets a tick, sessions or not) and saw
    /// `sessions` active; `cut` texts had their sqlcommenter comment cut
    /// at `track_activity_query_size`.
    pub fn push(&self, at: u64, databases: &[Arc<str>], sessions: Vec<Observation>, cut: u32) {
        let limits = self.limits;
        let mut inner = self.lock();
        let sessions: Vec<Observation> = sessions
            .into_iter()
            .map(|observation| inner.intern_observation(observation))
            .collect();
        let databases: Vec<Arc<str>> = databases.iter().map(|d| inner.intern(d)).collect();
        inner.count_into_minute(at, &databases, &sessions, cut, limits.max_bytes / 2);
        let second = Second {
            at,
            databases,
            sessions,
            cut,
        };
        inner.raw_bytes += second.bytes();
        inner.seconds.push_back(second);
        inner.trim(at, limits);
    }

    /// What it holds now.
    pub fn stats(&self) -> RingStats {
        let inner = self.lock();
        RingStats {
            bytes: inner.bytes(),
            seconds: inner.seconds.len(),
            minutes: inner.minutes.len(),
            oldest: inner.minutes.front().map(|m| m.at),
            dropped_minutes: inner.dropped_minutes,
            folded: inner.folded,
        }
    }

    /// The minutes that ended before `before` (Unix seconds) and started
    /// at or after `after`, as plain counts, oldest first: what the
    /// history store keeps of them.
    pub fn closed_minutes(&self, after: u64, before: u64) -> Vec<MinuteCounts> {
        let inner = self.lock();
        inner
            .minutes
            .iter()
            .filter(|m| m.at >= after && m.at.saturating_add(60) <= before)
            .map(|m| MinuteCounts {
                at: m.at,
                ticks: m.ticks.iter().map(|(d, n)| (d.clone(), *n)).collect(),
                counts: m
                    .cells
                    .iter()
                    .map(|(key, cell)| MinuteCount {
                        database: key.database.clone(),
                        class: key.class,
                        event: key.event.clone(),
                        statement: key.statement.clone(),
                        role: key.role.clone(),
                        application: key.application.clone(),
                        route: key.route.clone(),
                        samples: cell.count,
                        trace_ids: cell.trace_ids.clone(),
                        blocked_by: cell.blocked_by.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Where the time of `database` (every database when `None`) went
    /// from `since` to `until` (Unix seconds), grouped `by`, the `top`
    /// largest rows and the rest as `other`.
    pub fn db_time(
        &self,
        database: Option<&str>,
        since: u64,
        until: u64,
        by: By,
        top: usize,
    ) -> DbTime {
        let inner = self.lock();
        let interval = self.limits.interval.as_secs_f64();
        let fine = until.saturating_sub(since) <= FINE_RANGE
            && inner.seconds.front().is_some_and(|s| s.at <= since);
        let units = if fine {
            inner.second_units(since, until, database)
        } else {
            inner.minute_units(since, until, database)
        };
        answer_units(&units, database, since, until, by, top, fine, interval)
    }

    /// [`AshRing::db_time`] of each database seen in the range, read in
    /// one pass over the ring (the scrape-time metrics ask it of every
    /// watched database: one pass each would cost databases × samples).
    pub fn db_time_each(
        &self,
        since: u64,
        until: u64,
        by: By,
        top: usize,
    ) -> Vec<(Arc<str>, DbTime)> {
        let inner = self.lock();
        let interval = self.limits.interval.as_secs_f64();
        let fine = until.saturating_sub(since) <= FINE_RANGE
            && inner.seconds.front().is_some_and(|s| s.at <= since);
        let units = if fine {
            inner.second_units(since, until, None)
        } else {
            inner.minute_units(since, until, None)
        };
        let mut by_database: std::collections::BTreeMap<Arc<str>, Vec<Unit<'_>>> =
            std::collections::BTreeMap::new();
        for unit in units {
            let mut split: HashMap<Arc<str>, Unit<'_>> = HashMap::new();
            for (database, ticks) in unit.ticks {
                split.insert(
                    database.clone(),
                    Unit {
                        at: unit.at,
                        ticks: vec![(database, ticks)],
                        cells: Vec::new(),
                        cut: 0,
                    },
                );
            }
            for view in unit.cells {
                if let Some(own) = split.get_mut(view.database) {
                    own.cells.push(view);
                }
            }
            // The cut comments are the sample's (the server's), as
            // `db_time` of one database counts them.
            for (database, mut own) in split {
                own.cut = unit.cut;
                by_database.entry(database).or_default().push(own);
            }
        }
        by_database
            .into_iter()
            .map(|(database, units)| {
                let answer = answer_units(
                    &units,
                    Some(&database),
                    since,
                    until,
                    by,
                    top,
                    fine,
                    interval,
                );
                (database, answer)
            })
            .collect()
    }
}

/// Where the time of `database` (every database when `None`) went from
/// `since` to `until` (Unix seconds), from `minutes` (the history store's
/// minutes, or buckets of several, for a range older than the ring; or
/// the ring's closed minutes): the answer [`AshRing::db_time`] gives over
/// its minutes, by the same code. `interval` is what one sample stands
/// for (`PERFSCOPE_ASH_INTERVAL`). The store's minutes carry no trace ids
/// or blockers; the ring's do.
pub fn answer_minutes(
    minutes: &[MinuteCounts],
    database: Option<&str>,
    since: u64,
    until: u64,
    by: By,
    top: usize,
    interval: Duration,
) -> DbTime {
    let units: Vec<Unit<'_>> = minutes
        .iter()
        .filter(|m| m.at.saturating_add(60) > since && m.at < until)
        .map(|m| Unit {
            at: m.at,
            ticks: m
                .ticks
                .iter()
                .filter(|(d, _)| database.is_none_or(|want| &**d == want))
                .cloned()
                .collect(),
            cells: m
                .counts
                .iter()
                .filter(|c| database.is_none_or(|want| &*c.database == want))
                .map(|c| View {
                    database: &c.database,
                    class: c.class,
                    event: c.event.as_ref(),
                    statement: &c.statement,
                    role: &c.role,
                    application: &c.application,
                    route: c.route.as_ref(),
                    count: c.samples,
                    trace_ids: &c.trace_ids,
                    blocked_by: &c.blocked_by,
                })
                .collect(),
            cut: 0,
        })
        .collect();
    answer_units(
        &units,
        database,
        since,
        until,
        by,
        top,
        false,
        interval.as_secs_f64(),
    )
}

/// The answer over `units` (seconds when `fine`, else minutes).
#[allow(clippy::too_many_arguments)]
fn answer_units(
    units: &[Unit<'_>],
    database: Option<&str>,
    since: u64,
    until: u64,
    by: By,
    top: usize,
    fine: bool,
    interval: f64,
) -> DbTime {
    let since = units.first().map_or(since, |u| u.at.max(since));
    let step = if fine {
        FINE_STEP
    } else {
        (until.saturating_sub(since) / MAX_STEPS)
            .div_ceil(60)
            .max(1)
            * 60
    };
    answer(Query {
        units,
        database,
        since,
        until,
        by,
        top,
        step,
        interval,
    })
}

/// One minute of counts, as the history store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct MinuteCounts {
    /// Its start, Unix seconds.
    pub at: u64,
    /// Samples taken per database.
    pub ticks: Vec<(Arc<str>, u32)>,
    /// Sessions seen, by what they were doing.
    pub counts: Vec<MinuteCount>,
}

/// Sessions seen doing one thing in one minute.
#[derive(Clone, Debug, PartialEq)]
pub struct MinuteCount {
    /// The database.
    pub database: Arc<str>,
    /// The wait class.
    pub class: WaitClass,
    /// The wait event.
    pub event: Option<Arc<str>>,
    /// The statement.
    pub statement: Arc<StatementRef>,
    /// The role.
    pub role: Arc<str>,
    /// The application.
    pub application: Arc<str>,
    /// The route of its tags.
    pub route: Option<Arc<str>>,
    /// Samples that saw it.
    pub samples: u32,
    /// The last trace ids its statements carried (the ring's minutes
    /// only: the history store keeps counts).
    pub trace_ids: Vec<Arc<str>>,
    /// The statements that blocked it (the ring's minutes only).
    pub blocked_by: Vec<Arc<StatementRef>>,
}

impl Inner {
    fn bytes(&self) -> usize {
        self.raw_bytes + self.minute_bytes + self.dict_bytes
    }

    fn intern(&mut self, text: &Arc<str>) -> Arc<str> {
        if let Some(known) = self.texts.get(text) {
            return known.clone();
        }
        self.dict_bytes += text.len() + INTERN_OVERHEAD;
        self.texts.insert(text.clone());
        text.clone()
    }

    fn intern_statement(&mut self, statement: &Arc<StatementRef>) -> Arc<StatementRef> {
        match self.statements.get(&statement.fingerprint) {
            // A later sample may know the query_id an earlier one lacked.
            Some(known) if known.query_id.is_some() || statement.query_id.is_none() => {
                known.clone()
            }
            _ => {
                if let Some(old) = self
                    .statements
                    .insert(statement.fingerprint, statement.clone())
                {
                    self.dict_bytes = self.dict_bytes.saturating_sub(old.bytes());
                }
                self.dict_bytes += statement.bytes();
                statement.clone()
            }
        }
    }

    fn intern_observation(&mut self, o: Observation) -> Observation {
        Observation {
            database: self.intern(&o.database),
            class: o.class,
            event: o.event.as_ref().map(|e| self.intern(e)),
            statement: self.intern_statement(&o.statement),
            role: self.intern(&o.role),
            application: self.intern(&o.application),
            route: o.route.as_ref().map(|r| self.intern(r)),
            trace_id: o.trace_id.as_ref().map(|t| self.intern(t)),
            blocked_by: o.blocked_by.as_ref().map(|s| self.intern_statement(s)),
        }
    }

    /// The statement new keys of a full minute are counted under.
    fn overflow(&mut self) -> Arc<StatementRef> {
        self.overflow
            .get_or_insert_with(|| {
                Arc::new(StatementRef {
                    fingerprint: 0,
                    query_id: None,
                    text: Arc::from("(other statements: over the history's memory cap)"),
                })
            })
            .clone()
    }

    fn count_into_minute(
        &mut self,
        at: u64,
        databases: &[Arc<str>],
        sessions: &[Observation],
        cut: u32,
        minute_cap: usize,
    ) {
        let start = at - at % 60;
        if self.minutes.back().is_none_or(|m| m.at < start) {
            self.minutes.push_back(Minute {
                at: start,
                ticks: HashMap::new(),
                cells: HashMap::new(),
                cut: 0,
                bytes: std::mem::size_of::<Minute>(),
            });
            self.minute_bytes += std::mem::size_of::<Minute>();
            self.forget_unused();
        }
        let overflow = self.overflow();
        let Some(minute) = self.minutes.back_mut() else {
            return;
        };
        let mut added = 0;
        for database in databases {
            let ticks = minute.ticks.entry(database.clone()).or_insert_with(|| {
                added += CELL_BYTES;
                0
            });
            *ticks += 1;
        }
        minute.cut += cut;
        let mut folded = 0;
        for o in sessions {
            let mut key = Key {
                database: o.database.clone(),
                class: o.class,
                event: o.event.clone(),
                statement: o.statement.clone(),
                role: o.role.clone(),
                application: o.application.clone(),
                route: o.route.clone(),
            };
            if !minute.cells.contains_key(&key) && minute.bytes + added + CELL_BYTES > minute_cap {
                key = Key {
                    statement: overflow.clone(),
                    event: None,
                    role: Arc::from(""),
                    application: Arc::from(""),
                    route: None,
                    ..key
                };
                folded += 1;
            }
            let cell = minute.cells.entry(key).or_insert_with(|| {
                added += CELL_BYTES;
                Cell::default()
            });
            cell.count += 1;
            if let Some(trace_id) = &o.trace_id
                && !cell.trace_ids.contains(trace_id)
            {
                if cell.trace_ids.len() == TRACE_IDS_PER_CELL {
                    cell.trace_ids.remove(0);
                } else {
                    added += std::mem::size_of::<Arc<str>>();
                }
                cell.trace_ids.push(trace_id.clone());
            }
            if let Some(blocker) = &o.blocked_by
                && cell.blocked_by.len() < BLOCKERS_PER_CELL
                && !cell.blocked_by.contains(blocker)
            {
                added += std::mem::size_of::<Arc<StatementRef>>();
                cell.blocked_by.push(blocker.clone());
            }
        }
        minute.bytes += added;
        self.minute_bytes += added;
        self.folded += folded;
    }

    /// Forgets the texts and statements no sample holds any more.
    fn forget_unused(&mut self) {
        let mut freed = 0;
        self.texts.retain(|text| {
            let used = Arc::strong_count(text) > 1;
            if !used {
                freed += text.len() + INTERN_OVERHEAD;
            }
            used
        });
        self.statements.retain(|_, statement| {
            let used = Arc::strong_count(statement) > 1;
            if !used {
                freed += statement.bytes();
            }
            used
        });
        self.dict_bytes = self.dict_bytes.saturating_sub(freed);
    }

    /// Drops whole seconds past `raw_for`, then the oldest seconds and
    /// minutes while over the bytes.
    fn trim(&mut self, now: u64, limits: Limits) {
        let keep_from = now.saturating_sub(limits.raw_for.as_secs());
        while self.seconds.front().is_some_and(|s| s.at < keep_from) {
            self.pop_second();
        }
        while self.bytes() > limits.max_bytes {
            if self.raw_bytes > limits.max_bytes / 4 && self.seconds.len() > 1 {
                self.pop_second();
            } else if self.minutes.len() > 1 {
                if let Some(minute) = self.minutes.pop_front() {
                    self.minute_bytes = self.minute_bytes.saturating_sub(minute.bytes);
                    self.dropped_minutes += 1;
                }
                self.forget_unused();
            } else if self.seconds.len() > 1 {
                self.pop_second();
            } else {
                break;
            }
        }
    }

    fn pop_second(&mut self) {
        if let Some(second) = self.seconds.pop_front() {
            self.raw_bytes = self.raw_bytes.saturating_sub(second.bytes());
        }
    }

    fn second_units(&self, since: u64, until: u64, database: Option<&str>) -> Vec<Unit<'_>> {
        self.seconds
            .iter()
            .filter(|s| s.at >= since && s.at < until)
            .map(|s| Unit {
                at: s.at,
                ticks: s
                    .databases
                    .iter()
                    .filter(|d| database.is_none_or(|want| &***d == want))
                    .map(|d| (d.clone(), 1))
                    .collect(),
                cells: s
                    .sessions
                    .iter()
                    .filter(|o| database.is_none_or(|want| &*o.database == want))
                    .map(|o| View {
                        database: &o.database,
                        class: o.class,
                        event: o.event.as_ref(),
                        statement: &o.statement,
                        role: &o.role,
                        application: &o.application,
                        route: o.route.as_ref(),
                        count: 1,
                        trace_ids: o.trace_id.as_slice(),
                        blocked_by: o.blocked_by.as_slice(),
                    })
                    .collect(),
                cut: s.cut,
            })
            .collect()
    }

    fn minute_units(&self, since: u64, until: u64, database: Option<&str>) -> Vec<Unit<'_>> {
        self.minutes
            .iter()
            .filter(|m| m.at.saturating_add(60) > since && m.at < until)
            .map(|m| Unit {
                at: m.at,
                ticks: m
                    .ticks
                    .iter()
                    .filter(|(d, _)| database.is_none_or(|want| &***d == want))
                    .map(|(d, n)| (d.clone(), *n))
                    .collect(),
                cells: m
                    .cells
                    .iter()
                    .filter(|(k, _)| database.is_none_or(|want| &*k.database == want))
                    .map(|(k, c)| View {
                        database: &k.database,
                        class: k.class,
                        event: k.event.as_ref(),
                        statement: &k.statement,
                        role: &k.role,
                        application: &k.application,
                        route: k.route.as_ref(),
                        count: c.count,
                        trace_ids: &c.trace_ids,
                        blocked_by: &c.blocked_by,
                    })
                    .collect(),
                cut: m.cut,
            })
            .collect()
    }
}

/// A second or a minute, as the answers read it.
struct Unit<'a> {
    at: u64,
    ticks: Vec<(Arc<str>, u32)>,
    cells: Vec<View<'a>>,
    cut: u32,
}

/// Sessions seen doing one thing, from a second or a minute.
struct View<'a> {
    database: &'a Arc<str>,
    class: WaitClass,
    event: Option<&'a Arc<str>>,
    statement: &'a Arc<StatementRef>,
    role: &'a Arc<str>,
    application: &'a Arc<str>,
    route: Option<&'a Arc<str>>,
    count: u32,
    trace_ids: &'a [Arc<str>],
    blocked_by: &'a [Arc<StatementRef>],
}

struct Query<'a, 'u> {
    units: &'a [Unit<'u>],
    database: Option<&'a str>,
    since: u64,
    until: u64,
    by: By,
    top: usize,
    step: u64,
    interval: f64,
}

#[derive(Default)]
struct RowSum {
    aas: f64,
    samples: u64,
    classes: [f64; WaitClass::ALL.len()],
    fingerprint: Option<u64>,
    query_id: Option<i64>,
    trace_ids: Vec<(u64, Arc<str>)>,
    blocked_by: Vec<Arc<str>>,
}

/// Keeps `trace_id` seen at `at` among the row's newest
/// [`TRACE_IDS_PER_ROW`] distinct ids: a few comparisons per id, however
/// many distinct ids a hot statement carries (one per request).
fn keep_newest(kept: &mut Vec<(u64, Arc<str>)>, at: u64, trace_id: &Arc<str>) {
    if let Some(known) = kept.iter_mut().find(|(_, t)| t == trace_id) {
        known.0 = known.0.max(at);
        return;
    }
    if kept.len() < TRACE_IDS_PER_ROW {
        kept.push((at, trace_id.clone()));
        return;
    }
    if let Some(oldest) = kept.iter_mut().min_by_key(|(seen, _)| *seen)
        && oldest.0 < at
    {
        *oldest = (at, trace_id.clone());
    }
}

fn class_index(class: WaitClass) -> usize {
    WaitClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or(WaitClass::ALL.len() - 1)
}

/// The key of a view's row.
fn row_key(view: &View<'_>, by: By) -> String {
    match by {
        By::Wait => match view.event {
            Some(event) => format!("{}:{event}", view.class.as_str()),
            None => view.class.as_str().to_owned(),
        },
        By::Statement => view.statement.text.to_string(),
        By::Route => view
            .route
            .map_or_else(|| "(no route tag)".to_owned(), |r| r.to_string()),
        By::Application => {
            if view.application.is_empty() {
                "(no application_name)".to_owned()
            } else {
                view.application.to_string()
            }
        }
        By::Role => view.role.to_string(),
    }
}

fn answer(q: Query<'_, '_>) -> DbTime {
    // A sample stands for one interval of each database it covered; a
    // database's AAS is its sessions seen over its samples, so each
    // database's sessions weigh 1 / its samples in the range (or step).
    let mut ticks: HashMap<&str, u64> = HashMap::new();
    for unit in q.units {
        for (database, n) in &unit.ticks {
            *ticks.entry(database).or_default() += u64::from(*n);
        }
    }
    let samples = ticks.values().copied().max().unwrap_or(0);
    let weight = |database: &str| ticks.get(database).map_or(0.0, |n| 1.0 / *n as f64);
    let mut rows: HashMap<String, RowSum> = HashMap::new();
    let mut total_aas = 0.0;
    let mut total_samples = 0u64;
    let mut cut = 0u64;
    for unit in q.units {
        cut += u64::from(unit.cut);
        for view in &unit.cells {
            let aas = f64::from(view.count) * weight(view.database);
            total_aas += aas;
            total_samples += u64::from(view.count);
            let row = rows.entry(row_key(view, q.by)).or_default();
            row.aas += aas;
            row.samples += u64::from(view.count);
            row.classes[class_index(view.class)] += aas;
            if q.by == By::Statement {
                row.fingerprint = Some(view.statement.fingerprint);
                row.query_id = row.query_id.or(view.statement.query_id);
            }
            for trace_id in view.trace_ids {
                keep_newest(&mut row.trace_ids, unit.at, trace_id);
            }
            for blocker in view.blocked_by {
                if row.blocked_by.len() < BLOCKERS_PER_ROW
                    && !row.blocked_by.contains(&blocker.text)
                {
                    row.blocked_by.push(blocker.text.clone());
                }
            }
        }
    }
    let range_seconds = |samples: u64| samples as f64 * q.interval;
    let finish = |key: String, row: RowSum| {
        let mut waits: Vec<ClassTime> = WaitClass::ALL
            .iter()
            .zip(row.classes)
            .filter(|(_, aas)| *aas > 0.0)
            .map(|(class, aas)| ClassTime {
                class: class.as_str().to_owned(),
                aas,
            })
            .collect();
        waits.sort_by(|a, b| b.aas.total_cmp(&a.aas));
        let mut trace_ids = row.trace_ids;
        trace_ids.sort_by_key(|t| std::cmp::Reverse(t.0));
        DbTimeRow {
            key,
            fingerprint: row.fingerprint.map(|f| format!("{f:016x}")),
            query_id: row.query_id,
            seconds: range_seconds(row.samples),
            aas: row.aas,
            share: if total_aas > 0.0 {
                row.aas / total_aas
            } else {
                0.0
            },
            waits,
            trace_ids: trace_ids
                .into_iter()
                .take(TRACE_IDS_PER_ROW)
                .map(|(_, t)| t.to_string())
                .collect(),
            blocked_by: row.blocked_by.iter().map(|t| t.to_string()).collect(),
        }
    };
    let mut sorted: Vec<(String, RowSum)> = rows.into_iter().collect();
    sorted.sort_by(|a, b| b.1.aas.total_cmp(&a.1.aas).then_with(|| a.0.cmp(&b.0)));
    let rest: Vec<(String, RowSum)> = if sorted.len() > q.top {
        sorted.split_off(q.top)
    } else {
        Vec::new()
    };
    let other = (!rest.is_empty()).then(|| {
        let mut sum = RowSum::default();
        for (_, row) in rest {
            sum.aas += row.aas;
            sum.samples += row.samples;
            for (total, aas) in sum.classes.iter_mut().zip(row.classes) {
                *total += aas;
            }
        }
        finish("other".to_owned(), sum)
    });
    let top = sorted
        .into_iter()
        .map(|(key, row)| finish(key, row))
        .collect();
    DbTime {
        database: q.database.map(str::to_owned),
        since: i64::try_from(q.since).unwrap_or(i64::MAX),
        until: i64::try_from(q.until).unwrap_or(i64::MAX),
        by: q.by,
        interval_seconds: q.interval,
        samples,
        seconds: range_seconds(total_samples),
        aas: total_aas,
        step_seconds: q.step,
        series: series(&q),
        top,
        other,
        cut_comments: cut,
    }
}

/// AAS by wait class at each step of the range.
fn series(q: &Query<'_, '_>) -> Vec<AasPoint> {
    let step = q.step.max(1);
    let first = q.since - q.since % step;
    let mut points = Vec::new();
    let mut at = first;
    while at < q.until && points.len() <= MAX_STEPS as usize * 2 {
        let end = at.saturating_add(step);
        let units = q.units.iter().filter(|u| u.at >= at && u.at < end);
        let mut ticks: HashMap<&str, u64> = HashMap::new();
        let mut by_class = [0.0f64; WaitClass::ALL.len()];
        let units: Vec<&Unit<'_>> = units.collect();
        for unit in &units {
            for (database, n) in &unit.ticks {
                *ticks.entry(database).or_default() += u64::from(*n);
            }
        }
        for unit in &units {
            for view in &unit.cells {
                let Some(n) = ticks.get(&**view.database) else {
                    continue;
                };
                by_class[class_index(view.class)] += f64::from(view.count) / *n as f64;
            }
        }
        if !ticks.is_empty() {
            points.push(AasPoint {
                at: i64::try_from(at).unwrap_or(i64::MAX),
                classes: WaitClass::ALL
                    .iter()
                    .zip(by_class)
                    .filter(|(_, aas)| *aas > 0.0)
                    .map(|(class, aas)| ClassTime {
                        class: class.as_str().to_owned(),
                        aas,
                    })
                    .collect(),
            });
        }
        at = end;
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(text: &str) -> Arc<StatementRef> {
        Arc::new(StatementRef::of_text(text, None))
    }

    fn session(database: &str, wait: Option<&str>, text: &str, route: Option<&str>) -> Observation {
        Observation {
            database: Arc::from(database),
            class: WaitClass::of(wait),
            event: wait.map(|_| Arc::from("DataFileRead")),
            statement: statement(text),
            role: Arc::from("app"),
            application: Arc::from("shop"),
            route: route.map(Arc::from),
            trace_id: None,
            blocked_by: None,
        }
    }

    fn dbs(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn aas_is_sessions_seen_over_samples_and_shares_add_up() {
        let ring = AshRing::new(Limits::default());
        // 120 samples: two sessions on CPU in every one, one on IO in
        // every other one: AAS 2.5, CPU 80 %.
        for s in 0..120u64 {
            let mut sessions = vec![
                session("shop", None, "SELECT 1", Some("/a")),
                session("shop", None, "SELECT 2", Some("/b")),
            ];
            if s % 2 == 0 {
                sessions.push(session("shop", Some("IO"), "SELECT 3", Some("/a")));
            }
            ring.push(1_000_020 + s, &dbs(&["shop"]), sessions, 0);
        }
        let answer = ring.db_time(Some("shop"), 1_000_020, 1_000_140, By::Wait, 10);
        assert_eq!(answer.samples, 120);
        assert!((answer.aas - 2.5).abs() < 1e-9, "{}", answer.aas);
        assert!((answer.seconds - 300.0).abs() < 1e-9);
        assert_eq!(answer.top[0].key, "CPU");
        assert!((answer.top[0].share - 0.8).abs() < 1e-9);
        assert_eq!(answer.top[1].key, "IO:DataFileRead");
        let by_route = ring.db_time(Some("shop"), 1_000_020, 1_000_140, By::Route, 10);
        assert_eq!(by_route.top[0].key, "/a");
        assert!((by_route.top[0].aas - 1.5).abs() < 1e-9);
        assert_eq!(by_route.top[0].waits[0].class, "CPU");
        assert_eq!(by_route.top[0].waits[1].class, "IO");
        // The series: each 10 s step averages 2.5 sessions.
        assert_eq!(answer.step_seconds, FINE_STEP);
        let point = &answer.series[1];
        let total: f64 = point.classes.iter().map(|c| c.aas).sum();
        assert!((total - 2.5).abs() < 1e-9, "{point:?}");
        // Another database's samples count for it alone.
        assert_eq!(
            ring.db_time(Some("other"), 1_000_020, 1_000_140, By::Wait, 10)
                .aas,
            0.0
        );
    }

    #[test]
    fn a_longer_range_reads_the_minutes_and_the_rest_is_other() {
        let ring = AshRing::new(Limits {
            raw_for: Duration::from_secs(60),
            ..Limits::default()
        });
        for s in 0..1_800u64 {
            let text = format!("SELECT * FROM t{}", s % 30);
            ring.push(
                2_000_040 + s,
                &dbs(&["a", "b"]),
                vec![session("a", None, &text, None)],
                0,
            );
        }
        let stats = ring.stats();
        assert!(stats.seconds <= 61, "{stats:?}");
        assert_eq!(stats.minutes, 30);
        let answer = ring.db_time(None, 2_000_000, 2_001_900, By::Statement, 5);
        assert_eq!(answer.step_seconds, 60);
        assert_eq!(answer.top.len(), 5);
        let other = answer.other.expect("other");
        assert!((other.share - 25.0 / 30.0).abs() < 0.01, "{}", other.share);
        // Database a: 1 session per sample; b: none. Together: 1.
        assert!((answer.aas - 1.0).abs() < 0.01, "{}", answer.aas);
        assert!(answer.top[0].fingerprint.is_some());
        let counts = ring.closed_minutes(0, 2_000_040 + 1_799);
        assert_eq!(counts.len(), 29, "the last minute is still open");
        assert_eq!(counts[1].counts.iter().map(|c| c.samples).sum::<u32>(), 60);
    }

    #[test]
    fn minutes_answer_as_the_ring_does() {
        let ring = AshRing::new(Limits {
            raw_for: Duration::from_secs(60),
            ..Limits::default()
        });
        for s in 0..600u64 {
            let mut sessions = vec![session("a", None, "SELECT 1", Some("/a"))];
            if s.is_multiple_of(3) {
                sessions.push(session("a", Some("IO"), "SELECT 2", Some("/b")));
            }
            ring.push(5_000_040 + s, &dbs(&["a", "b"]), sessions, 0);
        }
        let minutes = ring.closed_minutes(0, 5_000_640);
        for by in [
            By::Wait,
            By::Statement,
            By::Route,
            By::Application,
            By::Role,
        ] {
            let from_ring = ring.db_time(Some("a"), 5_000_040, 5_000_640, by, 10);
            let from_minutes = answer_minutes(
                &minutes,
                Some("a"),
                5_000_040,
                5_000_640,
                by,
                10,
                Duration::from_secs(1),
            );
            assert_eq!(from_ring.top, from_minutes.top, "{by:?}");
            assert_eq!(from_ring.series, from_minutes.series, "{by:?}");
            assert!(
                (from_minutes.aas - 4.0 / 3.0).abs() < 0.01,
                "{}",
                from_minutes.aas
            );
        }
    }

    #[test]
    fn the_ring_stays_within_its_bytes_whatever_the_statements() {
        let limits = Limits {
            max_bytes: 256 << 10,
            ..Limits::default()
        };
        let ring = AshRing::new(limits);
        for s in 0..3_600u64 {
            // Every session runs a statement never seen before.
            let sessions = (0..20)
                .map(|i| session("a", None, &format!("SELECT {s}_{i} FROM t{s}_{i}"), None))
                .collect();
            ring.push(3_000_000 + s, &dbs(&["a"]), sessions, 0);
            let stats = ring.stats();
            assert!(stats.bytes <= limits.max_bytes, "{stats:?} at {s}");
        }
        let stats = ring.stats();
        assert!(stats.dropped_minutes > 0 || stats.folded > 0, "{stats:?}");
        // Still answers, with what it kept.
        let answer = ring.db_time(None, 3_003_000, 3_003_600, By::Statement, 10);
        assert!(answer.aas > 0.0);
    }

    #[test]
    fn each_database_answered_in_one_pass_as_alone() {
        let ring = AshRing::new(Limits::default());
        for s in 0..300u64 {
            let mut sessions = vec![session("a", None, "SELECT 1", Some("/a"))];
            if s % 3 == 0 {
                sessions.push(session("b", Some("IO"), "SELECT 2", None));
            }
            ring.push(5_000_000 + s, &dbs(&["a", "b", "c"]), sessions, 1);
        }
        for (since, until) in [(5_000_000, 5_000_300), (4_990_000, 5_000_300)] {
            for by in [By::Wait, By::Statement, By::Route] {
                let each = ring.db_time_each(since, until, by, 5);
                let names: Vec<&str> = each.iter().map(|(d, _)| &**d).collect();
                assert_eq!(names, ["a", "b", "c"]);
                for (database, answer) in each {
                    assert_eq!(
                        answer,
                        ring.db_time(Some(&database), since, until, by, 5),
                        "{database} {by:?} {since}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_row_keeps_its_newest_trace_ids_whatever_their_number() {
        let mut kept = Vec::new();
        for at in 0..10_000u64 {
            keep_newest(&mut kept, at, &Arc::from(format!("{at:032x}")));
        }
        keep_newest(&mut kept, 9_999, &Arc::from(format!("{:032x}", 9_999)));
        let mut ats: Vec<u64> = kept.iter().map(|(at, _)| *at).collect();
        ats.sort_unstable();
        assert_eq!(ats, [9_995, 9_996, 9_997, 9_998, 9_999]);
    }

    #[test]
    fn trace_ids_and_blockers_reach_their_rows() {
        let ring = AshRing::new(Limits::default());
        let mut waiting = session("a", Some("Lock"), "UPDATE t SET v = $1", Some("/pay"));
        waiting.event = Some(Arc::from("transactionid"));
        waiting.trace_id = Some(Arc::from("4bf92f3577b34da6a3ce929d0e0e4736"));
        waiting.blocked_by = Some(statement("DELETE FROM t"));
        ring.push(4_000_000, &dbs(&["a"]), vec![waiting], 0);
        let answer = ring.db_time(None, 4_000_000, 4_000_060, By::Route, 10);
        let row = &answer.top[0];
        assert_eq!(row.key, "/pay");
        assert_eq!(row.trace_ids, ["4bf92f3577b34da6a3ce929d0e0e4736"]);
        assert_eq!(row.blocked_by, ["delete from t"]);
        let by_wait = ring.db_time(None, 4_000_000, 4_000_060, By::Wait, 10);
        assert_eq!(by_wait.top[0].key, "Lock:transactionid");
    }
}
