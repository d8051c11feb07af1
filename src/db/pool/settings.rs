//! [`PoolSettings`] and the default timeouts: what a caller chooses about
//! a [`TimedPool`](super::TimedPool) before it is opened.
//!
//! Plain data with no dependency on the pool, so the configuration code
//! can read the defaults without reaching into the pool's workings.

use std::sync::Arc;
use std::time::Duration;

use crate::config::SqlComments;
use crate::db::budget::ConnectionBudget;

/// How long a caller waits for a free connection.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a connection may take.
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long checking a returned connection may take.
pub const DEFAULT_RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a [`TimedPool`](super::TimedPool).
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// The pool's name, its `pool` label (`default` for `DATABASE_URL`).
    pub name: String,
    /// Connections opened at start-up.
    pub min: u32,
    /// Pool size.
    pub max: u32,
    /// Waiting for a free connection.
    pub wait_timeout: Duration,
    /// Opening a connection.
    pub create_timeout: Duration,
    /// Checking a returned connection.
    pub recycle_timeout: Duration,
    /// The agent's connection budget: the pool becomes transient (see the
    /// module docs). `None` (the default) for a host app's own pool.
    pub budget: Option<Arc<ConnectionBudget>>,
    /// The connections' `application_name`, over the connection string's
    /// (`None`: the string's, else `perfscope`). The agent's readers set
    /// their own, so the activity view tells them from the app's sessions
    /// even when both log in with one `DATABASE_URL`.
    pub application_name: Option<String>,
    /// Whether statements may live on the connection: `prepare` caches
    /// its named statement per connection, and a SQL text goes the
    /// driver's usual way (a named statement prepared, then bound and
    /// executed, then closed). `true` by default. Turn it off behind a
    /// transaction pooler (PgBouncer in transaction mode, RDS Proxy),
    /// which may run each of those on another server connection: a text
    /// then goes as the unnamed statement in one round trip, its
    /// parameters typed by their Rust values, `prepare` is not cached (a
    /// prepared statement is good within its transaction only), and no
    /// parameter values are sampled for the advisor. See the module
    /// `unnamed` in the source and the README's "Behind a transaction
    /// pooler".
    pub statement_cache: bool,
    /// Which statements carry a sqlcommenter comment (route,
    /// `traceparent`, application; `PERFSCOPE_SQL_COMMENTS`): `Off` by
    /// default. A commented statement runs as the unnamed statement, never
    /// cached on the connection (see the module `comment` in the source).
    /// A pool with a budget (the agent's own) never comments.
    pub sql_comments: SqlComments,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            name: "default".into(),
            min: crate::config::DEFAULT_POOL_MIN,
            max: crate::config::DEFAULT_POOL_MAX,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            create_timeout: DEFAULT_CREATE_TIMEOUT,
            recycle_timeout: DEFAULT_RECYCLE_TIMEOUT,
            budget: None,
            application_name: None,
            statement_cache: true,
            sql_comments: crate::config::DEFAULT_SQL_COMMENTS,
        }
    }
}
