//! The history store: what perfscope learns over time, kept across
//! restarts in one SQLite file under `PERFSCOPE_DATA_DIR`: statement
//! deltas per reader pass, route latency, the runtime and the active
//! session history per minute,
//! sizes per day, findings as they open and close, and events (deploys,
//! resets, indexes created, maintenance, plan changes).
//!
//! Why SQLite (bundled through `rusqlite`): it is the best-kept embedded
//! engine there is, crash-safe in WAL mode, its `user_version` carries the
//! schema version, `auto_vacuum = INCREMENTAL` gives freed pages back to
//! the file system (deletes alone do not shrink a file), `max_page_count`
//! turns the size cap into a hard limit, and the compare and rollup
//! queries are SQL rather than hand-written scans. The cost is a C
//! compile of about a minute on a cold build.
//!
//! Nothing waits on it: recorders hand batches to [`Store::record`], which
//! never blocks (a bounded queue; a full queue drops and counts), and one
//! writer thread owns the write connection, runs retention, downsampling
//! and the size cap (`retention.rs`). Reads run on a couple of reader
//! threads, each with its read-only connection (`readers.rs`), behind a
//! semaphore so no number of page loads can take more; SQLite's page
//! caches and heap are bounded (`memory.rs`). A file that cannot be
//! opened, is corrupt, is locked by another agent or was written by a
//! newer perfscope is reported (log, `perfscope_store_up` 0, the status in
//! the API) and the agent keeps working on its in-memory views.

pub mod ash;
mod memory;
pub mod read;
mod readers;
mod records;
mod retention;
mod schema;
pub mod span;
#[cfg(test)]
mod tests;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

use crate::metrics::store::{DropReason, StoreMetrics};

pub use read::{
    EventRow, FindingRow, Range, RoutePoint, RouteTotal, RuntimeStep, SizePoint, StatementPoint,
    StatementTotal,
};
pub use records::{
    ASH_OTHER, AshCount, AshMinute, Event, EventKind, FindingChange, MAX_ASH_KEYS_PER_MINUTE,
    MAX_DETAIL_BYTES, MAX_LABEL_BYTES, MAX_TEXT_BYTES, RAW_POINT_SECS, RelationKind, RelationSize,
    RouteDelta, RuntimeMinute, StatementDelta, Write, cut,
};
pub use retention::{TIERS, Tier};
pub use schema::VERSION as SCHEMA_VERSION;

/// The file's name under the data directory.
pub const FILE_NAME: &str = "perfscope-history.sqlite3";
/// The lock file that keeps a second agent off the same store.
pub const LOCK_NAME: &str = "perfscope-history.lock";
/// Batches the writer's queue holds before recorders' batches are dropped.
pub const QUEUE: usize = 256;
/// Read-only connections (and concurrent reads).
pub const READERS: usize = 2;
/// How long a read waits for the file to open and for a free connection
/// before giving up.
pub const READ_WAIT: Duration = Duration::from_secs(5);

/// The store's clock, Unix seconds: the system's, or a test's.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(unix_now))
    }

    /// A clock read from `now`.
    pub fn from_fn(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// Now, Unix seconds.
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// Now, Unix seconds.
pub fn unix_now() -> i64 {
    unix_seconds(std::time::SystemTime::now())
}

/// A time as Unix seconds (0 before the epoch).
pub fn unix_seconds(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where and how big.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// The data directory (created 0700 if missing).
    pub dir: PathBuf,
    /// The cap on the file's size, bytes.
    pub max_bytes: u64,
    /// The clock retention runs by.
    pub clock: Clock,
    /// How often retention and the size cap run, by that clock, seconds.
    pub maintain_every: i64,
}

impl StoreSettings {
    /// A store in `dir` capped at `max_bytes`, on the system clock,
    /// maintained every five minutes.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            max_bytes,
            clock: Clock::system(),
            maintain_every: 300,
        }
    }
}

/// Why the store is not writing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file system said no.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A newer perfscope wrote the file.
    #[error(
        "the store's schema version {found} is newer than this perfscope's ({known}): refusing to open it; run a newer perfscope or move the file away"
    )]
    Newer {
        /// The file's version.
        found: i64,
        /// This build's.
        known: i64,
    },
    /// `PRAGMA quick_check` found damage.
    #[error("the store file is corrupt ({0}); move it away to start a new one")]
    Corrupt(String),
    /// Another process holds the store.
    #[error("another process holds {0} (a second agent on the same PERFSCOPE_DATA_DIR?)")]
    Locked(PathBuf),
    /// Not open (yet, or any more).
    #[error("the history store is not available: {0}")]
    Unavailable(String),
    /// Every read connection stayed busy.
    #[error("the history store is busy; try again")]
    Busy,
}

/// The store's state, as the API serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreState {
    /// Opening (checking and migrating the file).
    Opening,
    /// Writing.
    Writing,
    /// Not writing, and why.
    Unavailable(String),
}

/// What the writer thread is told.
enum Message {
    Write(Write),
    /// Answered once every message before it is written.
    Flush(std::sync::mpsc::Sender<()>),
    /// Runs retention and the size cap now, then answers.
    Maintain(std::sync::mpsc::Sender<()>),
    Close,
}

struct Shared {
    path: PathBuf,
    max_bytes: u64,
    state: Mutex<StoreState>,
    /// Woken when the state leaves `Opening`, so a read that comes while
    /// the file opens waits for it instead of failing.
    settled: tokio::sync::Notify,
    readers: readers::Readers,
    read_slots: Arc<tokio::sync::Semaphore>,
    metrics: Arc<StoreMetrics>,
    clock: Clock,
}

impl Shared {
    fn set_state(&self, state: StoreState) {
        self.metrics
            .up
            .set(i64::from(matches!(state, StoreState::Writing)));
        let settled = !matches!(state, StoreState::Opening);
        *self.state.lock() = state;
        if settled {
            self.settled.notify_waiters();
        }
    }

    /// The state once it has left `Opening`, waiting up to `until`.
    async fn settled_state(&self, until: tokio::time::Instant) -> StoreState {
        loop {
            let woken = self.settled.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let state = self.state.lock().clone();
            if !matches!(state, StoreState::Opening) {
                return state;
            }
            if tokio::time::timeout_at(until, woken).await.is_err() {
                return StoreState::Opening;
            }
        }
    }
}

/// The store's handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    tx: SyncSender<Message>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.shared.path)
            .field("state", &*self.shared.state.lock())
            .finish_non_exhaustive()
    }
}

/// The writer thread; [`StoreTask::join`] stops it after it wrote what it
/// holds.
#[derive(Debug)]
pub struct StoreTask {
    thread: std::thread::JoinHandle<()>,
    tx: SyncSender<Message>,
}

impl StoreTask {
    /// Writes what is queued, closes the file and waits for the thread.
    pub async fn join(self) {
        let Self { thread, tx } = self;
        let _ = tokio::task::spawn_blocking(move || {
            let _ = tx.send(Message::Close);
            let _ = thread.join();
        })
        .await;
    }
}

impl Store {
    /// Starts the writer thread, which opens (and if needed creates and
    /// migrates) the file; until then batches wait in the queue. Never
    /// fails: a store that cannot open reports why in [`Store::state`].
    pub fn open(settings: StoreSettings, metrics: Arc<StoreMetrics>) -> (Self, StoreTask) {
        metrics
            .max_bytes
            .set(i64::try_from(settings.max_bytes).unwrap_or(i64::MAX));
        let shared = Arc::new(Shared {
            path: settings.dir.join(FILE_NAME),
            max_bytes: settings.max_bytes,
            state: Mutex::new(StoreState::Opening),
            settled: tokio::sync::Notify::new(),
            readers: readers::Readers::start(&settings.dir.join(FILE_NAME), READERS),
            read_slots: Arc::new(tokio::sync::Semaphore::new(READERS)),
            metrics,
            clock: settings.clock.clone(),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let writer_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("perfscope-store".into())
            .spawn(move || writer::run(&settings, &writer_shared, &rx));
        let thread = match thread {
            Ok(thread) => thread,
            Err(error) => {
                shared.set_state(StoreState::Unavailable(format!(
                    "the writer thread did not start: {error}"
                )));
                // A thread that ends at once, so join has something to wait on.
                std::thread::spawn(|| {})
            }
        };
        (
            Self {
                shared,
                tx: tx.clone(),
            },
            StoreTask { thread, tx },
        )
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The size cap, bytes.
    pub fn max_bytes(&self) -> u64 {
        self.shared.max_bytes
    }

    /// The file and its write-ahead log on disk, bytes.
    pub fn bytes(&self) -> u64 {
        file_bytes(&self.shared.path)
    }

    /// Opening, writing, or why not.
    pub fn state(&self) -> StoreState {
        self.shared.state.lock().clone()
    }

    /// The store's clock, now.
    pub fn now(&self) -> i64 {
        self.shared.clock.now()
    }

    /// Queues a batch; never blocks. A full queue or an unavailable store
    /// drops it and counts.
    pub fn record(&self, write: Write) {
        if matches!(&*self.shared.state.lock(), StoreState::Unavailable(_)) {
            self.shared.metrics.drop_one(DropReason::unavailable);
            return;
        }
        match self.tx.try_send(Message::Write(write)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.shared.metrics.drop_one(DropReason::queue_full),
            Err(TrySendError::Disconnected(_)) => {
                self.shared.metrics.drop_one(DropReason::unavailable);
            }
        }
    }

    /// Waits until everything queued before it is written (tests, and
    /// the API's own writes that answer with what they wrote).
    pub async fn flush(&self) {
        self.ask(Message::Flush).await;
    }

    /// Runs retention, downsampling and the size cap now.
    pub async fn maintain(&self) {
        self.ask(Message::Maintain).await;
    }

    async fn ask(&self, message: fn(std::sync::mpsc::Sender<()>) -> Message) {
        let (done, wait) = std::sync::mpsc::channel();
        let tx = self.tx.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if tx.send(message(done)).is_ok() {
                let _ = wait.recv();
            }
        })
        .await;
    }

    /// Runs `query` on a read-only connection on a reader thread. At
    /// most [`READERS`] run at once; a caller waits up to [`READ_WAIT`]
    /// for the file to open and for a turn, then gets
    /// [`StoreError::Unavailable`] or [`StoreError::Busy`].
    pub async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let until = tokio::time::Instant::now() + READ_WAIT;
        match self.shared.settled_state(until).await {
            StoreState::Writing => {}
            StoreState::Opening => return Err(StoreError::Unavailable("still opening".into())),
            StoreState::Unavailable(why) => return Err(StoreError::Unavailable(why)),
        }
        // The permit goes with the read: a caller that stops waiting (a
        // dropped request) frees its slot only once the read ends.
        let permit = tokio::time::timeout_at(until, self.shared.read_slots.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Busy)?
            .map_err(|_| StoreError::Busy)?;
        let (done, answer) = tokio::sync::oneshot::channel();
        self.shared.readers.send(Box::new(move |conn| {
            let _permit = permit;
            let result = match conn {
                Ok(conn) => query(conn).map_err(StoreError::from),
                Err(why) => Err(StoreError::Unavailable(why)),
            };
            let _ = done.send(result);
        }))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the read stopped".into()))?
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "query_only", true)?;
    memory::bound(&conn, memory::READER_CACHE_KIB)?;
    Ok(conn)
}

/// The file and its write-ahead log, bytes.
fn file_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path) + size(Path::new(&wal))
}
