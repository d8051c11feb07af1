//! Any values for every setting: the configuration is accepted, or refused
//! with an error that names one variable and never quotes a secret (a
//! password in a database URL, a token, a DSN key, a webhook URL, the
//! signing key, an OTLP endpoint or its headers, the planner's password).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use perfscope::config::{RawConfig, SETTINGS};

/// A value (or none) for each setting of the table, in its order.
#[derive(Arbitrary, Debug)]
struct Input {
    values: Vec<Option<String>>,
}

/// A password the error must never contain: long and unlike any message.
const PASSWORD: &str = "Pw7fuzzSecretXq";

/// The fuzzed text of a secret setting wrapped so that it carries
/// [`PASSWORD`] where the secret sits; `None` for a setting that is not a
/// secret. Every secret of the table must have a shape here (checked on
/// each run), so a new secret is fuzzed for leaks as soon as it is added.
fn with_secret(var: &str, s: &str) -> Option<String> {
    Some(match var {
        "PERFSCOPE_ADMIN_TOKEN" | "PERFSCOPE_PLANNER_PASSWORD" | "ALERT_WEBHOOK_SECRET" => {
            format!("{PASSWORD}{s}")
        }
        "PERFSCOPE_METRICS_TOKEN" | "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => format!("{s}{PASSWORD}"),
        "DATABASE_URL" => format!("postgres://u:{PASSWORD}@{s}"),
        "PERFSCOPE_WATCH_DATABASES" => format!("{s}=postgres://u:{PASSWORD}@h/{s}"),
        "ALERT_WEBHOOK_URLS" => format!("https://h/{PASSWORD}{s}"),
        "SENTRY_DSN" => format!("https://{PASSWORD}@{s}"),
        "OTEL_EXPORTER_OTLP_ENDPOINT" => format!("http://{PASSWORD}@{s}"),
        "OTEL_EXPORTER_OTLP_HEADERS" | "OTEL_EXPORTER_OTLP_TRACES_HEADERS" => {
            format!("{s}api-key={PASSWORD}%zz,{PASSWORD}{s}")
        }
        _ => return None,
    })
}

// Every setting of the table is fuzzed, by its variable: a new setting is
// covered without touching this target.
fuzz_target!(|input: Input| {
    for setting in SETTINGS.iter().filter(|s| s.secret) {
        assert!(
            with_secret(setting.var, "").is_some(),
            "{} is a secret without a shape in the config fuzz target",
            setting.var
        );
    }
    let raw = RawConfig::from_lookup(|var| {
        let index = SETTINGS.iter().position(|s| s.var == var)?;
        let value = input.values.get(index)?.as_deref()?;
        with_secret(var, value).or_else(|| Some(value.to_owned()))
    });
    if let Err(error) = raw.validate() {
        assert!(
            !error.var.is_empty()
                && error
                    .var
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "{error}"
        );
        assert!(
            !error.to_string().contains(PASSWORD),
            "a secret in: {error}"
        );
        assert!(
            !format!("{error:?}").contains(PASSWORD),
            "a secret in: {error:?}"
        );
    }
});
