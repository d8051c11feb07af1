//! Single-flight: concurrent misses on one key run the loader once, and
//! every caller gets its result — or its error, which is not cached.
//!
//! The `cached` crate coalesces loads only inside its `#[cached]` macro,
//! for functions known at compile time; a cache whose loader is a closure
//! given per call needs this layer. The first caller to miss becomes the
//! leader and runs the loader in its own task; the others wait on a
//! `watch` channel. A leader that is cancelled (its future dropped) closes
//! the channel without a value, and its followers try again, one of them
//! becoming the new leader: no caller waits on a load nobody runs.

use std::collections::HashMap;

use parking_lot::Mutex;
use rustc_hash::FxBuildHasher;
use tokio::sync::watch;

use super::CacheError;

type Outcome<V> = Option<Result<V, CacheError>>;

/// The loads in flight, by key.
#[derive(Debug)]
pub(crate) struct SingleFlight<V> {
    flights: Mutex<HashMap<String, watch::Receiver<Outcome<V>>, FxBuildHasher>>,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        Self {
            flights: Mutex::default(),
        }
    }
}

/// What a caller that missed does next.
pub(crate) enum Role<'a, V> {
    /// Run the loader and [`Flight::finish`].
    Leader(Flight<'a, V>),
    /// Wait for the leader with [`follow`].
    Follower(watch::Receiver<Outcome<V>>),
    /// The value arrived between the miss and joining.
    Ready(V),
}

impl<V: Clone> SingleFlight<V> {
    /// Joins the flight for `key`, or starts one. `recheck` looks the key
    /// up again under the flight lock: a leader stores its value before it
    /// leaves the map, so a caller that finds no flight but missed earlier
    /// sees the value there instead of loading it a second time.
    pub(crate) fn join(&self, key: &str, recheck: impl FnOnce() -> Option<V>) -> Role<'_, V> {
        let mut flights = self.flights.lock();
        if let Some(receiver) = flights.get(key) {
            return Role::Follower(receiver.clone());
        }
        if let Some(value) = recheck() {
            return Role::Ready(value);
        }
        let (sender, receiver) = watch::channel(None);
        flights.insert(key.to_owned(), receiver);
        Role::Leader(Flight {
            owner: self,
            key: key.to_owned(),
            sender,
        })
    }

    /// Loads in flight.
    pub(crate) fn len(&self) -> usize {
        self.flights.lock().len()
    }
}

/// Waits for the leader: `None` when it was cancelled without a result.
pub(crate) async fn follow<V: Clone>(
    mut receiver: watch::Receiver<Outcome<V>>,
) -> Option<Result<V, CacheError>> {
    receiver
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|outcome| outcome.clone())
}

/// A leader's load; leaves the map when dropped, finished or not.
pub(crate) struct Flight<'a, V> {
    owner: &'a SingleFlight<V>,
    key: String,
    sender: watch::Sender<Outcome<V>>,
}

impl<V> Flight<'_, V> {
    /// Hands the result to every follower.
    pub(crate) fn finish(self, outcome: Result<V, CacheError>) {
        self.sender.send_replace(Some(outcome));
    }
}

impl<V> Drop for Flight<'_, V> {
    fn drop(&mut self) {
        self.owner.flights.lock().remove(&self.key);
    }
}
