//! The read connections' own threads. Reads used to run on Tokio's
//! blocking pool, which under load grew to a dozen threads, each with its
//! own allocator caches and SQLite's allocations spread over as many C
//! allocator arenas (BENCHMARKS.md, "Agent memory"); here [`super::READERS`]
//! named threads each own one read-only connection (opened on their first
//! read) and take reads from one queue, so the threads and connections
//! reading the store are bounded. The semaphore in [`super::Store::read`]
//! still decides who may queue; the queue holds no more than that.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use parking_lot::Mutex;
use rusqlite::Connection;

use super::StoreError;

/// One read, handed its thread's connection (or why there is none).
pub(super) type Job = Box<dyn FnOnce(Result<&Connection, String>) + Send>;

/// The reader threads' queue.
pub(super) struct Readers {
    tx: SyncSender<Job>,
}

impl Readers {
    /// Starts `threads` reader threads on the file at `path`; they end
    /// once every handle to the queue is gone.
    pub(super) fn start(path: &Path, threads: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(threads);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let (rx, path) = (rx.clone(), path.to_owned());
            let spawned = std::thread::Builder::new()
                .name(format!("perfscope-store-read-{n}"))
                .spawn(move || serve(&path, &rx));
            if let Err(error) = spawned {
                tracing::warn!(%error, "a history store reader thread did not start");
            }
        }
        Self { tx }
    }

    /// Queues a read; never blocks (the caller holds one of the slots
    /// the queue is sized for).
    pub(super) fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => StoreError::Busy,
            TrySendError::Disconnected(_) => {
                StoreError::Unavailable("no reader thread is running".into())
            }
        })
    }
}

/// One reader thread: its connection, the reads it takes from the queue.
fn serve(path: &Path, rx: &Mutex<Receiver<Job>>) {
    let mut conn: Option<Connection> = None;
    loop {
        let job = rx.lock().recv();
        let Ok(job) = job else {
            return;
        };
        if conn.is_none() {
            match super::open_reader(path) {
                Ok(opened) => conn = Some(opened),
                Err(error) => {
                    job(Err(error.to_string()));
                    continue;
                }
            }
        }
        let Some(open) = conn.as_ref() else {
            continue;
        };
        // A read that panics answers nothing (its caller hears "the read
        // stopped") and its connection is not reused.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(open)))).is_err() {
            conn = None;
        }
    }
}
