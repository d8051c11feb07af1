//! Every default value of a setting, as a constant: the settings table
//! renders them into `--help` and the README check, [`super::Config`]'s
//! `Default` builds from them, and subsystems that need a default outside a
//! `Config` (the reader runner, the activity view, the pool) name the same
//! constant instead of writing the number again.

use std::time::Duration;

/// Default listen address: loopback only, so a fresh agent is not exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Connections created at start-up to warm the pool.
pub const DEFAULT_POOL_MIN: u32 = 2;
/// Pool size.
pub const DEFAULT_POOL_MAX: u32 = 10;
/// Default TTL of a cached query, in milliseconds.
pub const DEFAULT_QUERY_CACHE_TTL_MS: u64 = 300_000;
/// Default number of entries a query cache holds.
pub const DEFAULT_MAX_CACHE_SIZE: u64 = 1_000;
/// A query slower than this (ms) is a slow query.
pub const DEFAULT_SLOW_QUERY_THRESHOLD_MS: u64 = 1_000;
/// Resident memory over this share of the limit is high.
pub const DEFAULT_HIGH_MEMORY_THRESHOLD: f64 = 0.9;
/// Event-loop lag over this (ms) is high.
pub const DEFAULT_EVENT_LOOP_LAG_THRESHOLD_MS: u64 = 100;
/// Series a metric family may hold before new label sets fold into one
/// overflow series.
pub const DEFAULT_MAX_SERIES_PER_FAMILY: usize = 2_000;
/// Largest request body the API accepts, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// How often the runtime is sampled, in milliseconds.
pub const DEFAULT_RUNTIME_SAMPLE_INTERVAL_MS: u64 = 1_000;
/// How long shutdown waits for in-flight requests, in milliseconds.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;
/// `PERFSCOPE_HEADER_TIMEOUT`: how long a request head may take to arrive.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// `PERFSCOPE_BODY_TIMEOUT`: how long a request body may take to arrive
/// once its head is in (a `PERFSCOPE_MAX_BODY_BYTES` body at 7 kB/s).
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
/// `PERFSCOPE_MAX_HTTP_CONNECTIONS`: connections the agent's listener holds
/// at once. Its clients are a few scrapers, probes and browsers; 512 stays
/// well under the common 1,024 descriptor limit, leaving room for database
/// connections and files.
pub const DEFAULT_MAX_HTTP_CONNECTIONS: usize = 512;
/// A kept-alive connection idle this long is closed.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(75);
/// How often the Postgres readers run, in milliseconds.
pub const DEFAULT_READ_INTERVAL_MS: u64 = 15_000;
/// `statement_timeout` of each reader pass, in milliseconds.
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 5_000;
/// `PERFSCOPE_MAX_DB_CONNECTIONS`: the most connections the agent opens
/// across every database it watches. 4 is 4 % of a default server's 100
/// slots; each database's pass needs one connection for tens of
/// milliseconds, so four in turn read 100 databases in about a second,
/// far inside the default 15 s interval, and leave room for an API read,
/// a cancel or a maintenance task without starving the readers.
pub const DEFAULT_MAX_DB_CONNECTIONS: u32 = 4;
/// `PERFSCOPE_DB_CONNECTION_HEADROOM`: slots the agent leaves free on each
/// server for everyone else, beyond the reserved ones (a tenth of a
/// default server's `max_connections`).
pub const DEFAULT_DB_CONNECTION_HEADROOM: u32 = 10;
/// `PERFSCOPE_ASH_INTERVAL`: how often each server's `pg_stat_activity`
/// is sampled for the active session history, ms (0: off).
pub const DEFAULT_ASH_INTERVAL_MS: u64 = 1_000;
/// `PERFSCOPE_ASH_MEMORY`: the active session history's bytes in memory
/// (4 MiB: about 13 hours of per-minute counts and the last 3 minutes
/// of whole samples at 50 active sessions; an idle server fills nothing.
/// BENCHMARKS.md).
pub const DEFAULT_ASH_MEMORY: usize = 4 << 20;
/// Statements per database exported as `pg_stat_statements_*` series.
pub const DEFAULT_TOP_STATEMENTS: usize = 50;
/// How long a condition must hold before its alert fires, in ms.
pub const DEFAULT_ALERT_FOR_MS: u64 = 60_000;
/// Slow-query alerts per statement fingerprint: at most one per window, ms.
pub const DEFAULT_ALERT_DEDUP_WINDOW_MS: u64 = 600_000;
/// How long a webhook notification is retried before it is given up, ms.
pub const DEFAULT_WEBHOOK_DEADLINE_MS: u64 = 30_000;
/// Share of requests sent to Sentry as transactions.
pub const DEFAULT_SENTRY_TRACES_SAMPLE_RATE: f64 = 0.1;
/// Active queries longer than this are flagged as long-running, ms.
pub const DEFAULT_LONG_QUERY_THRESHOLD_MS: u64 = 60_000;
/// Sessions idle in a transaction longer than this are flagged, ms.
pub const DEFAULT_IDLE_IN_TRANSACTION_THRESHOLD_MS: u64 = 30_000;
/// `OTEL_BSP_MAX_QUEUE_SIZE` (the OpenTelemetry specification's default).
pub const DEFAULT_OTLP_MAX_QUEUE_SIZE: usize = 2048;
/// `OTEL_BSP_SCHEDULE_DELAY`, ms.
pub const DEFAULT_OTLP_SCHEDULE_DELAY_MS: u64 = 5000;
/// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
pub const DEFAULT_OTLP_MAX_EXPORT_BATCH_SIZE: usize = 512;
/// `OTEL_BSP_EXPORT_TIMEOUT`, ms.
pub const DEFAULT_OTLP_BSP_EXPORT_TIMEOUT_MS: u64 = 30_000;
/// `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`, ms.
pub const DEFAULT_OTLP_TIMEOUT_MS: u64 = 10_000;
/// Size cap of the history store, bytes (512 MiB: the steady state of 500
/// busy statements and 200 routes is about 430 MiB, BENCHMARKS.md).
pub const DEFAULT_STORE_MAX_BYTES: u64 = 512 << 20;
/// `PERFSCOPE_SQL_COMMENTS`: no statement carries a sqlcommenter comment
/// unless asked (a commented statement is not a reusable prepared one).
pub const DEFAULT_SQL_COMMENTS: super::SqlComments = super::SqlComments::Off;
