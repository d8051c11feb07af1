//! The runtime's history in the store over real HTTP (issue 19): a day of
//! runtime minutes written as a previous run would have shows on the
//! overview's runtime cards at `?range=24h` (the hour stays the process's
//! own), and the agent's recorder writes its own minute into the store.

#![cfg(all(feature = "store", feature = "ui"))]

mod support;

use std::sync::Arc;
use std::time::Duration;

use perfscope::metrics::store::StoreMetrics;
use perfscope::store::{
    Range, RuntimeMinute, Store, StoreSettings, StoreState, Write, read, unix_now,
};
use support::{TestAgent, ui_page, ui_session};

const MIB: u64 = 1 << 20;

/// The page once the agent's store has opened.
async fn page_with_store(base: &str, cookie: &str, path: &str) -> (u16, String) {
    for _ in 0..50 {
        let (status, body) = ui_page(base, path, cookie).await;
        if !body.contains("still opening") {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the store did not open within 5 s");
}

/// The `<svg>` whose label starts with `label`.
fn chart<'a>(body: &'a str, label: &str) -> &'a str {
    let start = body
        .find(&format!("aria-label=\"{label}"))
        .unwrap_or_else(|| panic!("a chart labelled {label}: {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</svg>").unwrap_or(rest.len())]
}

fn points(svg: &str) -> usize {
    svg.split("<polyline points=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|line| line.split(' ').count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_at_24h_draws_the_stored_runtime_minutes() {
    let dir = support::temp_dir("runtime-day");
    let now = unix_now();
    {
        let (store, task) = Store::open(
            StoreSettings::new(&dir, 64 << 20),
            Arc::new(StoreMetrics::default()),
        );
        // A minute every minute of the last day; a spike 5 hours ago.
        for minute in 0..1_440 {
            let at = now - 86_400 + 60 + minute * 60;
            let spike = minute == 1_140;
            store.record(Write::Runtime(RuntimeMinute {
                at,
                lag_mean: 0.001,
                lag_max: if spike { 1.5 } else { 0.002 },
                utilization: 0.25,
                resident_mean: 14 * MIB,
                resident_max: if spike { 300 * MIB } else { 15 * MIB },
            }));
            if minute % 64 == 0 {
                store.flush().await;
            }
        }
        store.flush().await;
        task.join().await;
    }
    let data_dir = dir.display().to_string();
    let agent = TestAgent::start_with(move |raw| raw.data_dir = Some(data_dir)).await;
    let base = agent.url("");
    let cookie = ui_session(&base).await;

    let (status, body) = page_with_store(&base, &cookie, "/ui?range=24h").await;
    assert_eq!(status, 200, "{body}");
    let memory = chart(
        &body,
        "resident memory, the highest per 10 minutes, the last 24 hours",
    );
    assert!(points(memory) >= 140, "a point per 10 minutes: {memory}");
    assert!(
        body.contains("peak 300.0 MiB over the last 24 hours"),
        "{body}"
    );
    assert!(
        body.contains("worst 1.50 s over the last 24 hours"),
        "{body}"
    );
    let lag = chart(
        &body,
        "event-loop lag, the highest per 10 minutes, the last 24 hours",
    );
    assert!(points(lag) >= 140, "{lag}");
    let busy = chart(
        &body,
        "runtime utilization, the mean per 10 minutes, the last 24 hours",
    );
    assert!(points(busy) >= 140, "{busy}");
    assert!(!body.contains("last hour"), "{body}");

    // The hour is the process's own samples: none of the stored day.
    let (_, body) = page_with_store(&base, &cookie, "/ui").await;
    assert!(
        body.contains("aria-label=\"resident memory, last hour\""),
        "{body}"
    );
    assert!(!body.contains("300.0 MiB"), "{body}");
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_writes_the_runtime_minute_into_the_store() {
    let dir = support::temp_dir("runtime-recorder");
    let data_dir = dir.display().to_string();
    let agent = TestAgent::start_with(move |raw| raw.data_dir = Some(data_dir)).await;
    let base = agent.url("");
    let cookie = ui_session(&base).await;
    let _ = page_with_store(&base, &cookie, "/ui?range=24h").await;
    let started = unix_now();
    // The recorder writes its last minute as the agent stops.
    agent.stop().await;

    let (store, task) = Store::open(
        StoreSettings::new(&dir, 64 << 20),
        Arc::new(StoreMetrics::default()),
    );
    store.flush().await;
    assert_eq!(store.state(), StoreState::Writing);
    let range = Range {
        from: started - 3_600,
        to: unix_now() + 1,
        step: 3_600,
    };
    let steps = store
        .read(move |conn| read::runtime_series(conn, range))
        .await
        .expect("read");
    let minutes: i64 = steps.iter().map(|step| step.minutes).sum();
    assert!(minutes >= 1, "{steps:?}");
    let step = steps[0];
    assert!(
        step.resident_max > MIB as i64 && step.resident_mean > MIB as f64,
        "the agent's resident memory: {step:?}"
    );
    assert!((0.0..=1.0).contains(&step.utilization), "{step:?}");
    assert!(
        step.lag_max >= step.lag_mean && step.lag_mean >= 0.0,
        "{step:?}"
    );
    task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}
