//! Any values for every setting: the configuration is accepted, or refused
//! with an error that names one variable and never quotes a secret (a
//! password in a database URL, a token, a DSN key, a webhook URL, the
//! signing key, an OTLP endpoint, the planner's password).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use perfscope::config::{RawConfig, RawOtlp};

#[derive(Arbitrary, Debug)]
struct Input {
    values: [Option<String>; 55],
}

/// A password the error must never contain: long and unlike any message.
const PASSWORD: &str = "Pw7fuzzSecretXq";

fn with_secret(value: &Option<String>, shape: impl Fn(&str) -> String) -> Option<String> {
    value.as_deref().map(shape)
}

// Every field of RawConfig is listed (no `..Default::default()`): a new
// setting breaks this build until it is fuzzed too (CI builds it).
fuzz_target!(|input: Input| {
    let v = &input.values;
    let raw = RawConfig {
        listen: v[0].clone(),
        admin_token: with_secret(&v[1], |s| format!("{PASSWORD}{s}")),
        metrics_token: with_secret(&v[2], |s| format!("{s}{PASSWORD}")),
        tls_cert: None,
        tls_key: None,
        database_url: with_secret(&v[3], |s| format!("postgres://u:{PASSWORD}@{s}")),
        watch_databases: with_secret(&v[4], |s| format!("{s}=postgres://u:{PASSWORD}@h/{s}")),
        pool_min: v[5].clone(),
        pool_max: v[6].clone(),
        query_cache_ttl: v[7].clone(),
        max_cache_size: v[8].clone(),
        slow_query_threshold: v[9].clone(),
        high_memory_threshold: v[10].clone(),
        event_loop_lag_threshold: v[11].clone(),
        log_format: v[12].clone(),
        readiness_database: v[46].clone(),
        max_series_per_family: v[13].clone(),
        http_buckets: v[14].clone(),
        db_buckets: v[15].clone(),
        max_body_bytes: v[16].clone(),
        runtime_sample_interval: v[17].clone(),
        shutdown_grace: v[18].clone(),
        header_timeout: v[19].clone(),
        body_timeout: v[47].clone(),
        max_http_connections: v[48].clone(),
        read_interval: v[20].clone(),
        read_timeout: v[21].clone(),
        max_db_connections: v[49].clone(),
        db_connection_headroom: v[50].clone(),
        long_query_threshold: v[44].clone(),
        idle_in_transaction_threshold: v[45].clone(),
        top_statements: v[22].clone(),
        planner_user: v[51].clone(),
        planner_password: with_secret(&v[52], |s| format!("{PASSWORD}{s}")),
        plan_roles: v[53].clone(),
        trusted_owners: v[54].clone(),
        alert_webhook_urls: with_secret(&v[23], |s| format!("https://h/{PASSWORD}{s}")),
        alert_webhook_secret: with_secret(&v[24], |s| format!("{PASSWORD}{s}")),
        alert_for: v[25].clone(),
        alert_dedup_window: v[26].clone(),
        webhook_deadline: v[27].clone(),
        sentry_dsn: with_secret(&v[28], |s| format!("https://{PASSWORD}@{s}")),
        sentry_environment: v[29].clone(),
        sentry_release: v[30].clone(),
        sentry_traces_sample_rate: v[31].clone(),
        otlp: RawOtlp {
            endpoint: with_secret(&v[32], |s| format!("http://{PASSWORD}@{s}")),
            traces_endpoint: with_secret(&v[33], |s| format!("{s}{PASSWORD}")),
            protocol: v[34].clone(),
            traces_protocol: v[35].clone(),
            service_name: v[36].clone(),
            sdk_disabled: v[37].clone(),
            traces_exporter: v[38].clone(),
            bsp_max_queue_size: v[39].clone(),
            bsp_schedule_delay: v[40].clone(),
            bsp_max_export_batch_size: v[41].clone(),
            bsp_export_timeout: v[42].clone(),
            timeout: v[43].clone(),
            traces_timeout: None,
        },
    };
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
