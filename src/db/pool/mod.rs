//! [`TimedPool`]: a deadpool-postgres pool whose clients time every
//! statement.
//!
//! deadpool and tokio-postgres have no per-query hook and their client
//! traits are sealed, so the wrapper is ours: [`TimedClient`] and
//! [`TimedTransaction`] offer `query`, `query_one`, `query_opt`, `execute`,
//! `batch_execute` and `prepare`, each timed into
//! `db_query_duration_seconds{operation, model}`, failures into
//! `db_query_errors_total`, slow ones into the slow log and every one into
//! the current request's context. `named("findMany")` overrides the
//! `operation` label; `raw()` is the escape hatch to the driver's client.
//!
//! Wait, create and recycle timeouts are always set, so a black-holed
//! database cannot hang a caller; `DATABASE_POOL_MIN` connections are opened
//! at start-up to warm the pool (deadpool has no minimum of its own).
//!
//! A pool given a [`ConnectionBudget`](super::budget::ConnectionBudget)
//! (the agent's own pools, never the host app's) is transient instead:
//! each connection takes a permit before it is opened, reads the server's
//! free slots on opening (see [`super::budget::SESSION_SETUP`]) and is
//! closed when released, so the agent holds no idle connection between
//! passes. A connection whose statement outlived its deadline is
//! [`TimedClient::discard`]ed, never recycled: it may still be busy on the
//! server.
//!
//! The module is split by job, each file depending only on the ones
//! listed before it (this file only declares and re-exports them):
//!
//! - `error`: [`DbError`];
//! - `respond`: [`DbError`] as a Poem or axum answer (503 or 500, a JSON
//!   body without the server's message), so `?` works in a handler;
//! - `shared`: what the pool and its clients share (statement cache,
//!   labels, connector, budget);
//! - `timing`: [`TimedSql`], [`TimedStatement`] and the `timed` core every
//!   statement goes through;
//! - `unnamed`: with the statement cache off (behind a transaction
//!   pooler), a SQL text as the unnamed statement in one round trip, its
//!   parameters typed by their Rust values;
//! - `comment`: whether a call carries a sqlcommenter comment
//!   (`PERFSCOPE_SQL_COMMENTS`) and the text it then sends, as the
//!   unnamed statement, never cached;
//! - `sampling`: on the rare call that is due, the bound values into
//!   [`crate::db::samples`] (a host app's pool only);
//! - `client`: [`TimedClient`], [`TimedTransaction`], [`NamedClient`],
//!   [`NamedTransaction`];
//! - `settings`: [`PoolSettings`] and the default timeouts;
//! - `open`: [`TimedPool`], opening connections within the budget;
//! - `status`: the pool's accessors, gauges, ping and health task.
//!
//! `COPY … FROM STDIN` is added to the clients by [`crate::db::copy`],
//! which depends on this module and never the reverse.

mod client;
mod comment;
mod error;
mod open;
mod respond;
mod sampling;
mod settings;
mod shared;
mod status;
mod timing;
mod unnamed;

pub use client::{NamedClient, NamedTransaction, TimedClient, TimedTransaction};
pub use error::DbError;
pub use open::TimedPool;
pub use settings::{
    DEFAULT_CREATE_TIMEOUT, DEFAULT_RECYCLE_TIMEOUT, DEFAULT_WAIT_TIMEOUT, PoolSettings,
};
#[doc(hidden)]
pub use shared::CachedStatement;
pub use shared::STATEMENT_CACHE_CAPACITY;
pub(in crate::db) use shared::Shared;
pub use status::STATUS_INTERVAL;
pub(in crate::db) use timing::timed;
pub use timing::{SharedRef, TimedSql, TimedStatement};
