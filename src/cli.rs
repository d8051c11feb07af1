//! Command line of the `perfscope` binary: `serve` (the default) and
//! `openapi`. Every setting is a flag and an environment variable of the
//! same name; values arrive as text and are checked by
//! [`crate::config::RawConfig::validate`], so errors name the variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::RawConfig;

/// perfscope: performance monitoring for Poem/Tokio APIs on PostgreSQL.
#[derive(Parser, Debug)]
#[command(name = "perfscope", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the agent (the default).
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI spec as JSON and exit.
    Openapi,
    /// Run the agent on a throwaway Postgres with a demo app and workload
    /// (prints the URLs and the admin token).
    Demo(Box<ServeArgs>),
}

/// Settings of the agent.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PERFSCOPE_LISTEN")]
    pub listen: Option<String>,
    /// Bearer token for admin endpoints (at least 16 characters); unset, they answer 401.
    #[arg(long, env = "PERFSCOPE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Read-only bearer token accepted by the metrics endpoint only.
    #[arg(long, env = "PERFSCOPE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, env = "PERFSCOPE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, env = "PERFSCOPE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Postgres connection string.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// More databases to watch, comma-separated name=postgres://... pairs (readers and advice only).
    #[arg(long, env = "PERFSCOPE_WATCH_DATABASES", hide_env_values = true)]
    pub watch_databases: Option<String>,
    /// Connections opened at start-up [default: 2].
    #[arg(long, env = "DATABASE_POOL_MIN")]
    pub database_pool_min: Option<String>,
    /// Pool size [default: 10].
    #[arg(long, env = "DATABASE_POOL_MAX")]
    pub database_pool_max: Option<String>,
    /// Default TTL of cached queries, ms [default: 300000].
    #[arg(long, env = "QUERY_CACHE_TTL")]
    pub query_cache_ttl: Option<String>,
    /// Entries per query cache [default: 1000].
    #[arg(long, env = "MAX_CACHE_SIZE")]
    pub max_cache_size: Option<String>,
    /// Slow-query threshold, ms [default: 1000].
    #[arg(long, env = "SLOW_QUERY_THRESHOLD")]
    pub slow_query_threshold: Option<String>,
    /// Share of the memory limit that counts as high, (0, 1] [default: 0.9].
    #[arg(long, env = "HIGH_MEMORY_THRESHOLD")]
    pub high_memory_threshold: Option<String>,
    /// Event-loop lag that counts as high, ms [default: 100].
    #[arg(long, env = "EVENT_LOOP_LAG_THRESHOLD")]
    pub event_loop_lag_threshold: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "PERFSCOPE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Whether an unreachable DATABASE_URL makes /readyz answer 503: required or reported [default: required].
    #[arg(long, env = "PERFSCOPE_READINESS_DATABASE")]
    pub readiness_database: Option<String>,
    /// Series per metric family before new label sets fold into an overflow series [default: 2000].
    #[arg(long, env = "PERFSCOPE_MAX_SERIES_PER_FAMILY")]
    pub max_series_per_family: Option<String>,
    /// Request-duration buckets, seconds, comma-separated [default: 0.001 … 10].
    #[arg(long, env = "PERFSCOPE_HTTP_BUCKETS")]
    pub http_buckets: Option<String>,
    /// Query-duration buckets, seconds, comma-separated [default: 0.0005 … 10].
    #[arg(long, env = "PERFSCOPE_DB_BUCKETS")]
    pub db_buckets: Option<String>,
    /// Largest accepted request body, bytes [default: 65536].
    #[arg(long, env = "PERFSCOPE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<String>,
    /// Runtime sampling interval, ms [default: 1000].
    #[arg(long, env = "PERFSCOPE_RUNTIME_SAMPLE_INTERVAL")]
    pub runtime_sample_interval: Option<String>,
    /// How long shutdown waits for in-flight requests, ms [default: 10000].
    #[arg(long, env = "PERFSCOPE_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
    /// How long a request head may take to arrive before the connection is closed, ms [default: 10000].
    #[arg(long, env = "PERFSCOPE_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// How long a request body may take to arrive once its head is in, ms [default: 10000].
    #[arg(long, env = "PERFSCOPE_BODY_TIMEOUT")]
    pub body_timeout: Option<String>,
    /// Connections the agent's listener holds at once; more wait [default: 512].
    #[arg(long, env = "PERFSCOPE_MAX_HTTP_CONNECTIONS")]
    pub max_http_connections: Option<String>,
    /// How often the Postgres readers run, ms [default: 15000].
    #[arg(long, env = "PERFSCOPE_READ_INTERVAL")]
    pub read_interval: Option<String>,
    /// statement_timeout of each reader pass, ms [default: 5000].
    #[arg(long, env = "PERFSCOPE_READ_TIMEOUT")]
    pub read_timeout: Option<String>,
    /// Most connections the agent opens across every database it watches [default: 4].
    #[arg(long, env = "PERFSCOPE_MAX_DB_CONNECTIONS")]
    pub max_db_connections: Option<String>,
    /// Connection slots left free on each server beyond the reserved ones [default: 10].
    #[arg(long, env = "PERFSCOPE_DB_CONNECTION_HEADROOM")]
    pub db_connection_headroom: Option<String>,
    /// Active queries running longer than this are flagged, ms [default: 60000].
    #[arg(long, env = "PERFSCOPE_LONG_QUERY_THRESHOLD")]
    pub long_query_threshold: Option<String>,
    /// Sessions idle in a transaction longer than this are flagged, ms [default: 30000].
    #[arg(long, env = "PERFSCOPE_IDLE_IN_TRANSACTION_THRESHOLD")]
    pub idle_in_transaction_threshold: Option<String>,
    /// Statements per database exported as pg_stat_statements_* series [default: 50].
    #[arg(long, env = "PERFSCOPE_TOP_STATEMENTS")]
    pub top_statements: Option<String>,
    /// The role that plans database users' statements for index advice and EXPLAIN (sql/install.sql creates perfscope_planner); unset, nothing is planned.
    #[arg(long, env = "PERFSCOPE_PLANNER_USER")]
    pub planner_user: Option<String>,
    /// The planner role's password.
    #[arg(long, env = "PERFSCOPE_PLANNER_PASSWORD", hide_env_values = true)]
    pub planner_password: Option<String>,
    /// Roles whose statements may be planned, comma-separated [default: none].
    #[arg(long, env = "PERFSCOPE_PLAN_ROLES")]
    pub plan_roles: Option<String>,
    /// Roles whose functions, operators and views are trusted to run while planning, besides built-in ones, superusers' and those of extensions they own, comma-separated.
    #[arg(long, env = "PERFSCOPE_TRUSTED_OWNERS")]
    pub trusted_owners: Option<String>,
    /// Webhook URLs alerts are posted to, comma-separated.
    #[arg(long, env = "ALERT_WEBHOOK_URLS", hide_env_values = true)]
    pub alert_webhook_urls: Option<String>,
    /// Key of the HMAC-SHA256 signature header of webhook bodies (at least 16 characters).
    #[arg(long, env = "ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<String>,
    /// How long a condition must hold before its alert fires, ms [default: 60000].
    #[arg(long, env = "PERFSCOPE_ALERT_FOR")]
    pub alert_for: Option<String>,
    /// At most one slow-query alert per statement per window, ms [default: 600000].
    #[arg(long, env = "PERFSCOPE_ALERT_DEDUP_WINDOW")]
    pub alert_dedup_window: Option<String>,
    /// How long a webhook notification is retried, ms [default: 30000].
    #[arg(long, env = "PERFSCOPE_WEBHOOK_DEADLINE")]
    pub webhook_deadline: Option<String>,
    /// Sentry DSN; unset, Sentry is off.
    #[arg(long, env = "SENTRY_DSN", hide_env_values = true)]
    pub sentry_dsn: Option<String>,
    /// Sentry environment tag.
    #[arg(long, env = "SENTRY_ENVIRONMENT")]
    pub sentry_environment: Option<String>,
    /// Sentry release tag [default: perfscope@<version>].
    #[arg(long, env = "SENTRY_RELEASE")]
    pub sentry_release: Option<String>,
    /// Share of requests sent to Sentry as transactions, [0, 1] [default: 0.1].
    #[arg(long, env = "SENTRY_TRACES_SAMPLE_RATE")]
    pub sentry_traces_sample_rate: Option<String>,
    /// OTLP base endpoint; set, traces are exported (`/v1/traces` is added over HTTP).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", hide_env_values = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// OTLP traces endpoint, used as given (wins over OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        hide_env_values = true
    )]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// grpc or http/protobuf [default: http/protobuf].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL")]
    pub otel_exporter_otlp_protocol: Option<String>,
    /// Protocol for traces alone (wins over OTEL_EXPORTER_OTLP_PROTOCOL).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")]
    pub otel_exporter_otlp_traces_protocol: Option<String>,
    /// service.name of the spans [default: unknown_service:<executable>].
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
    /// true turns OpenTelemetry off.
    #[arg(long, env = "OTEL_SDK_DISABLED")]
    pub otel_sdk_disabled: Option<String>,
    /// otlp or none [default: otlp].
    #[arg(long, env = "OTEL_TRACES_EXPORTER")]
    pub otel_traces_exporter: Option<String>,
    /// Finished spans queued for export before new ones are dropped [default: 2048].
    #[arg(long, env = "OTEL_BSP_MAX_QUEUE_SIZE")]
    pub otel_bsp_max_queue_size: Option<String>,
    /// Longest wait before queued spans are sent, ms [default: 5000].
    #[arg(long, env = "OTEL_BSP_SCHEDULE_DELAY")]
    pub otel_bsp_schedule_delay: Option<String>,
    /// Spans per export [default: 512].
    #[arg(long, env = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")]
    pub otel_bsp_max_export_batch_size: Option<String>,
    /// Longest export call, ms [default: 30000].
    #[arg(long, env = "OTEL_BSP_EXPORT_TIMEOUT")]
    pub otel_bsp_export_timeout: Option<String>,
    /// The exporter's timeout per request, ms [default: 10000].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TIMEOUT")]
    pub otel_exporter_otlp_timeout: Option<String>,
    /// The traces exporter's timeout per request, ms (wins over OTEL_EXPORTER_OTLP_TIMEOUT).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")]
    pub otel_exporter_otlp_traces_timeout: Option<String>,
}

impl From<ServeArgs> for RawConfig {
    fn from(args: ServeArgs) -> Self {
        Self {
            listen: args.listen,
            admin_token: args.admin_token,
            metrics_token: args.metrics_token,
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            database_url: args.database_url,
            watch_databases: args.watch_databases,
            pool_min: args.database_pool_min,
            pool_max: args.database_pool_max,
            query_cache_ttl: args.query_cache_ttl,
            max_cache_size: args.max_cache_size,
            slow_query_threshold: args.slow_query_threshold,
            high_memory_threshold: args.high_memory_threshold,
            event_loop_lag_threshold: args.event_loop_lag_threshold,
            log_format: args.log_format,
            readiness_database: args.readiness_database,
            max_series_per_family: args.max_series_per_family,
            http_buckets: args.http_buckets,
            db_buckets: args.db_buckets,
            max_body_bytes: args.max_body_bytes,
            runtime_sample_interval: args.runtime_sample_interval,
            shutdown_grace: args.shutdown_grace,
            header_timeout: args.header_timeout,
            body_timeout: args.body_timeout,
            max_http_connections: args.max_http_connections,
            read_interval: args.read_interval,
            read_timeout: args.read_timeout,
            max_db_connections: args.max_db_connections,
            db_connection_headroom: args.db_connection_headroom,
            long_query_threshold: args.long_query_threshold,
            idle_in_transaction_threshold: args.idle_in_transaction_threshold,
            top_statements: args.top_statements,
            planner_user: args.planner_user,
            planner_password: args.planner_password,
            plan_roles: args.plan_roles,
            trusted_owners: args.trusted_owners,
            alert_webhook_urls: args.alert_webhook_urls,
            alert_webhook_secret: args.alert_webhook_secret,
            alert_for: args.alert_for,
            alert_dedup_window: args.alert_dedup_window,
            webhook_deadline: args.webhook_deadline,
            sentry_dsn: args.sentry_dsn,
            sentry_environment: args.sentry_environment,
            sentry_release: args.sentry_release,
            sentry_traces_sample_rate: args.sentry_traces_sample_rate,
            otlp: crate::config::RawOtlp {
                endpoint: args.otel_exporter_otlp_endpoint,
                traces_endpoint: args.otel_exporter_otlp_traces_endpoint,
                protocol: args.otel_exporter_otlp_protocol,
                traces_protocol: args.otel_exporter_otlp_traces_protocol,
                service_name: args.otel_service_name,
                sdk_disabled: args.otel_sdk_disabled,
                traces_exporter: args.otel_traces_exporter,
                bsp_max_queue_size: args.otel_bsp_max_queue_size,
                bsp_schedule_delay: args.otel_bsp_schedule_delay,
                bsp_max_export_batch_size: args.otel_bsp_max_export_batch_size,
                bsp_export_timeout: args.otel_bsp_export_timeout,
                timeout: args.otel_exporter_otlp_timeout,
                traces_timeout: args.otel_exporter_otlp_traces_timeout,
            },
        }
    }
}

/// The environment variables alone, for [`crate::Config::from_env`].
#[derive(Parser, Debug)]
#[command(name = "perfscope")]
struct EnvOnly {
    #[command(flatten)]
    serve: ServeArgs,
}

impl crate::Config {
    /// The configuration from the environment variables the agent reads
    /// (`SLOW_QUERY_THRESHOLD`, `MAX_CACHE_SIZE`, … — see the README),
    /// for a host app that uses perfscope as a library. Errors name the
    /// variable, as the agent's do.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        let args = match EnvOnly::try_parse_from(["perfscope"]) {
            Ok(parsed) => parsed.serve,
            // Every setting is optional text: clap has nothing to refuse
            // without arguments, but if it ever does, fall back to none.
            Err(_) => ServeArgs::default(),
        };
        RawConfig::from(args).validate()
    }
}
