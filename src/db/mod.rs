//! The database side of perfscope's library: statement analysis
//! (normalized text, fingerprint, verb, table), the slow-query log, the
//! per-request context and N+1 detection — all driver-free — and, with the
//! `postgres` feature, the timed deadpool-postgres pool that feeds them.

#[cfg(feature = "postgres")]
pub mod budget;
#[cfg(feature = "postgres")]
pub mod connect;
pub mod context;
#[cfg(feature = "postgres")]
pub mod copy;
#[cfg(feature = "postgres")]
pub mod error_text;
pub mod insights;
pub mod n_plus_one;
#[cfg(feature = "postgres")]
pub mod paginate;
#[cfg(feature = "postgres")]
pub mod pool;
#[cfg(feature = "postgres")]
mod query_span;
#[cfg(feature = "postgres")]
pub mod samples;
pub mod slow_log;
pub mod sqlcomment;
#[cfg(feature = "postgres")]
mod ssl_mode;
pub mod statement;
#[cfg(all(feature = "postgres", feature = "tls"))]
mod tls;

pub use insights::DbInsights;
#[cfg(feature = "postgres")]
pub use paginate::Keyset;
#[cfg(feature = "postgres")]
pub use pool::{
    DbError, NamedClient, NamedTransaction, PoolSettings, TimedClient, TimedPool, TimedSql,
    TimedStatement, TimedTransaction,
};
