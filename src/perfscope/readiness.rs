//! The databases' state as `/readyz` reports it: `DATABASE_URL`'s (set by
//! its pool's health check) and each other watched database's, by name.
//!
//! A small type of its own so the handle only delegates: the agent's
//! health checks write it, the readiness endpoint reads it, and neither
//! needs the rest of [`super::Perfscope`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

/// The database as readiness reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DatabaseHealth {
    /// No database is configured.
    NotConfigured = 0,
    /// The last health check succeeded.
    Up = 1,
    /// The last health check failed.
    Down = 2,
}

/// `DATABASE_URL`'s state and each watched database's.
#[derive(Debug, Default)]
pub(super) struct DatabasesHealth {
    /// A [`DatabaseHealth`] as its `u8` (0, not configured, until the
    /// first check).
    database: AtomicU8,
    /// Health of the databases of `PERFSCOPE_WATCH_DATABASES`, by name.
    watched: Mutex<BTreeMap<String, bool>>,
}

impl DatabasesHealth {
    /// `DATABASE_URL`'s state.
    pub(super) fn database(&self) -> DatabaseHealth {
        match self.database.load(Ordering::Relaxed) {
            1 => DatabaseHealth::Up,
            2 => DatabaseHealth::Down,
            _ => DatabaseHealth::NotConfigured,
        }
    }

    /// Records `DATABASE_URL`'s state.
    pub(super) fn set_database(&self, up: bool) {
        let state = if up {
            DatabaseHealth::Up
        } else {
            DatabaseHealth::Down
        };
        self.database.store(state as u8, Ordering::Relaxed);
    }

    /// Records the state of the watched database `name`.
    pub(super) fn set_watched(&self, name: &str, up: bool) {
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), up);
    }

    /// Each watched database's state, by name.
    pub(super) fn watched(&self) -> Vec<(String, bool)> {
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, up)| (name.clone(), *up))
            .collect()
    }
}
