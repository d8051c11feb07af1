//! The "never" arrows of ARCHITECTURE.md, checked against the code: a
//! module that must not depend on another names none of its items outside
//! comments. Reads the sources as text (as a reviewer would grep them), so
//! it needs nothing built.

use std::path::{Path, PathBuf};

fn sources(under: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let start = root.join(under);
    let mut found = Vec::new();
    let mut stack = vec![start.clone()];
    if start.extension().is_some_and(|e| e == "rs") {
        return vec![start];
    }
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    assert!(!found.is_empty(), "no sources under {start:?}");
    found
}

/// The code lines of `under` (comments left out) that name `crate::<to>`.
fn arrows(under: &str, to: &str) -> Vec<String> {
    let needle = format!("crate::{to}");
    let mut hits = Vec::new();
    for file in sources(under) {
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let code = code.split(" //").next().unwrap_or(code);
            let named = code.match_indices(&needle).any(|(at, _)| {
                !code[at + needle.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if named {
                hits.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    hits
}

#[track_caller]
fn never(from: &str, to: &[&str]) {
    for to in to {
        let hits = arrows(from, to);
        assert!(
            hits.is_empty(),
            "{from} must not import {to}:\n{}",
            hits.join("\n")
        );
    }
}

#[test]
fn the_front_ends_never_import_each_other() {
    never("api", &["ui"]);
    never("ui", &["api"]);
}

#[test]
fn the_metrics_core_imports_no_exporter_and_no_config() {
    never(
        "metrics",
        &[
            "telemetry",
            "trace",
            "config",
            "http",
            "service",
            "api",
            "ui",
        ],
    );
    never("trace", &["telemetry", "config", "metrics", "db", "http"]);
}

#[test]
fn nothing_below_the_front_ends_imports_them() {
    for lower in [
        "perfscope.rs",
        "perfscope",
        "service",
        "findings",
        "pg",
        "db",
        "alerts",
        "telemetry",
        "http",
        "cache",
        "runtime",
        "config",
        "history",
        "prometheus",
    ] {
        never(lower, &["api", "ui"]);
    }
}

/// What Prometheus answers is untrusted text for the pages: the client
/// never feeds the metric families (its labels never become ours), and
/// only the pages' route source names it.
#[test]
fn prometheus_answers_reach_the_pages_alone() {
    never(
        "prometheus",
        &[
            "metrics",
            "api",
            "service",
            "pg",
            "db",
            "telemetry",
            "alerts",
        ],
    );
    for other in [
        "perfscope.rs",
        "perfscope",
        "api",
        "service",
        "findings",
        "pg",
        "db",
        "alerts",
        "metrics",
        "http",
        "history",
        "config",
    ] {
        never(other, &["prometheus"]);
    }
}

#[test]
fn only_the_top_names_the_host_app_mount() {
    for lower in [
        "api",
        "ui",
        "service",
        "perfscope.rs",
        "perfscope",
        "findings",
        "pg",
        "db",
        "alerts",
        "telemetry",
        "http",
        "cache",
        "runtime",
        "config",
        "history",
        "prometheus",
        "metrics",
        "trace",
    ] {
        never(lower, &["mount"]);
    }
}

#[test]
fn the_use_cases_sit_above_the_watching_half() {
    for lower in [
        "pg",
        "db",
        "findings",
        "alerts",
        "telemetry",
        "http",
        "perfscope.rs",
        "perfscope",
    ] {
        never(lower, &["service"]);
    }
}

#[test]
fn measurement_points_use_the_exporter_set_never_one_exporter() {
    for point in ["db", "measure.rs", "cache", "batch.rs", "metrics"] {
        never(point, &["telemetry::sentry", "telemetry::otlp"]);
    }
}

#[test]
fn the_history_store_takes_records_and_knows_no_source() {
    never(
        "store",
        &[
            "perfscope",
            "pg",
            "db",
            "http",
            "service",
            "api",
            "ui",
            "telemetry",
            "config",
            "findings",
            "alerts",
        ],
    );
}

/// Regressions flow one way: the store's rows become findings, which the
/// alert rules take; findings never name the alerts (no cycle).
#[test]
fn regressions_flow_from_the_store_to_findings_to_alerts() {
    never("findings", &["alerts"]);
}

#[test]
fn sampled_values_are_read_only_where_they_are_planned() {
    // The store exports nothing itself…
    never(
        "db/samples.rs",
        &[
            "metrics",
            "trace",
            "telemetry",
            "alerts",
            "history",
            "findings",
            "service",
            "api",
            "ui",
        ],
    );
    // …and only the pool (writing), the planner and the advisor (reading)
    // name it.
    for outside in [
        "api",
        "ui",
        "service",
        "findings",
        "history",
        "metrics",
        "telemetry",
        "trace",
        "alerts",
        "http",
        "runtime",
        "cache",
        "config",
        "perfscope",
        "perfscope.rs",
        "pg/readers",
        "pg/actions",
    ] {
        never(outside, &["db::samples"]);
    }
}

/// The growth forecast is arithmetic on `(day, value)` pairs: the store,
/// the readers and the pool feed it through `service/growth.rs`.
#[test]
fn the_growth_forecast_is_plain_arithmetic() {
    never("findings/growth.rs", &["store", "pg", "db", "service"]);
}

/// The seeded history (`testing/history.rs`) writes through the store's
/// public API only, as a recorder would: it names no handle, reader,
/// use case, finding or page.
#[test]
fn the_seeded_history_writes_through_the_store_only() {
    never(
        "testing/history.rs",
        &["perfscope", "pg", "service", "ui", "api", "findings"],
    );
}

/// The active session history reaches the front ends through its use case
/// only (which checks the range, `top` and the database by name), never
/// the ring directly; its metrics collector reads the ring alone: it runs
/// no query and names no store or use case.
#[test]
fn the_session_history_is_answered_through_its_use_case() {
    for front in ["api/db_time.rs", "ui/pages/db_time.rs", "ui/pages/db_time"] {
        never(front, &["pg::ash::ring", "pg::ash::AshRing"]);
    }
    never("metrics/pg_ash.rs", &["service", "store", "db"]);
}
