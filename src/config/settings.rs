//! The one table of settings: each is declared once here — its
//! environment variable, its flag, its default, its help line, whether it
//! is a secret, and the [`RawConfig`] field it fills.
//!
//! A declarative macro turns the table into the clap arguments
//! ([`ServeArgs`]: flag, `env`, help with the default rendered from its
//! `DEFAULT_*` constant, `hide_env_values` for secrets), the raw text
//! ([`RawConfig`], whose fields stay public so tests and host apps build
//! it literally), the mapping between the two, a constructor from any
//! lookup of variables ([`RawConfig::from_lookup`]) and the static
//! [`SETTINGS`] list that the README check and the fuzz target iterate.
//! Checking the values is not declared here: that is each subsystem's
//! builder (`from_raw` beside each part of [`super::Config`]), which names
//! the variable of what it refuses.
//!
//! An entry reads
//! `/// help` `field <- flag: Type = "VARIABLE"; plain|secret; unset|default(CONST) [shown("text")];`
//! where `shown` is the shorter (or different) text `--help` prints as the
//! default when the value is long or is not the variable's own (a list of
//! buckets).

use std::path::PathBuf;

use super::defaults::*;
use crate::metrics::Buckets;

/// One setting: what the README, `--help` and the errors call it.
#[derive(Debug)]
pub struct Setting {
    /// The environment variable, e.g. `DATABASE_POOL_MAX`.
    pub var: &'static str,
    /// The flag without its dashes, e.g. `database_pool_max` for
    /// `--database-pool-max`.
    pub arg: &'static str,
    /// The help line as the doc comment holds it (see [`Setting::doc`]).
    doc: &'static str,
    /// Renders the value an unset variable takes (see
    /// [`Setting::default_text`]).
    default: Option<fn() -> String>,
    /// The default as `--help` prints it, when it differs from `default`.
    shown_default: Option<&'static str>,
    /// Whether the value is never shown (`--help` hides the environment's
    /// value, errors print `***`).
    pub secret: bool,
}

impl Setting {
    /// The command-line flag, e.g. `--database-pool-max`.
    pub fn flag(&self) -> String {
        format!("--{}", self.arg.replace('_', "-"))
    }

    /// The help line, without its default.
    pub fn doc(&self) -> &'static str {
        self.doc.trim()
    }

    /// The default as the README writes it; `None` when unset.
    pub fn default_text(&self) -> Option<String> {
        self.default.map(|render| render())
    }

    /// The help line of the flag, with its default in brackets.
    pub fn help(&self) -> String {
        let doc = self.doc();
        match self
            .shown_default
            .map(str::to_owned)
            .or(self.default_text())
        {
            Some(default) => format!("{doc} [default: {default}]"),
            None => doc.to_owned(),
        }
    }
}

/// The setting of a variable.
pub fn setting(var: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.var == var)
}

/// The help line of a variable's flag (for the clap attributes).
fn help_of(var: &str) -> String {
    setting(var).map(Setting::help).unwrap_or_default()
}

/// The bucket bounds as the variable takes them: `0.001,0.0025,…`.
fn bucket_list(bounds: &[f64]) -> String {
    bounds
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

macro_rules! secret_kind {
    (plain) => {
        false
    };
    (secret) => {
        true
    };
}

macro_rules! default_of {
    (unset) => {
        None
    };
    (default($value:expr)) => {
        Some((|| ($value).to_string()) as fn() -> String)
    };
}

macro_rules! shown_of {
    () => {
        None
    };
    ($text:literal) => {
        Some($text)
    };
}

macro_rules! settings {
    (
        $(
            #[doc = $doc:literal]
            $field:ident <- $arg:ident: $ty:ty = $var:literal;
            $kind:ident; $dk:ident $(($default:expr))? $(shown($shown:literal))?;
        )*
        $(
            in $group:ident: $Group:ident {
                $(
                    #[doc = $gdoc:literal]
                    $gfield:ident <- $garg:ident: $gty:ty = $gvar:literal;
                    $gkind:ident; $gdk:ident $(($gdefault:expr))? $(shown($gshown:literal))?;
                )*
            }
        )*
    ) => {
        /// Every setting, in the order of `--help`.
        pub static SETTINGS: &[Setting] = &[
            $(
                Setting {
                    var: $var,
                    arg: stringify!($arg),
                    doc: $doc,
                    default: default_of!($dk $(($default))?),
                    shown_default: shown_of!($($shown)?),
                    secret: secret_kind!($kind),
                },
            )*
            $($(
                Setting {
                    var: $gvar,
                    arg: stringify!($garg),
                    doc: $gdoc,
                    default: default_of!($gdk $(($gdefault))?),
                    shown_default: shown_of!($($gshown)?),
                    secret: secret_kind!($gkind),
                },
            )*)*
        ];

        /// Settings of the agent: a flag and an environment variable each,
        /// generated from [`SETTINGS`].
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct ServeArgs {
            $(
                #[doc = $doc]
                #[arg(long, env = $var, hide_env_values = secret_kind!($kind), help = help_of($var))]
                pub $arg: Option<$ty>,
            )*
            $($(
                #[doc = $gdoc]
                #[arg(long, env = $gvar, hide_env_values = secret_kind!($gkind), help = help_of($gvar))]
                pub $garg: Option<$gty>,
            )*)*
        }

        /// Raw text of each setting, as given by flags or the environment.
        ///
        /// Kept apart from [`super::Config`] so that every value is checked
        /// in one place and the error names the variable whichever way the
        /// value arrived.
        #[derive(Clone, Debug, Default)]
        pub struct RawConfig {
            $(
                #[doc = $doc]
                pub $field: Option<$ty>,
            )*
            $(
                #[doc = concat!("The `", stringify!($Group), "` settings.")]
                pub $group: $Group,
            )*
        }

        $(
            /// A group of settings checked together (see [`RawConfig`]).
            #[derive(Clone, Debug, Default)]
            pub struct $Group {
                $(
                    #[doc = $gdoc]
                    pub $gfield: Option<$gty>,
                )*
            }
        )*

        impl From<ServeArgs> for RawConfig {
            fn from(args: ServeArgs) -> Self {
                Self {
                    $($field: args.$arg,)*
                    $($group: $Group { $($gfield: args.$garg,)* },)*
                }
            }
        }

        impl RawConfig {
            /// The settings `lookup` returns by variable name, e.g.
            /// `RawConfig::from_lookup(|var| std::env::var(var).ok())`.
            pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
                Self {
                    $($field: lookup($var).map(<$ty>::from),)*
                    $($group: $Group { $($gfield: lookup($gvar).map(<$gty>::from),)* },)*
                }
            }
        }
    };
}

settings! {
    /// Address to listen on
    listen <- listen: String = "PERFSCOPE_LISTEN"; plain; default(DEFAULT_LISTEN);
    /// Bearer token for admin endpoints (at least 16 characters); unset, they answer 401
    admin_token <- admin_token: String = "PERFSCOPE_ADMIN_TOKEN"; secret; unset;
    /// Read-only bearer token accepted by the metrics endpoint only
    metrics_token <- metrics_token: String = "PERFSCOPE_METRICS_TOKEN"; secret; unset;
    /// PEM certificate chain for TLS (with --tls-key)
    tls_cert <- tls_cert: PathBuf = "PERFSCOPE_TLS_CERT"; plain; unset;
    /// PEM private key for TLS (with --tls-cert)
    tls_key <- tls_key: PathBuf = "PERFSCOPE_TLS_KEY"; plain; unset;
    /// Postgres connection string
    database_url <- database_url: String = "DATABASE_URL"; secret; unset;
    /// More databases to watch, comma-separated name=postgres://... pairs (readers and advice only)
    watch_databases <- watch_databases: String = "PERFSCOPE_WATCH_DATABASES"; secret; unset;
    /// Connections opened at start-up
    pool_min <- database_pool_min: String = "DATABASE_POOL_MIN"; plain; default(DEFAULT_POOL_MIN);
    /// Pool size
    pool_max <- database_pool_max: String = "DATABASE_POOL_MAX"; plain; default(DEFAULT_POOL_MAX);
    /// sqlcommenter comments (route, traceparent, application) on the app pool's statements: off, sampled (traced requests only) or all
    sql_comments <- sql_comments: String = "PERFSCOPE_SQL_COMMENTS"; plain; default(DEFAULT_SQL_COMMENTS);
    /// Default TTL of cached queries, ms
    query_cache_ttl <- query_cache_ttl: String = "QUERY_CACHE_TTL"; plain; default(DEFAULT_QUERY_CACHE_TTL_MS);
    /// Entries per query cache
    max_cache_size <- max_cache_size: String = "MAX_CACHE_SIZE"; plain; default(DEFAULT_MAX_CACHE_SIZE);
    /// Slow-query threshold, ms
    slow_query_threshold <- slow_query_threshold: String = "SLOW_QUERY_THRESHOLD"; plain; default(DEFAULT_SLOW_QUERY_THRESHOLD_MS);
    /// Share of the memory limit that counts as high, (0, 1]
    high_memory_threshold <- high_memory_threshold: String = "HIGH_MEMORY_THRESHOLD"; plain; default(DEFAULT_HIGH_MEMORY_THRESHOLD);
    /// Event-loop lag that counts as high, ms
    event_loop_lag_threshold <- event_loop_lag_threshold: String = "EVENT_LOOP_LAG_THRESHOLD"; plain; default(DEFAULT_EVENT_LOOP_LAG_THRESHOLD_MS);
    /// Log format: text or json
    log_format <- log_format: String = "PERFSCOPE_LOG_FORMAT"; plain; default("text");
    /// Whether an unreachable DATABASE_URL makes /readyz answer 503: required or reported
    readiness_database <- readiness_database: String = "PERFSCOPE_READINESS_DATABASE"; plain; default("required");
    /// Series per metric family before new label sets fold into an overflow series
    max_series_per_family <- max_series_per_family: String = "PERFSCOPE_MAX_SERIES_PER_FAMILY"; plain; default(DEFAULT_MAX_SERIES_PER_FAMILY);
    /// Request-duration buckets, seconds, comma-separated
    http_buckets <- http_buckets: String = "PERFSCOPE_HTTP_BUCKETS"; plain; default(bucket_list(Buckets::HTTP_DEFAULT)) shown("0.001 … 10");
    /// Query-duration buckets, seconds, comma-separated
    db_buckets <- db_buckets: String = "PERFSCOPE_DB_BUCKETS"; plain; default(bucket_list(Buckets::DB_DEFAULT)) shown("0.0005 … 10");
    /// Largest accepted request body, bytes
    max_body_bytes <- max_body_bytes: String = "PERFSCOPE_MAX_BODY_BYTES"; plain; default(DEFAULT_MAX_BODY_BYTES);
    /// Runtime sampling interval, ms
    runtime_sample_interval <- runtime_sample_interval: String = "PERFSCOPE_RUNTIME_SAMPLE_INTERVAL"; plain; default(DEFAULT_RUNTIME_SAMPLE_INTERVAL_MS);
    /// How long shutdown waits for in-flight requests, ms
    shutdown_grace <- shutdown_grace: String = "PERFSCOPE_SHUTDOWN_GRACE"; plain; default(DEFAULT_SHUTDOWN_GRACE_MS);
    /// How long a request head may take to arrive before the connection is closed, ms
    header_timeout <- header_timeout: String = "PERFSCOPE_HEADER_TIMEOUT"; plain; default(DEFAULT_HEADER_TIMEOUT_MS);
    /// How long a request body may take to arrive once its head is in, ms
    body_timeout <- body_timeout: String = "PERFSCOPE_BODY_TIMEOUT"; plain; default(DEFAULT_BODY_TIMEOUT_MS);
    /// Connections the agent's listener holds at once; more wait
    max_http_connections <- max_http_connections: String = "PERFSCOPE_MAX_HTTP_CONNECTIONS"; plain; default(DEFAULT_MAX_HTTP_CONNECTIONS);
    /// How often the Postgres readers run, ms
    read_interval <- read_interval: String = "PERFSCOPE_READ_INTERVAL"; plain; default(DEFAULT_READ_INTERVAL_MS);
    /// statement_timeout of each reader pass, ms
    read_timeout <- read_timeout: String = "PERFSCOPE_READ_TIMEOUT"; plain; default(DEFAULT_READ_TIMEOUT_MS);
    /// Most connections the agent opens across every database it watches
    max_db_connections <- max_db_connections: String = "PERFSCOPE_MAX_DB_CONNECTIONS"; plain; default(DEFAULT_MAX_DB_CONNECTIONS);
    /// Connection slots left free on each server beyond the reserved ones
    db_connection_headroom <- db_connection_headroom: String = "PERFSCOPE_DB_CONNECTION_HEADROOM"; plain; default(DEFAULT_DB_CONNECTION_HEADROOM);
    /// Active queries running longer than this are flagged, ms
    long_query_threshold <- long_query_threshold: String = "PERFSCOPE_LONG_QUERY_THRESHOLD"; plain; default(DEFAULT_LONG_QUERY_THRESHOLD_MS);
    /// Sessions idle in a transaction longer than this are flagged, ms
    idle_in_transaction_threshold <- idle_in_transaction_threshold: String = "PERFSCOPE_IDLE_IN_TRANSACTION_THRESHOLD"; plain; default(DEFAULT_IDLE_IN_TRANSACTION_THRESHOLD_MS);
    /// How often each server's pg_stat_activity is sampled for the active session history, ms; 0 turns it off
    ash_interval <- ash_interval: String = "PERFSCOPE_ASH_INTERVAL"; plain; default(DEFAULT_ASH_INTERVAL_MS);
    /// Bytes the active session history keeps in memory
    ash_memory <- ash_memory: String = "PERFSCOPE_ASH_MEMORY"; plain; default(DEFAULT_ASH_MEMORY);
    /// Statements per database exported as pg_stat_statements_* series
    top_statements <- top_statements: String = "PERFSCOPE_TOP_STATEMENTS"; plain; default(DEFAULT_TOP_STATEMENTS);
    /// The role that plans database users' statements for index advice and EXPLAIN (sql/install.sql creates perfscope_planner); unset, nothing is planned
    planner_user <- planner_user: String = "PERFSCOPE_PLANNER_USER"; plain; unset;
    /// The planner role's password
    planner_password <- planner_password: String = "PERFSCOPE_PLANNER_PASSWORD"; secret; unset;
    /// Roles whose statements may be planned, comma-separated
    plan_roles <- plan_roles: String = "PERFSCOPE_PLAN_ROLES"; plain; unset shown("none");
    /// Directory of the history store (one SQLite file kept across restarts), or off; a host app keeps none unless set
    data_dir <- data_dir: String = "PERFSCOPE_DATA_DIR"; plain; unset shown("perfscope-data (agent)");
    /// Size cap of the history store, bytes
    store_max_bytes <- store_max_bytes: String = "PERFSCOPE_STORE_MAX_BYTES"; plain; default(DEFAULT_STORE_MAX_BYTES);
    /// Roles whose functions, operators and views are trusted to run while planning, besides built-in ones, superusers' and those of extensions they own, comma-separated
    trusted_owners <- trusted_owners: String = "PERFSCOPE_TRUSTED_OWNERS"; plain; unset;
    /// Webhook URLs alerts are posted to, comma-separated
    alert_webhook_urls <- alert_webhook_urls: String = "ALERT_WEBHOOK_URLS"; secret; unset;
    /// Key of the HMAC-SHA256 signature header of webhook bodies (at least 16 characters)
    alert_webhook_secret <- alert_webhook_secret: String = "ALERT_WEBHOOK_SECRET"; secret; unset;
    /// How long a condition must hold before its alert fires, ms
    alert_for <- alert_for: String = "PERFSCOPE_ALERT_FOR"; plain; default(DEFAULT_ALERT_FOR_MS);
    /// At most one slow-query alert per statement per window, ms
    alert_dedup_window <- alert_dedup_window: String = "PERFSCOPE_ALERT_DEDUP_WINDOW"; plain; default(DEFAULT_ALERT_DEDUP_WINDOW_MS);
    /// How long a webhook notification is retried, ms
    webhook_deadline <- webhook_deadline: String = "PERFSCOPE_WEBHOOK_DEADLINE"; plain; default(DEFAULT_WEBHOOK_DEADLINE_MS);
    /// Prometheus server the route charts read every replica's requests from (http_request_duration_seconds); unset, they show this process alone
    prometheus_url <- prometheus_url: String = "PERFSCOPE_PROMETHEUS_URL"; plain; unset;
    /// Label matchers picking this service's series on that server, e.g. job="shop",namespace="prod" (required with PERFSCOPE_PROMETHEUS_URL)
    prometheus_selector <- prometheus_selector: String = "PERFSCOPE_PROMETHEUS_SELECTOR"; plain; unset;
    /// Where a trace id opens in the tracing tool, an http(s) URL with {trace_id} in it, e.g. `https://tempo.example/trace/{trace_id}`; unset, the pages show trace ids as text
    trace_url <- trace_url: String = "PERFSCOPE_TRACE_URL"; plain; unset;
    /// Sentry DSN; unset, Sentry is off
    sentry_dsn <- sentry_dsn: String = "SENTRY_DSN"; secret; unset;
    /// Sentry environment tag
    sentry_environment <- sentry_environment: String = "SENTRY_ENVIRONMENT"; plain; unset;
    /// Sentry release tag
    sentry_release <- sentry_release: String = "SENTRY_RELEASE"; plain; unset;
    /// Share of requests sent to Sentry as transactions, [0, 1]
    sentry_traces_sample_rate <- sentry_traces_sample_rate: String = "SENTRY_TRACES_SAMPLE_RATE"; plain; default(DEFAULT_SENTRY_TRACES_SAMPLE_RATE);

    in otlp: RawOtlp {
        /// OTLP base endpoint; set, traces are exported (`/v1/traces` is added over HTTP)
        endpoint <- otel_exporter_otlp_endpoint: String = "OTEL_EXPORTER_OTLP_ENDPOINT"; secret; unset;
        /// OTLP traces endpoint, used as given (wins over OTEL_EXPORTER_OTLP_ENDPOINT)
        traces_endpoint <- otel_exporter_otlp_traces_endpoint: String = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"; secret; unset;
        /// grpc or http/protobuf
        protocol <- otel_exporter_otlp_protocol: String = "OTEL_EXPORTER_OTLP_PROTOCOL"; plain; default("http/protobuf");
        /// Protocol for traces alone (wins over OTEL_EXPORTER_OTLP_PROTOCOL)
        traces_protocol <- otel_exporter_otlp_traces_protocol: String = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"; plain; unset;
        /// service.name of the spans
        service_name <- otel_service_name: String = "OTEL_SERVICE_NAME"; plain; default("unknown_service:<executable>");
        /// Resource attributes, key=value pairs with percent-encoded values; perfscope reads service.name and service.version for its deploy marker, the SDK all of them
        resource_attributes <- otel_resource_attributes: String = "OTEL_RESOURCE_ATTRIBUTES"; plain; unset;
        /// true turns OpenTelemetry off
        sdk_disabled <- otel_sdk_disabled: String = "OTEL_SDK_DISABLED"; plain; unset;
        /// otlp or none
        traces_exporter <- otel_traces_exporter: String = "OTEL_TRACES_EXPORTER"; plain; default("otlp");
        /// Finished spans queued for export before new ones are dropped
        bsp_max_queue_size <- otel_bsp_max_queue_size: String = "OTEL_BSP_MAX_QUEUE_SIZE"; plain; default(DEFAULT_OTLP_MAX_QUEUE_SIZE);
        /// Longest wait before queued spans are sent, ms
        bsp_schedule_delay <- otel_bsp_schedule_delay: String = "OTEL_BSP_SCHEDULE_DELAY"; plain; default(DEFAULT_OTLP_SCHEDULE_DELAY_MS);
        /// Spans per export
        bsp_max_export_batch_size <- otel_bsp_max_export_batch_size: String = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"; plain; default(DEFAULT_OTLP_MAX_EXPORT_BATCH_SIZE);
        /// Longest export of one batch, retries included, ms
        bsp_export_timeout <- otel_bsp_export_timeout: String = "OTEL_BSP_EXPORT_TIMEOUT"; plain; default(DEFAULT_OTLP_BSP_EXPORT_TIMEOUT_MS);
        /// gzip or none: compression of each exported batch, over gRPC and HTTP
        compression <- otel_exporter_otlp_compression: String = "OTEL_EXPORTER_OTLP_COMPRESSION"; plain; unset;
        /// Compression of traces alone (wins over OTEL_EXPORTER_OTLP_COMPRESSION)
        traces_compression <- otel_exporter_otlp_traces_compression: String = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"; plain; unset;
        /// The export's timeout, ms: one batch's sending, retries included (the smaller of this and OTEL_BSP_EXPORT_TIMEOUT applies)
        timeout <- otel_exporter_otlp_timeout: String = "OTEL_EXPORTER_OTLP_TIMEOUT"; plain; default(DEFAULT_OTLP_TIMEOUT_MS);
        /// The traces export's timeout, ms (wins over OTEL_EXPORTER_OTLP_TIMEOUT)
        traces_timeout <- otel_exporter_otlp_traces_timeout: String = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"; plain; unset;
        /// Headers sent with every export, key=value pairs separated by commas, values percent-encoded (may carry credentials: never logged)
        headers <- otel_exporter_otlp_headers: String = "OTEL_EXPORTER_OTLP_HEADERS"; secret; unset;
        /// Headers of traces alone (win over OTEL_EXPORTER_OTLP_HEADERS)
        traces_headers <- otel_exporter_otlp_traces_headers: String = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"; secret; unset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Variables the README's table lists that perfscope does not read:
    /// the OpenTelemetry SDK reads them itself.
    const READ_BY_THE_SDKS: &[&str] = &["OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"];

    /// One variable of the README's table and the default it shows;
    /// `None` for "unset", and for a `(_TRACES_…)` variant, whose default
    /// is its general variable's.
    struct Row {
        var: String,
        default: Option<Option<String>>,
    }

    /// The text between backticks in `cell`, in order.
    fn quoted(cell: &str) -> Vec<&str> {
        cell.split('`').skip(1).step_by(2).collect()
    }

    /// `OTEL_EXPORTER_OTLP_PROTOCOL` with the variant `_TRACES_PROTOCOL`
    /// gives `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`.
    fn variant_of(base: &str, variant: &str) -> String {
        let last = variant.rsplit('_').next().unwrap_or(variant);
        let stem = base.strip_suffix(&format!("_{last}")).unwrap_or(base);
        format!("{stem}{variant}")
    }

    /// The rows of the README's configuration table.
    fn readme_rows() -> Vec<Row> {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .expect("README has a Configuration section");
        let mut rows = Vec::new();
        for line in section.lines().skip_while(|l| !l.starts_with('|')) {
            if !line.starts_with("| `") {
                if line.starts_with('|') {
                    continue;
                }
                break;
            }
            let cells: Vec<&str> = line.split(" | ").collect();
            let names = quoted(cells[0]);
            let defaults: Vec<Option<String>> = cells[1]
                .trim()
                .split(", ")
                .map(|d| quoted(d).first().map(|q| (*q).to_owned()))
                .collect();
            let bases: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !n.starts_with('_'))
                .collect();
            for (i, base) in bases.iter().enumerate() {
                let default = defaults.get(i).or(defaults.first()).cloned().flatten();
                rows.push(Row {
                    var: (*base).to_owned(),
                    default: Some(default),
                });
            }
            for variant in names.iter().filter(|n| n.starts_with('_')) {
                rows.push(Row {
                    var: variant_of(bases[0], variant),
                    default: None,
                });
            }
        }
        rows
    }

    #[test]
    fn the_readme_lists_every_setting_with_its_default() {
        let rows = readme_rows();
        for setting in SETTINGS {
            let row = rows
                .iter()
                .find(|r| r.var == setting.var)
                .unwrap_or_else(|| panic!("README's table lacks {}", setting.var));
            if let Some(default) = &row.default {
                assert_eq!(
                    default,
                    &setting.default_text(),
                    "README's default of {}",
                    setting.var
                );
            }
        }
        for row in &rows {
            assert!(
                setting(&row.var).is_some() || READ_BY_THE_SDKS.contains(&row.var.as_str()),
                "README lists {}, which no setting reads",
                row.var
            );
        }
    }

    #[test]
    fn every_variable_and_flag_is_declared_once() {
        for (i, setting) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[i + 1..]
                    .iter()
                    .all(|s| s.var != setting.var && s.arg != setting.arg),
                "{} is declared twice",
                setting.var
            );
        }
    }

    #[test]
    fn help_renders_the_default() {
        let pool = setting("DATABASE_POOL_MAX").expect("declared");
        assert_eq!(pool.help(), "Pool size [default: 10]");
        assert_eq!(pool.flag(), "--database-pool-max");
        let buckets = setting("PERFSCOPE_HTTP_BUCKETS").expect("declared");
        assert_eq!(
            buckets.default_text().as_deref(),
            Some("0.001,0.0025,0.005,0.01,0.025,0.05,0.075,0.1,0.25,0.5,0.75,1,2.5,5,10")
        );
        assert!(buckets.help().ends_with("[default: 0.001 … 10]"));
    }

    #[test]
    fn from_lookup_fills_fields_by_variable() {
        let raw = RawConfig::from_lookup(|var| match var {
            "DATABASE_POOL_MAX" => Some("7".into()),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://c:4318".into()),
            "PERFSCOPE_TLS_CERT" => Some("cert.pem".into()),
            _ => None,
        });
        assert_eq!(raw.pool_max.as_deref(), Some("7"));
        assert_eq!(raw.otlp.endpoint.as_deref(), Some("http://c:4318"));
        assert_eq!(raw.tls_cert, Some(PathBuf::from("cert.pem")));
        assert!(raw.listen.is_none());
    }
}
