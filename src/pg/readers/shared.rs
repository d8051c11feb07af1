//! One read of a cluster-wide view shared by the readers of every
//! database of a server: the last read while it is fresh, else a new one
//! (the readers of the same server wait for it rather than read it again).
//! Generic, so the readers that share a view need not know who shares it
//! (see [`super::server`]).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::pg::ReadError;

/// The last read of one view, reused while it is fresh.
#[derive(Debug)]
pub struct SharedRead<T> {
    fresh_for: Duration,
    last: tokio::sync::Mutex<Option<(Instant, T)>>,
}

impl<T: Clone> SharedRead<T> {
    /// A slot whose reads are reused for `fresh_for`.
    pub fn new(fresh_for: Duration) -> Self {
        Self {
            fresh_for,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The last read while it is fresh, else `read`'s (kept for the
    /// others).
    pub async fn get(
        &self,
        read: impl Future<Output = Result<T, ReadError>>,
    ) -> Result<T, ReadError> {
        let mut last = self.last.lock().await;
        if let Some((at, value)) = last.as_ref()
            && at.elapsed() < self.fresh_for
        {
            return Ok(value.clone());
        }
        let value = read.await?;
        *last = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}
