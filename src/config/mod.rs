//! Typed configuration for the agent and the library.
//!
//! Values come from flags or the environment as raw text ([`RawConfig`],
//! generated with the flags from the one table of settings in
//! [`settings`]) and are validated here, so that a bad value fails fast at
//! start-up with one line naming the variable and the accepted range, e.g.
//! `HIGH_MEMORY_THRESHOLD=1.7: expected a ratio in (0, 1]`. `Debug` never
//! prints a token or a database password.
//!
//! [`Config`] is a root of per-subsystem parts, each checked by its own
//! short builder and handed whole to the subsystem that uses it, so a
//! subsystem sees only its own settings.

mod alerts;
mod ash;
mod database;
mod defaults;
mod otlp;
mod parse;
mod planner;
mod prometheus;
mod resource;
mod secret;
mod server;
pub mod settings;
mod sql_comments;
mod store;
mod telemetry;
mod trace_url;

use std::time::Duration;

use clap::Parser;

use crate::metrics::Buckets;
use parse::{buckets, int_in, millis, ratio};

pub use alerts::AlertsConfig;
pub use ash::AshConfig;
pub use database::DatabaseConfig;
pub use defaults::*;
pub use otlp::{OtlpCompression, OtlpConfig, OtlpProtocol};
pub use planner::PlannerConfig;
pub use prometheus::{MatchOp, Matcher, PrometheusConfig, PrometheusSource, Selector};
pub use resource::ServiceResource;
pub use secret::{DatabaseUrl, Secret};
pub use server::{ReadinessDatabase, ServerConfig, TlsFiles};
pub use settings::{RawConfig, RawOtlp, SETTINGS, ServeArgs, Setting};
pub use sql_comments::SqlComments;
pub use store::{DEFAULT_AGENT_DATA_DIR, DataDir, StoreConfig};
pub use telemetry::{SentryConfig, TelemetryConfig};
pub use trace_url::TraceUrl;

/// Output format of the agent's logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The whole configuration, validated: one part per subsystem.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The listener: address, TLS, tokens, HTTP limits and timeouts.
    pub server: ServerConfig,
    /// The databases, the pool, the connection budget, the planner.
    pub database: DatabaseConfig,
    /// The Postgres readers.
    pub readers: ReadersConfig,
    /// The active session history (sampling, memory).
    pub ash: AshConfig,
    /// Alert rules' timing and webhooks.
    pub alerts: AlertsConfig,
    /// Metric families' caps and buckets.
    pub metrics: MetricsConfig,
    /// Query caches.
    pub caches: CacheConfig,
    /// The runtime monitor and its thresholds.
    pub runtime: RuntimeConfig,
    /// Sentry and OTLP.
    pub telemetry: TelemetryConfig,
    /// The history store.
    pub store: StoreConfig,
    /// The Prometheus the route charts read from, if any.
    pub prometheus: PrometheusConfig,
    /// Log output format.
    pub log_format: LogFormat,
}

/// How and how often the Postgres readers run, and what they flag.
#[derive(Clone, Debug)]
pub struct ReadersConfig {
    /// How often the Postgres readers run.
    pub interval: Duration,
    /// `statement_timeout` of each reader pass.
    pub timeout: Duration,
    /// Statements per database exported as metrics.
    pub top_statements: usize,
    /// Active queries running longer than this are flagged (activity view,
    /// findings, metrics).
    pub long_query_threshold: Duration,
    /// Sessions idle in a transaction longer than this are flagged.
    pub idle_in_transaction_threshold: Duration,
}

/// The metric families' series cap and histogram buckets.
#[derive(Clone, Debug)]
pub struct MetricsConfig {
    /// Series cap per metric family.
    pub max_series_per_family: usize,
    /// Buckets of `http_request_duration_seconds`.
    pub http_buckets: Buckets,
    /// Buckets of database query histograms.
    pub db_buckets: Buckets,
}

/// The query caches' defaults.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Default TTL of cached queries.
    pub ttl: Duration,
    /// Entries per query cache.
    pub max_size: u64,
}

/// The runtime monitor: how often it samples and what counts as high.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Runtime sampling interval.
    pub sample_interval: Duration,
    /// Share of the memory limit that counts as high, in (0, 1].
    pub high_memory_threshold: f64,
    /// Event-loop lag that counts as high.
    pub event_loop_lag_threshold: Duration,
}

impl Default for ReadersConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(DEFAULT_READ_INTERVAL_MS),
            timeout: Duration::from_millis(DEFAULT_READ_TIMEOUT_MS),
            top_statements: DEFAULT_TOP_STATEMENTS,
            long_query_threshold: Duration::from_millis(DEFAULT_LONG_QUERY_THRESHOLD_MS),
            idle_in_transaction_threshold: Duration::from_millis(
                DEFAULT_IDLE_IN_TRANSACTION_THRESHOLD_MS,
            ),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            max_series_per_family: DEFAULT_MAX_SERIES_PER_FAMILY,
            http_buckets: Buckets::default_http(),
            db_buckets: Buckets::default_db(),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_millis(DEFAULT_QUERY_CACHE_TTL_MS),
            max_size: DEFAULT_MAX_CACHE_SIZE,
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            sample_interval: Duration::from_millis(DEFAULT_RUNTIME_SAMPLE_INTERVAL_MS),
            high_memory_threshold: DEFAULT_HIGH_MEMORY_THRESHOLD,
            event_loop_lag_threshold: Duration::from_millis(DEFAULT_EVENT_LOOP_LAG_THRESHOLD_MS),
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

impl RawConfig {
    /// Validates every value; the first bad one is returned.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        Ok(Config {
            server: ServerConfig::from_raw(self)?,
            database: DatabaseConfig::from_raw(self)?,
            caches: CacheConfig::from_raw(self)?,
            runtime: RuntimeConfig::from_raw(self)?,
            log_format: log_format(self.log_format.as_deref())?,
            metrics: MetricsConfig::from_raw(self)?,
            readers: ReadersConfig::from_raw(self)?,
            ash: AshConfig::from_raw(self)?,
            alerts: AlertsConfig::from_raw(self)?,
            telemetry: TelemetryConfig::from_raw(self)?,
            store: StoreConfig::from_raw(self)?,
            prometheus: PrometheusConfig::from_raw(self)?,
        })
    }
}

impl CacheConfig {
    fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            ttl: millis(
                "QUERY_CACHE_TTL",
                raw.query_cache_ttl.as_deref(),
                1,
                86_400_000,
                defaults.ttl,
            )?,
            max_size: int_in(
                "MAX_CACHE_SIZE",
                raw.max_cache_size.as_deref(),
                1,
                10_000_000,
                defaults.max_size,
            )?,
        })
    }
}

impl RuntimeConfig {
    fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            high_memory_threshold: ratio(
                "HIGH_MEMORY_THRESHOLD",
                raw.high_memory_threshold.as_deref(),
                defaults.high_memory_threshold,
            )?,
            event_loop_lag_threshold: millis(
                "EVENT_LOOP_LAG_THRESHOLD",
                raw.event_loop_lag_threshold.as_deref(),
                1,
                60_000,
                defaults.event_loop_lag_threshold,
            )?,
            sample_interval: millis(
                "PERFSCOPE_RUNTIME_SAMPLE_INTERVAL",
                raw.runtime_sample_interval.as_deref(),
                100,
                60_000,
                defaults.sample_interval,
            )?,
        })
    }
}

impl MetricsConfig {
    fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            max_series_per_family: int_in(
                "PERFSCOPE_MAX_SERIES_PER_FAMILY",
                raw.max_series_per_family.as_deref(),
                1,
                1_000_000,
                defaults.max_series_per_family,
            )?,
            http_buckets: buckets(
                "PERFSCOPE_HTTP_BUCKETS",
                raw.http_buckets.as_deref(),
                defaults.http_buckets,
            )?,
            db_buckets: buckets(
                "PERFSCOPE_DB_BUCKETS",
                raw.db_buckets.as_deref(),
                defaults.db_buckets,
            )?,
        })
    }
}

impl ReadersConfig {
    fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            interval: millis(
                "PERFSCOPE_READ_INTERVAL",
                raw.read_interval.as_deref(),
                100,
                3_600_000,
                defaults.interval,
            )?,
            timeout: millis(
                "PERFSCOPE_READ_TIMEOUT",
                raw.read_timeout.as_deref(),
                100,
                600_000,
                defaults.timeout,
            )?,
            long_query_threshold: millis(
                "PERFSCOPE_LONG_QUERY_THRESHOLD",
                raw.long_query_threshold.as_deref(),
                100,
                86_400_000,
                defaults.long_query_threshold,
            )?,
            idle_in_transaction_threshold: millis(
                "PERFSCOPE_IDLE_IN_TRANSACTION_THRESHOLD",
                raw.idle_in_transaction_threshold.as_deref(),
                100,
                86_400_000,
                defaults.idle_in_transaction_threshold,
            )?,
            top_statements: int_in(
                "PERFSCOPE_TOP_STATEMENTS",
                raw.top_statements.as_deref(),
                0,
                1_000,
                defaults.top_statements,
            )?,
        })
    }
}

/// `PERFSCOPE_LOG_FORMAT`: text or json.
fn log_format(value: Option<&str>) -> Result<LogFormat, ConfigError> {
    match value {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::new(
            "PERFSCOPE_LOG_FORMAT",
            other,
            "expected text or json",
        )),
    }
}

/// The environment variables alone, for [`Config::from_env`].
#[derive(Parser, Debug)]
#[command(name = "perfscope")]
struct EnvOnly {
    #[command(flatten)]
    serve: ServeArgs,
}

impl Config {
    /// The configuration from the environment variables the agent reads
    /// (`SLOW_QUERY_THRESHOLD`, `MAX_CACHE_SIZE`, … — see the README),
    /// for a host app that uses perfscope as a library. Errors name the
    /// variable, as the agent's do.
    pub fn from_env() -> Result<Self, ConfigError> {
        let args = match EnvOnly::try_parse_from(["perfscope"]) {
            Ok(parsed) => parsed.serve,
            // Every setting is optional text: clap has nothing to refuse
            // without arguments, but if it ever does, fall back to none.
            Err(_) => ServeArgs::default(),
        };
        RawConfig::from(args).validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let config = RawConfig::default().validate().expect("defaults are valid");
        assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.database.pool_max, 10);
        assert_eq!(
            config.database.slow_query_threshold,
            Duration::from_millis(1000)
        );
        assert!(config.server.admin_token.is_none());
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

    #[test]
    fn default_is_what_an_empty_raw_config_validates_to() {
        let validated = RawConfig::default().validate().expect("defaults are valid");
        assert_eq!(format!("{validated:?}"), format!("{:?}", Config::default()));
    }
}
