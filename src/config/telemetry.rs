//! Where traces go: Sentry and OpenTelemetry over OTLP. Each SDK's
//! initialisation takes its own part ([`SentryConfig`], [`OtlpConfig`]).

use super::defaults::DEFAULT_SENTRY_TRACES_SAMPLE_RATE;
use super::otlp::OtlpConfig;
use super::parse::label;
use super::resource::{ServiceResource, service_resource};
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
    /// `service.name` and `service.version` of `OTEL_RESOURCE_ATTRIBUTES`
    /// (read whether or not spans are exported: they name the release).
    pub resource: ServiceResource,
    /// Where a trace id opens (`PERFSCOPE_TRACE_URL`): the pages link
    /// sampled statements' trace ids with it.
    pub trace_url: Option<super::TraceUrl>,
}

impl TelemetryConfig {
    /// Checks the Sentry and OTLP settings of `raw`.
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            sentry: SentryConfig::from_raw(raw)?,
            otlp: super::otlp::otlp(&raw.otlp)?,
            resource: service_resource(raw.otlp.resource_attributes.as_deref()),
            trace_url: super::trace_url::trace_url(raw.trace_url.as_deref())?,
        })
    }

    /// The release this process runs, as the deploy marker names it:
    /// `SENTRY_RELEASE` as given, else the service (`OTEL_SERVICE_NAME`
    /// when spans are exported, else `service.name`, else `perfscope`) and
    /// its version (`service.version`, else `binary_version`).
    pub fn release_label(&self, binary_version: &str) -> String {
        if let Some(release) = &self.sentry.release {
            return release.clone();
        }
        let service = self
            .otlp
            .as_ref()
            .and_then(|otlp| otlp.service_name.as_deref())
            .or(self.resource.name.as_deref())
            .unwrap_or("perfscope");
        let version = self.resource.version.as_deref().unwrap_or(binary_version);
        format!("{service} {version}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawOtlp;

    fn label_of(raw: RawConfig) -> String {
        raw.validate()
            .expect("valid")
            .telemetry
            .release_label("0.1.0")
    }

    fn with(otlp: RawOtlp, release: Option<&str>) -> RawConfig {
        RawConfig {
            sentry_release: release.map(str::to_owned),
            otlp,
            ..Default::default()
        }
    }

    #[test]
    fn the_deploy_label_takes_service_version_from_the_resource_attributes() {
        let attributes = Some("service.name=shop,service.version=2.4.1%2Bb7".to_owned());
        // Nothing set: perfscope and the binary's version.
        assert_eq!(label_of(RawConfig::default()), "perfscope 0.1.0");
        // The resource names the service and its version.
        let resource = RawOtlp {
            resource_attributes: attributes.clone(),
            ..Default::default()
        };
        assert_eq!(label_of(with(resource.clone(), None)), "shop 2.4.1+b7");
        // OTEL_SERVICE_NAME wins over service.name (when spans are
        // exported); service.version still names the release.
        let named = RawOtlp {
            endpoint: Some("http://collector:4318".into()),
            service_name: Some("checkout".into()),
            ..resource.clone()
        };
        assert_eq!(label_of(with(named, None)), "checkout 2.4.1+b7");
        // A version alone.
        let version = RawOtlp {
            resource_attributes: Some("service.version=7".into()),
            ..Default::default()
        };
        assert_eq!(label_of(with(version, None)), "perfscope 7");
        // SENTRY_RELEASE wins over all.
        assert_eq!(label_of(with(resource, Some("shop@2.4.2"))), "shop@2.4.2");
    }

    #[test]
    fn a_malformed_resource_attributes_variable_is_ignored_not_fatal() {
        let config = with(
            RawOtlp {
                resource_attributes: Some("service.version=1%0Afake".into()),
                ..Default::default()
            },
            None,
        )
        .validate()
        .expect("the start goes on, as the OpenTelemetry specification says");
        assert_eq!(config.telemetry.release_label("0.1.0"), "perfscope 0.1.0");
        let reason = config.telemetry.resource.ignored.expect("a reason");
        assert!(reason.contains("control characters"), "{reason}");
        assert!(!reason.contains("fake"), "{reason}");
    }
}
