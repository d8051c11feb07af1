//! The OpenTelemetry variables perfscope checks itself (endpoint,
//! protocol, compression, batch processor, timeouts), following the
//! specification's precedence: a `_TRACES_` variable wins over its general
//! one. Compression is checked here rather than left to the exporter,
//! which warns about an unknown value and sends uncompressed: a typo would
//! go unnoticed until the bill.
//!
//! `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` are read here too (perfscope
//! sends its batches itself): `key=value` pairs separated by commas,
//! values percent-decoded, as opentelemetry-otlp read them; a pair without
//! a key or a value is skipped, as there. Their values are secrets.

use std::time::Duration;

use super::defaults::*;
use super::parse::{int_in, label, millis};
use super::{ConfigError, RawOtlp, Secret};

/// Wire protocol of the OTLP exporter (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `grpc`: tonic, HTTP/2.
    Grpc,
    /// `http/protobuf` (the specification's default): POSTs to `/v1/traces`.
    HttpProtobuf,
}

/// Compression of each exported batch (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtlpCompression {
    /// `none` (the specification's default): sent as encoded.
    #[default]
    None,
    /// `gzip`: `grpc-encoding: gzip` over gRPC, `content-encoding: gzip`
    /// over HTTP.
    Gzip,
}

/// Where and how spans are exported, from the standard OpenTelemetry
/// variables. The SDK reads `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_TRACES_SAMPLER[_ARG]` themselves (perfscope reads the service's
/// name and version of the first too, for its deploy marker:
/// [`super::ServiceResource`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// The full traces URL: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given,
    /// or `OTEL_EXPORTER_OTLP_ENDPOINT` (plus `/v1/traces` over HTTP).
    pub endpoint: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: OtlpProtocol,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION`: none or gzip.
    pub compression: OtlpCompression,
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
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`:
    /// sent with every export (HTTP headers, gRPC metadata); the values may
    /// be credentials.
    pub headers: Vec<(String, Secret)>,
}

impl OtlpConfig {
    /// Defaults of the specification for `endpoint` over `protocol`.
    pub fn new(endpoint: impl Into<String>, protocol: OtlpProtocol) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol,
            compression: OtlpCompression::None,
            service_name: None,
            max_queue_size: DEFAULT_OTLP_MAX_QUEUE_SIZE,
            schedule_delay: Duration::from_millis(DEFAULT_OTLP_SCHEDULE_DELAY_MS),
            max_export_batch_size: DEFAULT_OTLP_MAX_EXPORT_BATCH_SIZE,
            export_timeout: Duration::from_millis(DEFAULT_OTLP_TIMEOUT_MS),
            headers: Vec::new(),
        }
    }
}

/// The OTLP exporter's settings: on when an endpoint variable is set,
/// unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
pub(super) fn otlp(raw: &RawOtlp) -> Result<Option<OtlpConfig>, ConfigError> {
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
        compression: compression(raw)?,
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
            Duration::from_millis(DEFAULT_OTLP_BSP_EXPORT_TIMEOUT_MS),
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
        headers: headers(set(&raw.traces_headers).or(set(&raw.headers))),
        ..defaults
    }))
}

/// `key=value,key=value` as opentelemetry-otlp reads it: pairs trimmed,
/// values percent-decoded (kept as written when that fails), pairs without
/// a key or a value skipped.
fn headers(text: Option<&str>) -> Vec<(String, Secret)> {
    text.into_iter()
        .flat_map(|text| text.split_terminator(','))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(key, value)| (key.trim(), value.trim()))
        .filter(|(key, value)| !key.is_empty() && !value.is_empty())
        .map(|(key, value)| {
            let value = super::resource::decode(value).unwrap_or_else(|_| value.to_owned());
            (key.to_owned(), Secret::new(value))
        })
        .collect()
}

/// `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, else
/// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip` or `none` (any case), unset
/// none; anything else is refused, naming the variable.
fn compression(raw: &RawOtlp) -> Result<OtlpCompression, ConfigError> {
    let set = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (var, value) = match (set(&raw.traces_compression), set(&raw.compression)) {
        (Some(v), _) => ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", v),
        (None, Some(v)) => ("OTEL_EXPORTER_OTLP_COMPRESSION", v),
        (None, None) => return Ok(OtlpCompression::None),
    };
    if value.eq_ignore_ascii_case("gzip") {
        Ok(OtlpCompression::Gzip)
    } else if value.eq_ignore_ascii_case("none") {
        Ok(OtlpCompression::None)
    } else {
        Err(ConfigError::new(var, &value, "expected gzip or none"))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn otlp_of(raw: RawOtlp) -> Result<Option<OtlpConfig>, ConfigError> {
        RawConfig {
            otlp: raw,
            ..Default::default()
        }
        .validate()
        .map(|c| c.telemetry.otlp)
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

    #[test]
    fn headers_are_percent_decoded_pairs_and_the_traces_variable_wins() {
        let with = |general: Option<&str>, traces: Option<&str>| {
            otlp_of(RawOtlp {
                endpoint: Some("http://c:4318".into()),
                headers: general.map(Into::into),
                traces_headers: traces.map(Into::into),
                ..Default::default()
            })
            .expect("valid")
            .expect("on")
            .headers
            .into_iter()
            .map(|(key, value)| (key, value.expose().to_owned()))
            .collect::<Vec<_>>()
        };
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(with(None, None), pairs(&[]));
        assert_eq!(
            with(
                Some(" api-key = s3cr%3Dt%2C1 ,x-tenant=é,=novalue,nokey=,junk,"),
                None
            ),
            pairs(&[("api-key", "s3cr=t,1"), ("x-tenant", "é")])
        );
        assert_eq!(
            with(Some("a=1"), Some("b=%zz")),
            pairs(&[("b", "%zz")]),
            "the traces variable wins; a bad escape is kept as written"
        );
        let config = otlp_of(RawOtlp {
            endpoint: Some("http://c:4318".into()),
            headers: Some("authorization=Bearer hunter2".into()),
            ..Default::default()
        });
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn compression_is_gzip_or_none_and_the_traces_variable_wins() {
        let with = |general: Option<&str>, traces: Option<&str>| {
            otlp_of(RawOtlp {
                endpoint: Some("http://c:4318".into()),
                compression: general.map(Into::into),
                traces_compression: traces.map(Into::into),
                ..Default::default()
            })
        };
        let of = |general, traces| {
            with(general, traces)
                .expect("valid")
                .expect("on")
                .compression
        };
        assert_eq!(of(None, None), OtlpCompression::None);
        assert_eq!(of(Some("gzip"), None), OtlpCompression::Gzip);
        assert_eq!(of(Some(" GZIP "), None), OtlpCompression::Gzip);
        assert_eq!(of(Some("none"), None), OtlpCompression::None);
        assert_eq!(of(Some("gzip"), Some("none")), OtlpCompression::None);
        assert_eq!(of(Some("none"), Some("gzip")), OtlpCompression::Gzip);
        assert_eq!(of(Some(""), Some("gzip")), OtlpCompression::Gzip);
        let err = with(Some("zstd"), None).expect_err("refused");
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_COMPRESSION");
        assert!(err.to_string().contains("expected gzip or none"), "{err}");
        let err = with(Some("gzip"), Some("brotli")).expect_err("refused");
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
    }
}
