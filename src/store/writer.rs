//! The writer thread: the only connection that writes. It opens the file
//! (creating it 0600 under a 0700 directory, locking out a second agent,
//! checking it and migrating it), applies each batch in one transaction,
//! and every few minutes runs retention and the size cap. A write error
//! drops the batch and counts it; a corrupt file turns the store off, and
//! the thread then only answers and drops until it is closed.

use std::collections::HashMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, params};

use super::records::{MAX_DETAIL_BYTES, MAX_LABEL_BYTES, MAX_TEXT_BYTES, cut};
use super::{
    LOCK_NAME, Message, Shared, StoreError, StoreSettings, StoreState, Write, file_bytes,
    retention, schema,
};
use crate::metrics::store::DropReason;

/// How long the thread sleeps between looks at its clock when idle.
const TICK: Duration = Duration::from_secs(5);
/// A warning about failing writes is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(300);
/// Series ids remembered (statements, routes, relations); past it the
/// cache starts over.
const MAX_CACHED_IDS: usize = 100_000;

pub(super) fn run(settings: &StoreSettings, shared: &Arc<Shared>, rx: &Receiver<Message>) {
    let opened = open(settings, shared.max_bytes);
    let (conn, _lock) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(
                path = %shared.path.display(),
                %error,
                "the history store is off; perfscope keeps its in-memory views"
            );
            shared.set_state(StoreState::Unavailable(error.to_string()));
            drain(shared, rx);
            return;
        }
    };
    shared.set_state(StoreState::Writing);
    shared.metrics.bytes.set(as_i64(file_bytes(&shared.path)));
    let mut writer = Writer {
        conn,
        ids: HashMap::new(),
        bounds: HashMap::new(),
        last_warning: None,
    };
    let mut last_maintenance = shared.clock.now();
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Message::Write(write)) => {
                if let Err(error) = writer.apply(write) {
                    if writer.failed(shared, &error) {
                        drain(shared, rx);
                        return;
                    }
                    if error.sqlite_error_code() == Some(ErrorCode::DiskFull) {
                        writer.maintain(shared);
                        last_maintenance = shared.clock.now();
                    }
                } else {
                    shared.metrics.writes.inc();
                }
            }
            Ok(Message::Flush(done)) => {
                let _ = done.send(());
            }
            Ok(Message::Maintain(done)) => {
                writer.maintain(shared);
                last_maintenance = shared.clock.now();
                let _ = done.send(());
            }
            Ok(Message::Close) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = shared.clock.now();
        if now - last_maintenance >= settings.maintain_every {
            writer.maintain(shared);
            last_maintenance = now;
        }
    }
    let _ = retention::checkpoint(&writer.conn);
}

/// After a failure: answers flushes and drops writes until closed.
fn drain(shared: &Shared, rx: &Receiver<Message>) {
    while let Ok(message) = rx.recv() {
        match message {
            Message::Write(_) => shared.metrics.drop_one(DropReason::unavailable),
            Message::Flush(done) | Message::Maintain(done) => {
                let _ = done.send(());
            }
            Message::Close => return,
        }
    }
}

/// Opens the file for writing: see the module docs.
fn open(settings: &StoreSettings, max_bytes: u64) -> Result<(Connection, File), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&settings.dir)?;
    let lock_path = settings.dir.join(LOCK_NAME);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)?;
    if !try_lock(&lock)? {
        return Err(StoreError::Locked(lock_path));
    }
    let path = settings.dir.join(super::FILE_NAME);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the history store was readable by others: now 0600");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
        }
        Err(error) => return Err(error.into()),
    }
    let mut conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(classify)?;
    prepare(&mut conn, max_bytes).map_err(|error| match error {
        StoreError::Sqlite(error) => classify(error),
        other => other,
    })?;
    Ok((conn, lock))
}

/// An exclusive, non-blocking `flock` on `file`, released when it closes
/// (or the process dies); false when another process holds it.
fn try_lock(file: &File) -> Result<bool, std::io::Error> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows open; no memory
    // is shared with the call.
    let status = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if status == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

fn prepare(conn: &mut Connection, max_bytes: u64) -> Result<(), StoreError> {
    // Only takes effect on a new, empty file: before the first table.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    let _: i64 = conn.query_row("PRAGMA journal_size_limit = 4194304", [], |row| row.get(0))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    super::memory::bound(conn, super::memory::WRITER_CACHE_KIB)?;
    let check: String = conn.query_row("PRAGMA quick_check(1)", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(StoreError::Corrupt(cut(&check, 200).to_owned()));
    }
    schema::migrate(conn)?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    // The cap with a margin between two maintenance runs; past it writes
    // fail as "full" (dropped and counted) until retention makes room.
    let pages = (as_i64(max_bytes) / 10 * 11 / page_size.max(512)).max(64);
    let _: i64 = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
        row.get(0)
    })?;
    Ok(())
}

/// A damaged file is [`StoreError::Corrupt`]; anything else stays itself.
fn classify(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt(error.to_string())
        }
        _ => StoreError::Sqlite(error),
    }
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn micros(ms: f64) -> i64 {
    if ms.is_finite() {
        (ms * 1_000.0).round() as i64
    } else {
        0
    }
}

struct Writer {
    conn: Connection,
    /// (kind, database, key) → (series id, whether its text is stored).
    ids: HashMap<(&'static str, Arc<str>, String), (i64, bool)>,
    /// Bounds (as stored text) → id.
    bounds: HashMap<String, i64>,
    last_warning: Option<Instant>,
}

impl Writer {
    /// Counts a failed batch; true when the store must stop (corrupt).
    fn failed(&mut self, shared: &Shared, error: &rusqlite::Error) -> bool {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                tracing::error!(path = %shared.path.display(), %error, "the history store is corrupt and now off; move the file away to start a new one");
                shared.metrics.drop_one(DropReason::unavailable);
                shared.set_state(StoreState::Unavailable(format!(
                    "the store file is corrupt ({error})"
                )));
                true
            }
            Some(ErrorCode::DiskFull) => {
                shared.metrics.drop_one(DropReason::full);
                self.warn(shared, error, "the history store is full (its cap or the disk): dropping until retention makes room");
                false
            }
            _ => {
                shared.metrics.drop_one(DropReason::error);
                self.warn(shared, error, "a batch of history was not written");
                false
            }
        }
    }

    fn warn(&mut self, shared: &Shared, error: &rusqlite::Error, message: &str) {
        if self
            .last_warning
            .is_none_or(|at| at.elapsed() >= WARN_EVERY)
        {
            self.last_warning = Some(Instant::now());
            tracing::warn!(path = %shared.path.display(), %error, "{message}");
        }
    }

    fn maintain(&mut self, shared: &Shared) {
        let now = shared.clock.now();
        let started = Instant::now();
        match retention::run(&mut self.conn, now, shared.max_bytes) {
            Ok(outcome) => {
                if outcome.series_removed > 0 {
                    self.ids.clear();
                }
                tracing::debug!(?outcome, elapsed = ?started.elapsed(), "history store maintained");
            }
            Err(error) => {
                if error.sqlite_error_code().is_some_and(|code| {
                    matches!(code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
                }) {
                    let _ = self.failed(shared, &error);
                } else {
                    self.warn(shared, &error, "history store maintenance failed");
                }
            }
        }
        shared.metrics.bytes.set(as_i64(file_bytes(&shared.path)));
    }

    fn apply(&mut self, write: Write) -> Result<(), rusqlite::Error> {
        let tx = self.conn.transaction()?;
        match write {
            Write::Statements { at, database, rows } => {
                for row in rows {
                    let key = row.queryid.to_string();
                    let text = row.text.as_deref().map(|t| cut(t, MAX_TEXT_BYTES));
                    let series = series_id(&tx, &mut self.ids, "statement", &database, key, text)?;
                    tx.prepare_cached(
                        "INSERT INTO statement_points
                            (tier, series, ts, calls, total_us, rows, shared_hit, shared_read, temp_written, io_us)
                         VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT (tier, series, ts) DO UPDATE SET
                            calls = calls + excluded.calls, total_us = total_us + excluded.total_us,
                            rows = rows + excluded.rows, shared_hit = shared_hit + excluded.shared_hit,
                            shared_read = shared_read + excluded.shared_read,
                            temp_written = temp_written + excluded.temp_written,
                            io_us = io_us + excluded.io_us",
                    )?
                    .execute(params![
                        series,
                        at,
                        row.calls,
                        micros(row.total_ms),
                        row.rows,
                        row.shared_hit,
                        row.shared_read,
                        row.temp_written,
                        micros(row.io_ms),
                    ])?;
                }
            }
            Write::Routes { at, bounds, rows } => {
                let bounds_id = bounds_id(&tx, &mut self.bounds, &bounds)?;
                let no_database: Arc<str> = Arc::from("");
                for row in rows {
                    let key = format!(
                        "{} {}",
                        cut(&row.method, 16),
                        cut(&row.route, MAX_LABEL_BYTES)
                    );
                    let series = series_id(&tx, &mut self.ids, "route", &no_database, key, None)?;
                    retention::add_route_point(
                        &tx,
                        0,
                        series,
                        at,
                        &retention::RouteSums {
                            bounds: bounds_id,
                            requests: i64::try_from(row.requests).unwrap_or(i64::MAX),
                            errors: i64::try_from(row.errors).unwrap_or(i64::MAX),
                            sum_us: micros(row.sum_seconds * 1_000.0),
                            buckets: row.buckets,
                        },
                    )?;
                }
            }
            Write::Ash(minute) => {
                let ids = &mut self.ids;
                super::ash::write(&tx, &minute.bounded(), |tx, database, key, text| {
                    series_id(tx, ids, super::ash::KIND, database, key, Some(text))
                })?;
            }
            Write::Runtime(minute) => retention::add_runtime_point(
                &tx,
                0,
                minute.at,
                &retention::RuntimeSums::minute(&minute),
            )?,
            Write::Sizes { at, database, rows } => {
                let day = at.div_euclid(86_400);
                for row in rows {
                    let key = cut(&row.name, MAX_LABEL_BYTES).to_owned();
                    let series =
                        series_id(&tx, &mut self.ids, row.kind.as_str(), &database, key, None)?;
                    tx.prepare_cached(
                        "INSERT INTO sizes (series, day, bytes) VALUES (?1, ?2, ?3)
                         ON CONFLICT (series, day) DO UPDATE SET bytes = excluded.bytes",
                    )?
                    .execute(params![series, day, row.bytes])?;
                }
            }
            Write::Event(event) => {
                tx.prepare_cached(
                    "INSERT INTO events (ts, kind, database, label, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    event.at,
                    event.kind.as_str(),
                    event.database.as_deref().map(|d| cut(d, MAX_LABEL_BYTES)),
                    cut(&event.label, MAX_LABEL_BYTES),
                    event.detail.as_deref().map(|d| cut(d, MAX_DETAIL_BYTES)),
                ])?;
            }
            Write::Finding(change) => {
                let key = cut(&change.key, MAX_LABEL_BYTES);
                let open: Option<i64> = tx
                    .prepare_cached("SELECT id FROM findings WHERE key = ?1 AND closed IS NULL")?
                    .query_row([key], |row| row.get(0))
                    .map(Some)
                    .or_else(|error| match error {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        other => Err(other),
                    })?;
                match (change.open, open) {
                    (true, None) => {
                        tx.prepare_cached(
                            "INSERT INTO findings (key, severity, summary, opened) VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![
                            key,
                            cut(&change.severity, 32),
                            cut(&change.summary, MAX_LABEL_BYTES * 4),
                            change.at
                        ])?;
                    }
                    (true, Some(id)) => {
                        tx.prepare_cached(
                            "UPDATE findings SET severity = ?2, summary = ?3 WHERE id = ?1",
                        )?
                        .execute(params![
                            id,
                            cut(&change.severity, 32),
                            cut(&change.summary, MAX_LABEL_BYTES * 4)
                        ])?;
                    }
                    (false, Some(id)) => {
                        tx.prepare_cached("UPDATE findings SET closed = ?2 WHERE id = ?1")?
                            .execute(params![id, change.at])?;
                    }
                    (false, None) => {}
                }
            }
        }
        tx.commit()
    }
}

/// The id of a series, created on first sight; its text stored once.
fn series_id(
    tx: &Transaction<'_>,
    ids: &mut HashMap<(&'static str, Arc<str>, String), (i64, bool)>,
    kind: &'static str,
    database: &Arc<str>,
    key: String,
    text: Option<&str>,
) -> Result<i64, rusqlite::Error> {
    let cache_key = (kind, database.clone(), key);
    if let Some(&(id, has_text)) = ids.get(&cache_key)
        && (has_text || text.is_none())
    {
        return Ok(id);
    }
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO series (kind, database, key, text) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind, database, key) DO UPDATE SET text = coalesce(excluded.text, series.text)
             RETURNING id",
        )?
        .query_row(
            params![kind, cut(database, MAX_LABEL_BYTES), &cache_key.2, text],
            |row| row.get(0),
        )?;
    if ids.len() >= MAX_CACHED_IDS {
        ids.clear();
    }
    ids.insert(cache_key, (id, text.is_some()));
    Ok(id)
}

/// The id of a set of histogram bounds.
fn bounds_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    bounds: &[f64],
) -> Result<i64, rusqlite::Error> {
    let text = retention::bounds_text(bounds);
    if let Some(&id) = cache.get(&text) {
        return Ok(id);
    }
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO bounds (upper) VALUES (?1)
             ON CONFLICT (upper) DO UPDATE SET upper = excluded.upper RETURNING id",
        )?
        .query_row([&text], |row| row.get(0))?;
    cache.insert(text, id);
    Ok(id)
}
