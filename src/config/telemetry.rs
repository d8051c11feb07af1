//! Where traces go: Sentry and OpenTelemetry over OTLP. Each SDK's
//! initialisation takes its own part ([`SentryConfig`], [`OtlpConfig`]).

use super::defaults::DEFAULT_SENTRY_TRACES_SAMPLE_RATE;
use super::otlp::OtlpConfig;
use super::parse::label;
use super::{ConfigError, RawConfig, Secret};

/// Sentry's settings; no DSN, Sentry is off and costs nothing.
#[derive(Clone, Debug)]
pub struct SentryConfig {
    /// Sentry's DSN.
    pub dsn: Option<Secret>,
    /// Sentry's environment tag.
    pub environment: Option<String>,
    /// Sentry's release tag.
    pub release: Option<String>,
    /// Share of requests sent to Sentry as transactions, [0, 1].
    pub traces_sample_rate: f64,
}

impl Default for SentryConfig {
    fn default() -> Self {
        Self {
            dsn: None,
            environment: None,
            release: None,
            traces_sample_rate: DEFAULT_SENTRY_TRACES_SAMPLE_RATE,
        }
    }
}

/// Sentry and OTLP.
#[derive(Clone, Debug, Default)]
pub struct TelemetryConfig {
    /// Sentry transactions and events.
    pub sentry: SentryConfig,
    /// OpenTelemetry traces over OTLP; `None` (no `OTEL_EXPORTER_OTLP_*
    /// ENDPOINT`) leaves them off, at no cost.
    pub otlp: Option<OtlpConfig>,
}

impl TelemetryConfig {
    /// Checks the Sentry and OTLP settings of `raw`.
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            sentry: SentryConfig::from_raw(raw)?,
            otlp: super::otlp::otlp(&raw.otlp)?,
        })
    }
}

impl SentryConfig {
    /// Checks the `SENTRY_*` settings of `raw`.
    fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            dsn: sentry_dsn(raw.sentry_dsn.as_deref())?,
            environment: label("SENTRY_ENVIRONMENT", raw.sentry_environment.as_deref())?,
            release: label("SENTRY_RELEASE", raw.sentry_release.as_deref())?,
            traces_sample_rate: sample_rate(raw.sentry_traces_sample_rate.as_deref())?,
        })
    }
}

/// `SENTRY_TRACES_SAMPLE_RATE`: a share in [0, 1].
fn sample_rate(value: Option<&str>) -> Result<f64, ConfigError> {
    match value {
        None | Some("") => Ok(DEFAULT_SENTRY_TRACES_SAMPLE_RATE),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                ConfigError::new("SENTRY_TRACES_SAMPLE_RATE", v, "expected a share in [0, 1]")
            }),
    }
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
