//! The listener's settings: address, TLS, tokens, HTTP limits and
//! timeouts, readiness. The agent's HTTP side (`crate::agent`, the API and
//! the pages) takes [`ServerConfig`] and nothing else of the configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::defaults::*;
use super::parse::{int_in, millis, token};
use super::{ConfigError, RawConfig, Secret};

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

/// TLS certificate and key for the listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The listener and what it accepts.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address the agent listens on (`PERFSCOPE_LISTEN`).
    pub listen: SocketAddr,
    /// Bearer token for admin endpoints; `None` means they answer 401.
    pub admin_token: Option<Secret>,
    /// Read-only token accepted by the metrics endpoint only.
    pub metrics_token: Option<Secret>,
    /// TLS for the listener, when both files are given.
    pub tls: Option<TlsFiles>,
    /// Whether an unreachable database makes the instance not ready.
    pub readiness_database: ReadinessDatabase,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long a request head (line and headers) may take to arrive.
    pub header_timeout: Duration,
    /// How long a request body may take to arrive once its head is in.
    pub body_timeout: Duration,
    /// Connections the agent's listener holds at once (more wait).
    pub max_http_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            admin_token: None,
            metrics_token: None,
            tls: None,
            readiness_database: ReadinessDatabase::Required,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: Duration::from_millis(DEFAULT_SHUTDOWN_GRACE_MS),
            header_timeout: Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            max_http_connections: DEFAULT_MAX_HTTP_CONNECTIONS,
        }
    }
}

impl ServerConfig {
    /// Checks the listener's settings of `raw`.
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            listen: listen(raw.listen.as_deref(), defaults.listen)?,
            admin_token: token("PERFSCOPE_ADMIN_TOKEN", raw.admin_token.as_deref())?,
            metrics_token: token("PERFSCOPE_METRICS_TOKEN", raw.metrics_token.as_deref())?,
            tls: tls(raw)?,
            readiness_database: readiness(raw.readiness_database.as_deref())?,
            max_body_bytes: int_in(
                "PERFSCOPE_MAX_BODY_BYTES",
                raw.max_body_bytes.as_deref(),
                64,
                64 * 1024 * 1024,
                defaults.max_body_bytes,
            )?,
            shutdown_grace: millis(
                "PERFSCOPE_SHUTDOWN_GRACE",
                raw.shutdown_grace.as_deref(),
                0,
                600_000,
                defaults.shutdown_grace,
            )?,
            header_timeout: millis(
                "PERFSCOPE_HEADER_TIMEOUT",
                raw.header_timeout.as_deref(),
                100,
                600_000,
                defaults.header_timeout,
            )?,
            body_timeout: millis(
                "PERFSCOPE_BODY_TIMEOUT",
                raw.body_timeout.as_deref(),
                100,
                600_000,
                defaults.body_timeout,
            )?,
            max_http_connections: int_in(
                "PERFSCOPE_MAX_HTTP_CONNECTIONS",
                raw.max_http_connections.as_deref(),
                1,
                65_536,
                defaults.max_http_connections,
            )?,
        })
    }
}

/// `PERFSCOPE_LISTEN`: a socket address.
fn listen(value: Option<&str>, default: SocketAddr) -> Result<SocketAddr, ConfigError> {
    match value {
        Some(v) => v.parse().map_err(|_| {
            ConfigError::new(
                "PERFSCOPE_LISTEN",
                v,
                "expected a socket address such as 127.0.0.1:8080",
            )
        }),
        None => Ok(default),
    }
}

/// `PERFSCOPE_TLS_CERT` and `PERFSCOPE_TLS_KEY`: both or neither.
fn tls(raw: &RawConfig) -> Result<Option<TlsFiles>, ConfigError> {
    match (&raw.tls_cert, &raw.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })),
        (Some(cert), None) => Err(ConfigError::new(
            "PERFSCOPE_TLS_KEY",
            "",
            format!(
                "expected a key file, since PERFSCOPE_TLS_CERT={} is set",
                cert.display()
            ),
        )),
        (None, Some(key)) => Err(ConfigError::new(
            "PERFSCOPE_TLS_CERT",
            "",
            format!(
                "expected a certificate file, since PERFSCOPE_TLS_KEY={} is set",
                key.display()
            ),
        )),
    }
}

/// `PERFSCOPE_READINESS_DATABASE`: required or reported.
fn readiness(value: Option<&str>) -> Result<ReadinessDatabase, ConfigError> {
    match value {
        None | Some("required") => Ok(ReadinessDatabase::Required),
        Some("reported") => Ok(ReadinessDatabase::Reported),
        Some(other) => Err(ConfigError::new(
            "PERFSCOPE_READINESS_DATABASE",
            other,
            "expected required or reported",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_needs_both_files() {
        let raw = RawConfig {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err();
        assert_eq!(err.var, "PERFSCOPE_TLS_KEY");
    }
}
