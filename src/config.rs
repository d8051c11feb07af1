//! Typed configuration for the agent and the library.
//!
//! Values come from flags or the environment (see [`crate::cli`]) as raw text
//! and are validated here, so that a bad value fails fast at start-up with one
//! line naming the variable and the accepted range, e.g.
//! `HIGH_MEMORY_THRESHOLD=1.7: expected a ratio in (0, 1]`. `Debug` never
//! prints a token or a database password.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Buckets;

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

/// Output format of the agent's logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether an unreachable `DATABASE_URL` makes `/readyz` answer 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadinessDatabase {
    /// Not ready while the database is unreachable (the default): a load
    /// balancer stops sending requests that would fail anyway.
    Required,
    /// Ready either way, the state only shown in `checks`: for an agent
    /// that must stay reachable to report the outage.
    Reported,
}

/// A value that must never be printed: tokens and DSNs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A Postgres connection string whose `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Secret);

impl DatabaseUrl {
    /// Wraps a connection string (URL or `key=value` form).
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(Secret::new(value))
    }

    /// The full connection string, password included.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The connection string with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_dsn(self.expose())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

/// Replaces the password of a URL-form (`postgres://user:pw@host`,
/// `?password=pw`) or key/value-form (`password=pw`, `password = 'p w'`)
/// connection string. Errs on the side of hiding: a URL's userinfo runs to
/// its last `@` (a password with an unencoded `/`, `?` or `@` is still
/// hidden), and a key/value text that does not parse is hidden whole when
/// it mentions a password.
fn redact_dsn(dsn: &str) -> String {
    let lower = dsn.trim_start().to_ascii_lowercase();
    let url = lower.starts_with("postgres://") || lower.starts_with("postgresql://");
    if url && let Some(scheme_end) = dsn.find("://") {
        let (head, rest) = dsn.split_at(scheme_end + 3);
        let rest = match rest.rfind('@') {
            Some(at) => match rest[..at].find(':') {
                Some(colon) => format!("{}:***{}", &rest[..colon], &rest[at..]),
                None => rest.to_owned(),
            },
            None => rest.to_owned(),
        };
        return format!("{head}{}", redact_query_password(&rest));
    }
    // Neither form parses (a mistyped URL such as `postgres:/u:pw@h`):
    // nothing of it is shown.
    redact_keyword_values(dsn).unwrap_or_else(|| "***".to_owned())
}

/// Whether a connection parameter's key names a secret: `password`,
/// `sslpassword`, percent-encoded or not.
fn secret_key(key: &str) -> bool {
    let mut decoded = String::with_capacity(key.len());
    let bytes = key.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = key
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            decoded.push(char::from(byte));
            i += 3;
            continue;
        }
        decoded.push(char::from(bytes[i]));
        i += 1;
    }
    decoded.to_ascii_lowercase().contains("password")
}

/// Hides the values of `password=` parameters in a URL's query.
fn redact_query_password(rest: &str) -> String {
    let Some(question) = rest.find('?') else {
        return rest.to_owned();
    };
    let params: Vec<String> = rest[question + 1..]
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if secret_key(key) => format!("{key}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{}?{}", &rest[..question], params.join("&"))
}

/// libpq's `key = value` form with every `password` value hidden, or
/// `None` when the text is not of that form.
fn redact_keyword_values(dsn: &str) -> Option<String> {
    let mut out = String::with_capacity(dsn.len());
    let mut chars = dsn.chars().peekable();
    loop {
        while let Some(&c) = chars.peek().filter(|c| c.is_whitespace()) {
            out.push(c);
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace() && **c != '=') {
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'\'');
        let mut closed = !quoted;
        if quoted {
            value.extend(chars.next());
        }
        while let Some(&c) = chars.peek() {
            if !quoted && c.is_whitespace() {
                break;
            }
            chars.next();
            value.push(c);
            if c == '\\' {
                value.extend(chars.next());
            } else if quoted && c == '\'' {
                closed = true;
                break;
            }
        }
        if !closed {
            return None;
        }
        out.push_str(&key);
        out.push('=');
        out.push_str(if secret_key(&key) { "***" } else { &value });
    }
}

/// TLS certificate and key for the listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The whole configuration, validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the agent listens on (`PERFSCOPE_LISTEN`).
    pub listen: SocketAddr,
    /// Bearer token for admin endpoints; `None` means they answer 401.
    pub admin_token: Option<Secret>,
    /// Read-only token accepted by the metrics endpoint only.
    pub metrics_token: Option<Secret>,
    /// TLS for the listener, when both files are given.
    pub tls: Option<TlsFiles>,
    /// The database to use and watch.
    pub database_url: Option<DatabaseUrl>,
    /// More databases to watch (readers, advice, self-check; no app
    /// traffic), by name.
    pub watch_databases: Vec<(String, DatabaseUrl)>,
    /// Connections opened at start-up.
    pub pool_min: u32,
    /// Pool size.
    pub pool_max: u32,
    /// Default TTL of cached queries.
    pub query_cache_ttl: Duration,
    /// Entries per query cache.
    pub max_cache_size: u64,
    /// Threshold of the slow-query log.
    pub slow_query_threshold: Duration,
    /// Share of the memory limit that counts as high, in (0, 1].
    pub high_memory_threshold: f64,
    /// Event-loop lag that counts as high.
    pub event_loop_lag_threshold: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// Whether an unreachable database makes the instance not ready.
    pub readiness_database: ReadinessDatabase,
    /// Series cap per metric family.
    pub max_series_per_family: usize,
    /// Buckets of `http_request_duration_seconds`.
    pub http_buckets: Buckets,
    /// Buckets of database query histograms.
    pub db_buckets: Buckets,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Runtime sampling interval.
    pub runtime_sample_interval: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long a request head (line and headers) may take to arrive.
    pub header_timeout: Duration,
    /// How long a request body may take to arrive once its head is in.
    pub body_timeout: Duration,
    /// Connections the agent's listener holds at once (more wait).
    pub max_http_connections: usize,
    /// How often the Postgres readers run.
    pub read_interval: Duration,
    /// `statement_timeout` of each reader pass.
    pub read_timeout: Duration,
    /// The most connections the agent opens across every watched database.
    pub max_db_connections: u32,
    /// Slots left free on each server beyond the reserved ones.
    pub db_connection_headroom: u32,
    /// Active queries running longer than this are flagged (activity view,
    /// findings, metrics).
    pub long_query_threshold: Duration,
    /// Sessions idle in a transaction longer than this are flagged.
    pub idle_in_transaction_threshold: Duration,
    /// Statements per database exported as metrics.
    pub top_statements: usize,
    /// The planner role that plans database users' statements (index
    /// advice, EXPLAIN); `None` plans nothing (advice from statistics).
    pub planner: Option<PlannerConfig>,
    /// Webhook URLs alerts are posted to (they may embed tokens, so they
    /// are secrets).
    pub alert_webhook_urls: Vec<Secret>,
    /// Key of the HMAC-SHA256 signature of each webhook body.
    pub alert_webhook_secret: Option<Secret>,
    /// How long a condition must hold before its alert fires.
    pub alert_for: Duration,
    /// At most one slow-query alert per statement fingerprint per window.
    pub alert_dedup_window: Duration,
    /// How long a webhook notification is retried before it is given up.
    pub webhook_deadline: Duration,
    /// Sentry's DSN; unset, Sentry is off and costs nothing.
    pub sentry_dsn: Option<Secret>,
    /// Sentry's environment tag.
    pub sentry_environment: Option<String>,
    /// Sentry's release tag.
    pub sentry_release: Option<String>,
    /// Share of requests sent to Sentry as transactions, [0, 1].
    pub sentry_traces_sample_rate: f64,
    /// OpenTelemetry traces over OTLP; `None` (no `OTEL_EXPORTER_OTLP_*
    /// ENDPOINT`) leaves them off, at no cost.
    pub otlp: Option<OtlpConfig>,
}

/// Wire protocol of the OTLP exporter (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `grpc`: tonic, HTTP/2.
    Grpc,
    /// `http/protobuf` (the specification's default): POSTs to `/v1/traces`.
    HttpProtobuf,
}

/// Where and how spans are exported, from the standard OpenTelemetry
/// variables. The exporter reads `OTEL_EXPORTER_OTLP_HEADERS` (which may
/// hold credentials) and the SDK reads `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_TRACES_SAMPLER[_ARG]` themselves.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// The full traces URL: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given,
    /// or `OTEL_EXPORTER_OTLP_ENDPOINT` (plus `/v1/traces` over HTTP).
    pub endpoint: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: OtlpProtocol,
    /// `OTEL_SERVICE_NAME`; unset, the SDK's `unknown_service:<executable>`
    /// unless `OTEL_RESOURCE_ATTRIBUTES` names one.
    pub service_name: Option<String>,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: finished spans queued before new ones are
    /// dropped (and counted).
    pub max_queue_size: usize,
    /// `OTEL_BSP_SCHEDULE_DELAY`: the longest a span waits to be sent.
    pub schedule_delay: Duration,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per export call.
    pub max_export_batch_size: usize,
    /// The longest one export call may take: the smaller of
    /// `OTEL_BSP_EXPORT_TIMEOUT` (30 s) and the exporter's
    /// `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` (10 s).
    pub export_timeout: Duration,
}

impl OtlpConfig {
    /// Defaults of the specification for `endpoint` over `protocol`.
    pub fn new(endpoint: impl Into<String>, protocol: OtlpProtocol) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol,
            service_name: None,
            max_queue_size: 2048,
            schedule_delay: Duration::from_millis(5000),
            max_export_batch_size: 512,
            export_timeout: Duration::from_millis(10_000),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            admin_token: None,
            metrics_token: None,
            tls: None,
            database_url: None,
            watch_databases: Vec::new(),
            pool_min: DEFAULT_POOL_MIN,
            pool_max: DEFAULT_POOL_MAX,
            query_cache_ttl: Duration::from_millis(DEFAULT_QUERY_CACHE_TTL_MS),
            max_cache_size: DEFAULT_MAX_CACHE_SIZE,
            slow_query_threshold: Duration::from_millis(DEFAULT_SLOW_QUERY_THRESHOLD_MS),
            high_memory_threshold: DEFAULT_HIGH_MEMORY_THRESHOLD,
            event_loop_lag_threshold: Duration::from_millis(DEFAULT_EVENT_LOOP_LAG_THRESHOLD_MS),
            log_format: LogFormat::Text,
            readiness_database: ReadinessDatabase::Required,
            max_series_per_family: DEFAULT_MAX_SERIES_PER_FAMILY,
            http_buckets: Buckets::default_http(),
            db_buckets: Buckets::default_db(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            runtime_sample_interval: Duration::from_millis(DEFAULT_RUNTIME_SAMPLE_INTERVAL_MS),
            shutdown_grace: Duration::from_millis(DEFAULT_SHUTDOWN_GRACE_MS),
            header_timeout: Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            max_http_connections: DEFAULT_MAX_HTTP_CONNECTIONS,
            read_interval: Duration::from_millis(DEFAULT_READ_INTERVAL_MS),
            read_timeout: Duration::from_millis(DEFAULT_READ_TIMEOUT_MS),
            max_db_connections: DEFAULT_MAX_DB_CONNECTIONS,
            db_connection_headroom: DEFAULT_DB_CONNECTION_HEADROOM,
            long_query_threshold: Duration::from_millis(DEFAULT_LONG_QUERY_THRESHOLD_MS),
            idle_in_transaction_threshold: Duration::from_millis(
                DEFAULT_IDLE_IN_TRANSACTION_THRESHOLD_MS,
            ),
            top_statements: DEFAULT_TOP_STATEMENTS,
            planner: None,
            alert_webhook_urls: Vec::new(),
            alert_webhook_secret: None,
            alert_for: Duration::from_millis(DEFAULT_ALERT_FOR_MS),
            alert_dedup_window: Duration::from_millis(DEFAULT_ALERT_DEDUP_WINDOW_MS),
            webhook_deadline: Duration::from_millis(DEFAULT_WEBHOOK_DEADLINE_MS),
            sentry_dsn: None,
            sentry_environment: None,
            sentry_release: None,
            sentry_traces_sample_rate: DEFAULT_SENTRY_TRACES_SAMPLE_RATE,
            otlp: None,
        }
    }
}

/// A configuration value that is out of range, named by its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value}: {expected}")]
pub struct ConfigError {
    /// The environment variable (the flag of the same name works too).
    pub var: &'static str,
    /// The value given, or `***` for secrets.
    pub value: String,
    /// What is accepted.
    pub expected: String,
}

impl ConfigError {
    fn new(var: &'static str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            var,
            value: value.to_owned(),
            expected: expected.into(),
        }
    }
}

/// Raw text of each setting, as given by flags or the environment.
///
/// Kept apart from [`Config`] so that every value is checked in one place
/// and the error names the variable whichever way the value arrived.
#[derive(Clone, Debug, Default)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub admin_token: Option<String>,
    pub metrics_token: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub database_url: Option<String>,
    pub watch_databases: Option<String>,
    pub pool_min: Option<String>,
    pub pool_max: Option<String>,
    pub query_cache_ttl: Option<String>,
    pub max_cache_size: Option<String>,
    pub slow_query_threshold: Option<String>,
    pub high_memory_threshold: Option<String>,
    pub event_loop_lag_threshold: Option<String>,
    pub log_format: Option<String>,
    pub readiness_database: Option<String>,
    pub max_series_per_family: Option<String>,
    pub http_buckets: Option<String>,
    pub db_buckets: Option<String>,
    pub max_body_bytes: Option<String>,
    pub runtime_sample_interval: Option<String>,
    pub shutdown_grace: Option<String>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_http_connections: Option<String>,
    pub read_interval: Option<String>,
    pub read_timeout: Option<String>,
    pub max_db_connections: Option<String>,
    pub db_connection_headroom: Option<String>,
    pub long_query_threshold: Option<String>,
    pub idle_in_transaction_threshold: Option<String>,
    pub top_statements: Option<String>,
    pub planner_user: Option<String>,
    pub planner_password: Option<String>,
    pub plan_roles: Option<String>,
    pub trusted_owners: Option<String>,
    pub alert_webhook_urls: Option<String>,
    pub alert_webhook_secret: Option<String>,
    pub alert_for: Option<String>,
    pub alert_dedup_window: Option<String>,
    pub webhook_deadline: Option<String>,
    pub sentry_dsn: Option<String>,
    pub sentry_environment: Option<String>,
    pub sentry_release: Option<String>,
    pub sentry_traces_sample_rate: Option<String>,
    pub otlp: RawOtlp,
}

/// The OpenTelemetry variables perfscope checks itself.
#[derive(Clone, Debug, Default)]
pub struct RawOtlp {
    pub endpoint: Option<String>,
    pub traces_endpoint: Option<String>,
    pub protocol: Option<String>,
    pub traces_protocol: Option<String>,
    pub service_name: Option<String>,
    pub sdk_disabled: Option<String>,
    pub traces_exporter: Option<String>,
    pub bsp_max_queue_size: Option<String>,
    pub bsp_schedule_delay: Option<String>,
    pub bsp_max_export_batch_size: Option<String>,
    pub bsp_export_timeout: Option<String>,
    pub timeout: Option<String>,
    pub traces_timeout: Option<String>,
}

impl RawConfig {
    /// Validates every value; the first bad one is returned.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let listen = match &self.listen {
            Some(v) => v.parse().map_err(|_| {
                ConfigError::new(
                    "PERFSCOPE_LISTEN",
                    v,
                    "expected a socket address such as 127.0.0.1:8080",
                )
            })?,
            None => defaults.listen,
        };
        let admin_token = token("PERFSCOPE_ADMIN_TOKEN", self.admin_token.as_deref())?;
        let metrics_token = token("PERFSCOPE_METRICS_TOKEN", self.metrics_token.as_deref())?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (Some(cert), None) => {
                return Err(ConfigError::new(
                    "PERFSCOPE_TLS_KEY",
                    "",
                    format!(
                        "expected a key file, since PERFSCOPE_TLS_CERT={} is set",
                        cert.display()
                    ),
                ));
            }
            (None, Some(key)) => {
                return Err(ConfigError::new(
                    "PERFSCOPE_TLS_CERT",
                    "",
                    format!(
                        "expected a certificate file, since PERFSCOPE_TLS_KEY={} is set",
                        key.display()
                    ),
                ));
            }
        };
        let database_url = match self.database_url.as_deref() {
            None | Some("") => None,
            Some(v) => Some(checked_dsn("DATABASE_URL", "", v)?),
        };
        let watch_databases = watch_list(self.watch_databases.as_deref())?;
        let pool_max = int_in(
            "DATABASE_POOL_MAX",
            self.pool_max.as_deref(),
            1,
            1_000,
            defaults.pool_max,
        )?;
        let pool_min = int_in(
            "DATABASE_POOL_MIN",
            self.pool_min.as_deref(),
            0,
            1_000,
            defaults.pool_min,
        )?;
        if pool_min > pool_max {
            return Err(ConfigError::new(
                "DATABASE_POOL_MIN",
                &pool_min.to_string(),
                format!("expected at most DATABASE_POOL_MAX ({pool_max})"),
            ));
        }
        Ok(Config {
            listen,
            admin_token,
            metrics_token,
            tls,
            database_url,
            watch_databases,
            pool_min,
            pool_max,
            query_cache_ttl: millis(
                "QUERY_CACHE_TTL",
                self.query_cache_ttl.as_deref(),
                1,
                86_400_000,
                defaults.query_cache_ttl,
            )?,
            max_cache_size: int_in(
                "MAX_CACHE_SIZE",
                self.max_cache_size.as_deref(),
                1,
                10_000_000,
                defaults.max_cache_size,
            )?,
            slow_query_threshold: millis(
                "SLOW_QUERY_THRESHOLD",
                self.slow_query_threshold.as_deref(),
                0,
                3_600_000,
                defaults.slow_query_threshold,
            )?,
            high_memory_threshold: ratio(
                "HIGH_MEMORY_THRESHOLD",
                self.high_memory_threshold.as_deref(),
                defaults.high_memory_threshold,
            )?,
            event_loop_lag_threshold: millis(
                "EVENT_LOOP_LAG_THRESHOLD",
                self.event_loop_lag_threshold.as_deref(),
                1,
                60_000,
                defaults.event_loop_lag_threshold,
            )?,
            log_format: match self.log_format.as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError::new(
                        "PERFSCOPE_LOG_FORMAT",
                        other,
                        "expected text or json",
                    ));
                }
            },
            readiness_database: match self.readiness_database.as_deref() {
                None | Some("required") => ReadinessDatabase::Required,
                Some("reported") => ReadinessDatabase::Reported,
                Some(other) => {
                    return Err(ConfigError::new(
                        "PERFSCOPE_READINESS_DATABASE",
                        other,
                        "expected required or reported",
                    ));
                }
            },
            max_series_per_family: int_in(
                "PERFSCOPE_MAX_SERIES_PER_FAMILY",
                self.max_series_per_family.as_deref(),
                1,
                1_000_000,
                defaults.max_series_per_family,
            )?,
            http_buckets: buckets(
                "PERFSCOPE_HTTP_BUCKETS",
                self.http_buckets.as_deref(),
                defaults.http_buckets,
            )?,
            db_buckets: buckets(
                "PERFSCOPE_DB_BUCKETS",
                self.db_buckets.as_deref(),
                defaults.db_buckets,
            )?,
            max_body_bytes: int_in(
                "PERFSCOPE_MAX_BODY_BYTES",
                self.max_body_bytes.as_deref(),
                64,
                64 * 1024 * 1024,
                defaults.max_body_bytes,
            )?,
            runtime_sample_interval: millis(
                "PERFSCOPE_RUNTIME_SAMPLE_INTERVAL",
                self.runtime_sample_interval.as_deref(),
                100,
                60_000,
                defaults.runtime_sample_interval,
            )?,
            shutdown_grace: millis(
                "PERFSCOPE_SHUTDOWN_GRACE",
                self.shutdown_grace.as_deref(),
                0,
                600_000,
                defaults.shutdown_grace,
            )?,
            header_timeout: millis(
                "PERFSCOPE_HEADER_TIMEOUT",
                self.header_timeout.as_deref(),
                100,
                600_000,
                defaults.header_timeout,
            )?,
            body_timeout: millis(
                "PERFSCOPE_BODY_TIMEOUT",
                self.body_timeout.as_deref(),
                100,
                600_000,
                defaults.body_timeout,
            )?,
            max_http_connections: int_in(
                "PERFSCOPE_MAX_HTTP_CONNECTIONS",
                self.max_http_connections.as_deref(),
                1,
                65_536,
                defaults.max_http_connections,
            )?,
            read_interval: millis(
                "PERFSCOPE_READ_INTERVAL",
                self.read_interval.as_deref(),
                100,
                3_600_000,
                defaults.read_interval,
            )?,
            read_timeout: millis(
                "PERFSCOPE_READ_TIMEOUT",
                self.read_timeout.as_deref(),
                100,
                600_000,
                defaults.read_timeout,
            )?,
            max_db_connections: int_in(
                "PERFSCOPE_MAX_DB_CONNECTIONS",
                self.max_db_connections.as_deref(),
                1,
                1_000,
                defaults.max_db_connections,
            )?,
            db_connection_headroom: int_in(
                "PERFSCOPE_DB_CONNECTION_HEADROOM",
                self.db_connection_headroom.as_deref(),
                0,
                10_000,
                defaults.db_connection_headroom,
            )?,
            long_query_threshold: millis(
                "PERFSCOPE_LONG_QUERY_THRESHOLD",
                self.long_query_threshold.as_deref(),
                100,
                86_400_000,
                defaults.long_query_threshold,
            )?,
            idle_in_transaction_threshold: millis(
                "PERFSCOPE_IDLE_IN_TRANSACTION_THRESHOLD",
                self.idle_in_transaction_threshold.as_deref(),
                100,
                86_400_000,
                defaults.idle_in_transaction_threshold,
            )?,
            top_statements: int_in(
                "PERFSCOPE_TOP_STATEMENTS",
                self.top_statements.as_deref(),
                0,
                1_000,
                defaults.top_statements,
            )?,
            planner: planner(self)?,
            alert_webhook_urls: webhook_urls(self.alert_webhook_urls.as_deref())?,
            alert_webhook_secret: token(
                "ALERT_WEBHOOK_SECRET",
                self.alert_webhook_secret.as_deref(),
            )?,
            alert_for: millis(
                "PERFSCOPE_ALERT_FOR",
                self.alert_for.as_deref(),
                0,
                86_400_000,
                defaults.alert_for,
            )?,
            alert_dedup_window: millis(
                "PERFSCOPE_ALERT_DEDUP_WINDOW",
                self.alert_dedup_window.as_deref(),
                1_000,
                86_400_000,
                defaults.alert_dedup_window,
            )?,
            webhook_deadline: millis(
                "PERFSCOPE_WEBHOOK_DEADLINE",
                self.webhook_deadline.as_deref(),
                100,
                600_000,
                defaults.webhook_deadline,
            )?,
            sentry_dsn: sentry_dsn(self.sentry_dsn.as_deref())?,
            sentry_environment: label("SENTRY_ENVIRONMENT", self.sentry_environment.as_deref())?,
            sentry_release: label("SENTRY_RELEASE", self.sentry_release.as_deref())?,
            sentry_traces_sample_rate: match self.sentry_traces_sample_rate.as_deref() {
                None | Some("") => defaults.sentry_traces_sample_rate,
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "SENTRY_TRACES_SAMPLE_RATE",
                            v,
                            "expected a share in [0, 1]",
                        )
                    })?,
            },
            otlp: otlp(&self.otlp)?,
        })
    }
}

/// Parses `PERFSCOPE_WATCH_DATABASES`: comma-separated `name=url` pairs.
/// Errors never show a password.
fn watch_list(value: Option<&str>) -> Result<Vec<(String, DatabaseUrl)>, ConfigError> {
    const VAR: &str = "PERFSCOPE_WATCH_DATABASES";
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut list: Vec<(String, DatabaseUrl)> = Vec::new();
    // An error names the entry by its position (and its name when that is
    // a valid name), never its text: a comma inside a password splits an
    // entry, and either half may hold part of it.
    for (index, pair) in value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let entry = format!("entry {}", index + 1);
        let Some((name, url)) = pair.split_once('=') else {
            return Err(ConfigError::new(
                VAR,
                &entry,
                "expected comma-separated name=postgres://... pairs (percent-encode a comma in a password as %2C)",
            ));
        };
        let name = name.trim();
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(ConfigError::new(
                VAR,
                &entry,
                "expected name=postgres://... with a name of lowercase letters, digits, `_` or `-` (at most 63)",
            ));
        }
        if name == "default" || list.iter().any(|(n, _)| n == name) {
            return Err(ConfigError::new(
                VAR,
                &format!("{entry} ({name})"),
                "expected a unique name other than `default`",
            ));
        }
        if url.trim().is_empty() {
            return Err(ConfigError::new(
                VAR,
                name,
                "expected a connection string after `=`",
            ));
        }
        list.push((name.to_owned(), checked_dsn(VAR, name, url.trim())?));
    }
    Ok(list)
}

/// A connection string whose options (e.g. `sslmode`, `sslrootcert`) the
/// agent can use. The error names the option, never the password.
fn checked_dsn(var: &'static str, name: &str, url: &str) -> Result<DatabaseUrl, ConfigError> {
    #[cfg(feature = "postgres")]
    {
        let shown = if name.is_empty() {
            redact_dsn(url)
        } else {
            name.to_owned()
        };
        crate::db::connect::ConnectOptions::parse(url)
            .and_then(|options| options.connector())
            .map_err(|reason| {
                ConfigError::new(
                    var,
                    &shown,
                    format!("expected a usable connection string: {reason}"),
                )
            })?;
    }
    #[cfg(not(feature = "postgres"))]
    let _ = (var, name);
    Ok(DatabaseUrl::new(url))
}

/// `SENTRY_DSN`: checked by the Sentry SDK's own parser when the `sentry`
/// feature is on. A DSN holds a key, so errors never show it.
fn sentry_dsn(value: Option<&str>) -> Result<Option<Secret>, ConfigError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    #[cfg(feature = "sentry")]
    if value.parse::<sentry::types::Dsn>().is_err() {
        return Err(ConfigError::new(
            "SENTRY_DSN",
            "***",
            "expected a Sentry DSN such as https://<key>@o0.ingest.sentry.io/<project>",
        ));
    }
    Ok(Some(Secret::new(value)))
}

/// The OTLP exporter's settings: on when an endpoint variable is set,
/// unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
fn otlp(raw: &RawOtlp) -> Result<Option<OtlpConfig>, ConfigError> {
    fn set(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    if set(&raw.sdk_disabled).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match set(&raw.traces_exporter) {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(ConfigError::new(
                "OTEL_TRACES_EXPORTER",
                other,
                "expected otlp or none",
            ));
        }
    }
    let (protocol_var, protocol) = match (set(&raw.traces_protocol), set(&raw.protocol)) {
        (Some(v), _) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(v)),
        (None, v) => ("OTEL_EXPORTER_OTLP_PROTOCOL", v),
    };
    let protocol = match protocol {
        None | Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
        Some("grpc") => OtlpProtocol::Grpc,
        Some(other) => {
            return Err(ConfigError::new(
                protocol_var,
                other,
                "expected grpc or http/protobuf",
            ));
        }
    };
    let endpoint = match (set(&raw.traces_endpoint), set(&raw.endpoint)) {
        (Some(url), _) => otlp_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)?.to_owned(),
        (None, Some(url)) => {
            let base = otlp_url("OTEL_EXPORTER_OTLP_ENDPOINT", url)?;
            match protocol {
                OtlpProtocol::Grpc => base.to_owned(),
                OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            }
        }
        (None, None) => return Ok(None),
    };
    let defaults = OtlpConfig::new(endpoint, protocol);
    Ok(Some(OtlpConfig {
        service_name: label("OTEL_SERVICE_NAME", raw.service_name.as_deref())?,
        max_queue_size: int_in(
            "OTEL_BSP_MAX_QUEUE_SIZE",
            set(&raw.bsp_max_queue_size),
            1,
            1_000_000,
            defaults.max_queue_size,
        )?,
        schedule_delay: millis(
            "OTEL_BSP_SCHEDULE_DELAY",
            set(&raw.bsp_schedule_delay),
            1,
            600_000,
            defaults.schedule_delay,
        )?,
        max_export_batch_size: int_in(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            set(&raw.bsp_max_export_batch_size),
            1,
            1_000_000,
            defaults.max_export_batch_size,
        )?,
        export_timeout: millis(
            "OTEL_BSP_EXPORT_TIMEOUT",
            set(&raw.bsp_export_timeout),
            1,
            600_000,
            Duration::from_millis(30_000),
        )?
        .min(match set(&raw.traces_timeout) {
            Some(v) => millis(
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                Some(v),
                1,
                600_000,
                defaults.export_timeout,
            )?,
            None => millis(
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                set(&raw.timeout),
                1,
                600_000,
                defaults.export_timeout,
            )?,
        }),
        ..defaults
    }))
}

/// An OTLP endpoint: an http(s) URL with a host. Not echoed in errors (it
/// may carry credentials).
fn otlp_url<'a>(var: &'static str, url: &'a str) -> Result<&'a str, ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(url)
        }
        _ => Err(ConfigError::new(
            var,
            "***",
            "expected an http:// or https:// URL such as http://otel-collector:4318",
        )),
    }
}

/// A short free-text tag (environment, release): printable, ≤ 200 bytes.
fn label(var: &'static str, value: Option<&str>) -> Result<Option<String>, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.len() <= 200 && !v.chars().any(char::is_control) => Ok(Some(v.to_owned())),
        Some(v) => Err(ConfigError::new(
            var,
            &v.chars().take(40).collect::<String>(),
            "expected a printable tag of at most 200 bytes",
        )),
    }
}

/// The planner role's settings (see `crate::pg::planner`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannerConfig {
    /// `PERFSCOPE_PLANNER_USER`: the role the planner logs in as.
    pub user: String,
    /// `PERFSCOPE_PLANNER_PASSWORD`.
    pub password: Option<Secret>,
    /// `PERFSCOPE_PLAN_ROLES`: the roles whose statements may be planned.
    pub roles: Vec<String>,
    /// `PERFSCOPE_TRUSTED_OWNERS`: roles whose functions, operators and
    /// views are trusted besides built-in and superusers' ones.
    pub trusted_owners: Vec<String>,
}

/// A comma-separated list of role names (each a valid name: at most 63
/// bytes, no control characters).
fn role_list(var: &'static str, value: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let mut roles = Vec::new();
    for role in value.unwrap_or("").split(',').map(str::trim) {
        if role.is_empty() {
            continue;
        }
        if role.len() > 63 || role.chars().any(char::is_control) {
            return Err(ConfigError::new(
                var,
                &role.chars().take(40).collect::<String>(),
                "expected comma-separated role names of at most 63 bytes",
            ));
        }
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_owned());
        }
    }
    Ok(roles)
}

/// `PERFSCOPE_PLANNER_USER` and the settings that only mean something
/// with it.
fn planner(raw: &RawConfig) -> Result<Option<PlannerConfig>, ConfigError> {
    let user = role_list("PERFSCOPE_PLANNER_USER", raw.planner_user.as_deref())?;
    let roles = role_list("PERFSCOPE_PLAN_ROLES", raw.plan_roles.as_deref())?;
    let trusted_owners = role_list("PERFSCOPE_TRUSTED_OWNERS", raw.trusted_owners.as_deref())?;
    let password = match raw.planner_password.as_deref() {
        None | Some("") => None,
        Some(v) if v.chars().any(char::is_control) => {
            return Err(ConfigError::new(
                "PERFSCOPE_PLANNER_PASSWORD",
                "***",
                "expected a password without control characters",
            ));
        }
        Some(v) => Some(Secret::new(v)),
    };
    let user = match user.as_slice() {
        [] => {
            if password.is_some() || !roles.is_empty() {
                let var = if password.is_some() {
                    "PERFSCOPE_PLANNER_PASSWORD"
                } else {
                    "PERFSCOPE_PLAN_ROLES"
                };
                return Err(ConfigError::new(
                    var,
                    "***",
                    "is set, but PERFSCOPE_PLANNER_USER is not: set the planner role too (sql/install.sql creates perfscope_planner)",
                ));
            }
            return Ok(None);
        }
        [one] => one.clone(),
        _ => {
            return Err(ConfigError::new(
                "PERFSCOPE_PLANNER_USER",
                raw.planner_user.as_deref().unwrap_or(""),
                "expected one role name",
            ));
        }
    };
    Ok(Some(PlannerConfig {
        user,
        password,
        roles,
        trusted_owners,
    }))
}

/// `ALERT_WEBHOOK_URLS`: comma-separated http(s) URLs. They may embed
/// tokens (Slack, Teams), so errors never show them.
fn webhook_urls(value: Option<&str>) -> Result<Vec<Secret>, ConfigError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut urls = Vec::new();
    for (i, url) in value
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .enumerate()
    {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host_ok = rest.is_some_and(|r| {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains(char::is_whitespace)
        });
        if !host_ok {
            return Err(ConfigError::new(
                "ALERT_WEBHOOK_URLS",
                "***",
                format!(
                    "expected comma-separated http:// or https:// URLs (URL {} is not one)",
                    i + 1
                ),
            ));
        }
        urls.push(Secret::new(url));
    }
    Ok(urls)
}

fn token(var: &'static str, value: Option<&str>) -> Result<Option<Secret>, ConfigError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if v.len() < 16 => Err(ConfigError::new(
            var,
            "***",
            "expected a token of at least 16 characters",
        )),
        Some(v) if v.chars().any(|c| c.is_whitespace() || c.is_control()) => Err(ConfigError::new(
            var,
            "***",
            "expected a token without spaces or control characters",
        )),
        Some(v) => Ok(Some(Secret::new(v))),
    }
}

fn int_in<T>(
    var: &'static str,
    value: Option<&str>,
    min: T,
    max: T,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(ConfigError::new(
            var,
            v,
            format!("expected an integer in [{min}, {max}]"),
        )),
    }
}

fn millis(
    var: &'static str,
    value: Option<&str>,
    min: u64,
    max: u64,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Duration::from_millis(n)),
        _ => Err(ConfigError::new(
            var,
            v,
            format!("expected milliseconds in [{min}, {max}]"),
        )),
    }
}

fn ratio(var: &'static str, value: Option<&str>, default: f64) -> Result<f64, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(ConfigError::new(var, v, "expected a ratio in (0, 1]")),
    }
}

fn buckets(
    var: &'static str,
    value: Option<&str>,
    default: Buckets,
) -> Result<Buckets, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => Buckets::parse(v).map_err(|why| ConfigError::new(var, v, why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let config = RawConfig::default().validate().expect("defaults are valid");
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.pool_max, 10);
        assert_eq!(config.slow_query_threshold, Duration::from_millis(1000));
        assert!(config.admin_token.is_none());
    }

    #[test]
    fn bad_ratio_names_the_variable() {
        let raw = RawConfig {
            high_memory_threshold: Some("1.7".into()),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "HIGH_MEMORY_THRESHOLD=1.7: expected a ratio in (0, 1]"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: Vec<(RawConfig, &str)> = vec![
            (
                RawConfig {
                    listen: Some("nope".into()),
                    ..Default::default()
                },
                "PERFSCOPE_LISTEN=nope",
            ),
            (
                RawConfig {
                    pool_max: Some("0".into()),
                    ..Default::default()
                },
                "DATABASE_POOL_MAX=0",
            ),
            (
                RawConfig {
                    pool_min: Some("20".into()),
                    ..Default::default()
                },
                "DATABASE_POOL_MIN=20",
            ),
            (
                RawConfig {
                    max_db_connections: Some("0".into()),
                    ..Default::default()
                },
                "PERFSCOPE_MAX_DB_CONNECTIONS=0",
            ),
            (
                RawConfig {
                    db_connection_headroom: Some("-1".into()),
                    ..Default::default()
                },
                "PERFSCOPE_DB_CONNECTION_HEADROOM=-1",
            ),
            (
                RawConfig {
                    slow_query_threshold: Some("-5".into()),
                    ..Default::default()
                },
                "SLOW_QUERY_THRESHOLD=-5",
            ),
            (
                RawConfig {
                    log_format: Some("xml".into()),
                    ..Default::default()
                },
                "PERFSCOPE_LOG_FORMAT=xml",
            ),
            (
                RawConfig {
                    readiness_database: Some("optional".into()),
                    ..Default::default()
                },
                "PERFSCOPE_READINESS_DATABASE=optional",
            ),
            (
                RawConfig {
                    http_buckets: Some("0.5,0.1".into()),
                    ..Default::default()
                },
                "PERFSCOPE_HTTP_BUCKETS=0.5,0.1",
            ),
            (
                RawConfig {
                    admin_token: Some("short".into()),
                    ..Default::default()
                },
                "PERFSCOPE_ADMIN_TOKEN=***",
            ),
        ];
        for (raw, prefix) in cases {
            let err = raw.validate().unwrap_err().to_string();
            assert!(err.starts_with(prefix), "{err} should start with {prefix}");
            assert!(err.contains("expected"), "{err}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let raw = RawConfig {
            admin_token: Some("admin-token-0123456789".into()),
            metrics_token: Some("metrics-token-0123456789".into()),
            database_url: Some("postgres://app:hunter2secret@db:5432/app".into()),
            ..Default::default()
        };
        let config = raw.validate().expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains("admin-token-0123456789"), "{debug}");
        assert!(!debug.contains("metrics-token-0123456789"), "{debug}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(debug.contains("postgres://app:***@db:5432/app"), "{debug}");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn unusable_tls_options_name_the_variable_not_the_password() {
        let raw = RawConfig {
            database_url: Some(
                "postgres://app:hunter2@db/shop?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"
                    .into(),
            ),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("DATABASE_URL=postgres://app:***@db/shop"),
            "{err}"
        );
        assert!(err.contains("sslrootcert=/nonexistent/ca.pem"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let raw = RawConfig {
            watch_databases: Some("reports=postgres://r:hunter2@db/r?sslmode=sometimes".into()),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("PERFSCOPE_WATCH_DATABASES=reports: expected"),
            "{err}"
        );
        assert!(err.contains("sslmode=sometimes"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn webhook_urls_are_checked_and_never_shown() {
        let raw = RawConfig {
            alert_webhook_urls: Some(
                "https://hooks.example.com/T0/B0/xoxb-secret, http://127.0.0.1:9000/hook".into(),
            ),
            alert_webhook_secret: Some("webhook-signing-secret-01".into()),
            alert_for: Some("5000".into()),
            ..Default::default()
        };
        let config = raw.validate().expect("valid");
        assert_eq!(config.alert_webhook_urls.len(), 2);
        assert_eq!(config.alert_for, Duration::from_secs(5));
        assert!(!format!("{config:?}").contains("xoxb-secret"));
        let raw = RawConfig {
            alert_webhook_urls: Some("https://ok.example.com/a,ftp://files/xoxb-secret".into()),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.starts_with("ALERT_WEBHOOK_URLS=***: expected"), "{err}");
        assert!(err.contains("URL 2"), "{err}");
        assert!(!err.contains("xoxb-secret"), "{err}");
        let raw = RawConfig {
            alert_webhook_secret: Some("short".into()),
            ..Default::default()
        };
        assert!(
            raw.validate()
                .unwrap_err()
                .to_string()
                .starts_with("ALERT_WEBHOOK_SECRET=***")
        );
    }

    #[test]
    fn key_value_dsn_is_redacted() {
        assert_eq!(
            redact_dsn("host=db user=app password=s3cret dbname=app"),
            "host=db user=app password=*** dbname=app"
        );
        assert_eq!(redact_dsn("postgres://db/app"), "postgres://db/app");
    }

    /// Found by the `config` fuzz target: a watch-list entry whose name held
    /// `://` was shown with its password.
    #[test]
    fn odd_connection_strings_never_show_the_password() {
        for (dsn, secret) in [
            ("postgres://u:p/ss@h/d", "p/ss"),
            ("postgres://u:p?s@s@h/d", "p?s@s"),
            ("postgres://u@h/d?sslmode=require&password=pq", "pq"),
            ("postgresql://u:Pw1@h:5432/d?PASSWORD=Pw2", "Pw"),
            ("host=db password = 'two words' user=x", "two words"),
            ("host=db password='it\\'s' user=x", "it\\'s"),
            ("host=db password='unterminated", "unterminated"),
            ("password", "password"),
            // Found in review: key/value text with `://` inside, a
            // mistyped URL, sslpassword, a percent-encoded key.
            ("host=db password=s3cret application_name=a://b", "s3cret"),
            ("postgres:/u:s3cret@h/db", "s3cret"),
            ("postgresql//u:s3cret@h", "s3cret"),
            ("host=db sslpassword=s3cret", "s3cret"),
            ("postgres://h/d?sslpassword=s3cret", "s3cret"),
            ("postgres://h/d?pass%77ord=s3cret", "s3cret"),
            ("host=db pass%77ord=s3cret", "s3cret"),
        ] {
            let shown = redact_dsn(dsn);
            assert!(!shown.contains(secret), "{dsn} -> {shown}");
        }
        assert_eq!(
            redact_dsn("host=db  password = 'a b' dbname=x"),
            "host=db  password=*** dbname=x"
        );
        let raw = RawConfig {
            watch_databases: Some("0:///x=postgres://u:hunter2@h/0:///x".into()),
            ..Default::default()
        };
        let error = raw.validate().expect_err("an invalid name").to_string();
        assert!(!error.contains("hunter2"), "{error}");
        let raw = RawConfig {
            watch_databases: Some("postgres://u:hunter2@h/d?sslmode=require".into()),
            ..Default::default()
        };
        let error = raw.validate().expect_err("no name").to_string();
        assert!(!error.contains("hunter2"), "{error}");
        // A comma inside a password splits the entry: neither half shows.
        let raw = RawConfig {
            watch_databases: Some("a=postgres://u:hunXQ,ter2ZW@h/d".into()),
            ..Default::default()
        };
        let error = raw.validate().expect_err("a split entry").to_string();
        assert!(
            !error.contains("hunXQ") && !error.contains("ter2ZW"),
            "{error}"
        );
    }

    #[test]
    fn watch_databases_parse_and_hide_passwords() {
        let raw = RawConfig {
            watch_databases: Some(
                "analytics=postgres://ro:s3cret@db2/analytics, billing=host=db3 password=p4ss"
                    .into(),
            ),
            ..Default::default()
        };
        let config = raw.validate().expect("valid");
        assert_eq!(config.watch_databases.len(), 2);
        assert_eq!(config.watch_databases[0].0, "analytics");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("p4ss"),
            "{debug}"
        );
        for bad in [
            "nameonly",
            "default=postgres://x/y",
            "Bad=postgres://x/y",
            "a=x,a=y",
            "a=",
        ] {
            let raw = RawConfig {
                watch_databases: Some(bad.into()),
                ..Default::default()
            };
            let err = raw.validate().expect_err(bad).to_string();
            assert!(err.starts_with("PERFSCOPE_WATCH_DATABASES="), "{err}");
        }
        let raw = RawConfig {
            watch_databases: Some("Bad=postgres://u:hunter2@h/d".into()),
            ..Default::default()
        };
        assert!(
            !raw.validate()
                .expect_err("bad")
                .to_string()
                .contains("hunter2")
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let raw = RawConfig {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err();
        assert_eq!(err.var, "PERFSCOPE_TLS_KEY");
    }

    fn otlp_of(raw: RawOtlp) -> Result<Option<OtlpConfig>, ConfigError> {
        RawConfig {
            otlp: raw,
            ..Default::default()
        }
        .validate()
        .map(|c| c.otlp)
    }

    #[test]
    fn otlp_follows_the_opentelemetry_variables() {
        assert_eq!(otlp_of(RawOtlp::default()), Ok(None));
        let http = otlp_of(RawOtlp {
            endpoint: Some("http://collector:4318/".into()),
            ..Default::default()
        })
        .expect("valid")
        .expect("on");
        assert_eq!(http.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(http.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(http.export_timeout, Duration::from_secs(10));
        let grpc = otlp_of(RawOtlp {
            endpoint: Some("http://collector:4317".into()),
            traces_endpoint: Some("https://traces.example.com:4317".into()),
            protocol: Some("http/protobuf".into()),
            traces_protocol: Some("grpc".into()),
            bsp_max_queue_size: Some("64".into()),
            bsp_export_timeout: Some("2000".into()),
            ..Default::default()
        })
        .expect("valid")
        .expect("on");
        assert_eq!(grpc.endpoint, "https://traces.example.com:4317");
        assert_eq!(grpc.protocol, OtlpProtocol::Grpc);
        assert_eq!(grpc.max_queue_size, 64);
        assert_eq!(grpc.export_timeout, Duration::from_secs(2));
        for off in [
            RawOtlp {
                endpoint: Some("http://c:4318".into()),
                sdk_disabled: Some("true".into()),
                ..Default::default()
            },
            RawOtlp {
                endpoint: Some("http://c:4318".into()),
                traces_exporter: Some("none".into()),
                ..Default::default()
            },
        ] {
            assert_eq!(otlp_of(off), Ok(None));
        }
        let bad = |raw: RawOtlp| otlp_of(raw).expect_err("refused");
        let err = bad(RawOtlp {
            endpoint: Some("http://c:4318".into()),
            protocol: Some("http/json".into()),
            ..Default::default()
        });
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_PROTOCOL");
        let err = bad(RawOtlp {
            traces_endpoint: Some("collector:4317?token=hunter2".into()),
            ..Default::default()
        });
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = bad(RawOtlp {
            endpoint: Some("http://c:4318".into()),
            bsp_schedule_delay: Some("soon".into()),
            ..Default::default()
        });
        assert_eq!(err.var, "OTEL_BSP_SCHEDULE_DELAY");
        let err = bad(RawOtlp {
            endpoint: Some("http://c:4318".into()),
            timeout: Some("-1".into()),
            ..Default::default()
        });
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_TIMEOUT");
    }
}
