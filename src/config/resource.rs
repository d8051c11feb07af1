//! What perfscope reads of `OTEL_RESOURCE_ATTRIBUTES`: `service.name` and
//! `service.version`, for the deploy marker the history recorder writes at
//! start (issue 19, "Deploys compared": a release is named by
//! `SENTRY_RELEASE`, `OTEL_SERVICE_NAME`/`service.version` or the binary's
//! version).
//!
//! The OpenTelemetry SDK reads the variable again for the spans' resource
//! (when the OTLP exporter runs), with its own parser that neither decodes
//! nor checks; this one is perfscope's only one and follows the
//! specification: `key=value` pairs separated by commas, values
//! percent-encoded (W3C Baggage's octets), and, as the specification says,
//! the whole variable discarded on a malformed entry rather than failing
//! the start: it belongs to the host's OpenTelemetry setup as much as to
//! perfscope, whose only use of it is a label. Why it was discarded is
//! kept ([`ServiceResource::ignored`]) and logged once the log runs. The
//! variable is deployment text, not trusted: it is bounded ([`MAX_BYTES`]
//! in all, a kept value cut to [`MAX_VALUE_CHARS`]), a decoded value with
//! a control character discards it, and no reason echoes it (it may carry
//! anything an operator put there).

/// The variable.
const VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// The longest variable accepted, bytes (W3C Baggage's limit).
pub const MAX_BYTES: usize = 8_192;
/// The longest `service.name` or `service.version` kept, characters (the
/// deploy label holds both, within the events' 200).
pub const MAX_VALUE_CHARS: usize = 96;

/// The service attributes of `OTEL_RESOURCE_ATTRIBUTES`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceResource {
    /// `service.name` (`OTEL_SERVICE_NAME` wins over it).
    pub name: Option<String>,
    /// `service.version`: the release the deploy marker names.
    pub version: Option<String>,
    /// Why the variable was discarded, if it was (without its text).
    pub ignored: Option<String>,
}

/// Reads `OTEL_RESOURCE_ATTRIBUTES`'s service attributes; a malformed
/// variable is discarded, with the reason.
pub(super) fn service_resource(raw: Option<&str>) -> ServiceResource {
    match raw.map(str::trim) {
        None | Some("") => ServiceResource::default(),
        Some(text) => parse(text).unwrap_or_else(|why| ServiceResource {
            ignored: Some(format!("{VAR} ignored: {why}")),
            ..ServiceResource::default()
        }),
    }
}

/// Parses `key=value,…`, decoding the values; the error says what is
/// expected and where, never the text.
fn parse(text: &str) -> Result<ServiceResource, String> {
    if text.len() > MAX_BYTES {
        return Err(format!(
            "expected at most {MAX_BYTES} bytes of key=value pairs, got {}",
            text.len()
        ));
    }
    let mut resource = ServiceResource::default();
    for (n, entry) in text.split(',').enumerate() {
        let n = n + 1;
        if entry.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else {
            return Err(format!(
                "expected key=value pairs separated by commas (entry {n} has no `=`)"
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("expected key=value pairs (entry {n} has no key)"));
        }
        let value = decode(value.trim()).map_err(|why| format!("entry {n}: {why}"))?;
        let slot = match key {
            "service.name" => &mut resource.name,
            "service.version" => &mut resource.version,
            _ => continue,
        };
        let value: String = value.trim().chars().take(MAX_VALUE_CHARS).collect();
        *slot = (!value.is_empty()).then_some(value);
    }
    Ok(resource)
}

/// Percent-decodes `value` into printable UTF-8.
pub(super) fn decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or("expected `%` followed by two hex digits (percent-encoding)")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| "the decoded value is not UTF-8")?;
    if decoded.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: Option<&str>, version: Option<&str>) -> ServiceResource {
        ServiceResource {
            name: name.map(str::to_owned),
            version: version.map(str::to_owned),
            ignored: None,
        }
    }

    #[test]
    fn service_name_and_version_are_read_and_percent_decoded() {
        assert_eq!(
            parse("deployment.environment=prod, service.name=shop ,service.version=2.4.1"),
            Ok(service(Some("shop"), Some("2.4.1")))
        );
        assert_eq!(
            parse("service.version=2.4.1%2Bbuild%207,service.name=caf%C3%A9%2Cbar,"),
            Ok(service(Some("café,bar"), Some("2.4.1+build 7")))
        );
        // The last of a key wins; others are left alone, unchecked past
        // their encoding.
        assert_eq!(
            parse("service.version=1,team=a b,service.version=2"),
            Ok(service(None, Some("2")))
        );
        assert_eq!(parse("service.name="), Ok(service(None, None)));
        assert_eq!(service_resource(None), service(None, None));
        assert_eq!(service_resource(Some("  ")), service(None, None));
    }

    #[test]
    fn a_malformed_or_hostile_variable_is_discarded_with_a_reason_that_does_not_echo_it() {
        for (text, why) in [
            ("service.name", "no `=`"),
            ("=shop", "no key"),
            ("service.version=2%ZZ", "two hex digits"),
            ("service.version=2%4", "two hex digits"),
            ("service.version=%FF%FE", "not UTF-8"),
            ("service.version=1%0AFAKE deploy", "control characters"),
            ("service.name=\u{1b}[31mred", "control characters"),
            ("team=%zz,service.name=shop", "entry 1"),
        ] {
            let resource = service_resource(Some(text));
            assert_eq!(
                (&resource.name, &resource.version),
                (&None, &None),
                "{text}"
            );
            let reason = resource.ignored.expect(text);
            assert!(
                reason.starts_with("OTEL_RESOURCE_ATTRIBUTES ignored"),
                "{reason}"
            );
            assert!(reason.contains(why), "{text}: {reason}");
            assert!(
                !reason.contains("shop") && !reason.contains("FAKE"),
                "{reason}"
            );
        }
        let huge = format!("a={}", "x".repeat(MAX_BYTES));
        assert!(service_resource(Some(&huge)).ignored.is_some());
        // A long value is cut, not refused.
        let long = format!("service.version={}", "v".repeat(MAX_VALUE_CHARS + 10));
        let resource = service_resource(Some(&long));
        assert_eq!(resource.ignored, None);
        assert_eq!(
            resource.version.map(|v| v.chars().count()),
            Some(MAX_VALUE_CHARS)
        );
    }
}
