//! Comparisons shared for a minute: one read per `(database, at, window)`
//! whoever asks. The API's compare operation and the Compare page each
//! keep one [`Comparisons`] (the handle sits below the use cases, so it
//! holds none).
//!
//! A comparison of two 15-day windows reads every route and statement row
//! of a month (about 170 ms on release with a month of 10 routes and 20
//! statements), holding one of the store's two read slots. During an
//! incident several people open the same deploy's comparison, and a page
//! that is reloaded reads it again; thirty-two clients asking at once held
//! both slots for every other page (BENCHMARKS.md, agent memory). The
//! store's points change at most once a minute (the recorder's raw
//! point, [`RAW_POINT_SECS`]), and a window wholly in the past not at all
//! (rollups keep every sum), so an answer younger than a minute is still
//! the answer: it is kept that long, and callers asking for one being read
//! wait for it instead of starting their own. A failed read is not kept.
//! At most [`MAX_KEPT`] are kept, the oldest going first.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use super::{Comparison, compare, validate};
use crate::service::events::HistoryError;
use crate::store::{RAW_POINT_SECS, Store};

/// Comparisons kept at most.
pub const MAX_KEPT: usize = 16;

type Key = (String, i64, i64);
/// When a comparison was first asked for, and its answer once read.
type Entry = (i64, Arc<OnceCell<Comparison>>);

/// The comparisons read in the last minute (see the module docs).
#[derive(Debug, Default)]
pub struct Comparisons {
    kept: parking_lot::Mutex<HashMap<Key, Entry>>,
}

impl Comparisons {
    /// [`compare`], answered from a read of the last minute when there is
    /// one (or one in flight).
    pub async fn compare(
        &self,
        store: Option<&Store>,
        database: &str,
        at: i64,
        window: i64,
    ) -> Result<Comparison, HistoryError> {
        let store = store.ok_or(HistoryError::NoStore)?;
        validate(at, window)?;
        let cell = self.cell((database.to_owned(), at, window), store.now());
        cell.get_or_try_init(|| compare(Some(store), database, at, window))
            .await
            .cloned()
    }

    /// The cell for `key`: the one of the last minute, or a new one (the
    /// stale and, past [`MAX_KEPT`], the oldest dropped).
    fn cell(&self, key: Key, now: i64) -> Arc<OnceCell<Comparison>> {
        let mut kept = self.kept.lock();
        kept.retain(|_, (since, _)| (0..RAW_POINT_SECS).contains(&(now - *since)));
        if let Some((_, cell)) = kept.get(&key) {
            return cell.clone();
        }
        if kept.len() >= MAX_KEPT
            && let Some(oldest) = kept
                .iter()
                .min_by_key(|(_, (since, _))| *since)
                .map(|(key, _)| key.clone())
        {
            kept.remove(&oldest);
        }
        let cell = Arc::new(OnceCell::new());
        kept.insert(key, (now, cell.clone()));
        cell
    }
}
