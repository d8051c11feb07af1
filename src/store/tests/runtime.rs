//! The runtime's minutes on a real file: a simulated month rolled through
//! the tiers and read back at each chart range (means stay the means of
//! the minutes, maxima the maxima), and a file of the version before them
//! migrating with its history kept.

use super::*;

const MIB: u64 = 1 << 20;
/// One minute written every five of the test clock: a month is 8,640.
const EVERY: i64 = 300;
/// The one spike (lag and memory): 10 days in, in the hourly tier by the
/// end.
const SPIKE: i64 = START + 10 * DAY + 7 * 3_600 + 1_200;

fn minute(at: i64) -> Write {
    // Alternating minutes: utilization 0.2 / 0.4, memory 10 / 20 MiB, so
    // any step holding pairs of them has means of exactly 0.3 and 15 MiB.
    let odd = (at - START) / EVERY % 2 == 1;
    let spike = at == SPIKE;
    let resident = if odd { 20 * MIB } else { 10 * MIB };
    Write::Runtime(RuntimeMinute {
        at,
        lag_mean: 0.001,
        lag_max: if spike { 2.5 } else { 0.002 },
        utilization: if odd { 0.4 } else { 0.2 },
        resident_mean: resident,
        resident_max: if spike { 300 * MIB } else { resident + MIB },
    })
}

async fn runtime(store: &Store, from: i64, to: i64, step: i64) -> Vec<RuntimeStep> {
    let range = Range { from, to, step };
    store
        .read(move |c| read::runtime_series(c, range))
        .await
        .expect("runtime")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= b.abs() * 1e-9 + 1e-12
}

#[tokio::test]
async fn a_month_of_runtime_minutes_rolls_up_and_reads_back_at_every_range() {
    let dir = temp_dir("runtime-month");
    let s = open_at(&dir, 64 << 20, 6 * 3_600);
    assert_eq!(opened(&s.store).await, StoreState::Writing);
    let written = 30 * DAY / EVERY;
    for n in 0..written {
        let at = START + n * EVERY;
        s.now.store(at, Ordering::Relaxed);
        s.store.record(minute(at));
        if n % 64 == 0 {
            s.store.flush().await;
        }
    }
    let end = START + written * EVERY;
    s.now.store(end, Ordering::Relaxed);
    s.store.maintain().await;
    assert_eq!(dropped(&s.metrics, DropReason::queue_full), 0);

    // Every tier holds its part, aligned, and no minute was lost or doubled.
    let tiers = s
        .store
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT tier, min(ts), count(*), sum(minutes) FROM runtime_points GROUP BY tier ORDER BY tier",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)))?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .await
        .expect("tiers");
    assert_eq!(tiers.iter().map(|t| t.3).sum::<i64>(), written, "{tiers:?}");
    assert_eq!(tiers.len(), 3, "{tiers:?}");
    assert!(tiers[0].1 >= end - DAY - 300, "raw past a day: {tiers:?}");
    assert_eq!(tiers[1].1 % 300, 0);
    assert!(tiers[1].1 >= end - 14 * DAY - 3_600, "{tiers:?}");
    assert_eq!((tiers[2].1, tiers[2].1 % 3_600), (START, 0), "{tiers:?}");

    // 24 hours in 10-minute steps (raw minutes): two minutes a step.
    let day = runtime(&s.store, end - DAY, end + 1, 600).await;
    assert_eq!(day.len(), 144, "{day:?}");
    for step in &day {
        assert_eq!(step.minutes, 2, "{step:?}");
        assert!(close(step.utilization, 0.3), "{step:?}");
        assert!(close(step.resident_mean, 15.0 * MIB as f64), "{step:?}");
        assert!(close(step.lag_mean, 0.001), "{step:?}");
        assert_eq!(step.resident_max, (21 * MIB) as i64);
    }

    // 7 days in hours (5-minute rows): the mean of twelve minutes' means.
    let week = runtime(&s.store, end - 7 * DAY, end + 1, 3_600).await;
    assert_eq!(week.len(), 168);
    assert!(
        week.iter()
            .all(|p| p.minutes == 12 && close(p.utilization, 0.3))
    );

    // 30 days in 4 hours (hourly rows): the spike's maxima stay in their
    // step and nowhere else; the means are not moved by it.
    let month = runtime(&s.store, START, end + 1, 4 * 3_600).await;
    assert_eq!(month.len(), 180);
    assert_eq!(month.iter().map(|p| p.minutes).sum::<i64>(), written);
    let spiked: Vec<&RuntimeStep> = month
        .iter()
        .filter(|p| p.resident_max > (21 * MIB) as i64)
        .collect();
    assert_eq!(spiked.len(), 1, "{month:?}");
    assert_eq!(spiked[0].ts, SPIKE - SPIKE % (4 * 3_600));
    assert_eq!(spiked[0].resident_max, (300 * MIB) as i64);
    assert!(close(spiked[0].lag_max, 2.5));
    assert!(
        month
            .iter()
            .filter(|p| p.ts != spiked[0].ts)
            .all(|p| close(p.lag_max, 0.002))
    );
    assert!(
        month
            .iter()
            .all(|p| close(p.utilization, 0.3) && close(p.resident_mean, 15.0 * MIB as f64))
    );
    s.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_store_of_the_version_before_migrates_and_keeps_its_history() {
    let dir = temp_dir("runtime-migrate");
    {
        let s = open_at(&dir, 64 << 20, 300);
        assert_eq!(opened(&s.store).await, StoreState::Writing);
        s.store.record(statements(START + 10, 2, 5));
        s.store.record(Write::Event(Event {
            at: START + 20,
            kind: EventKind::Deploy,
            database: None,
            label: "v1".into(),
            detail: None,
        }));
        s.store.flush().await;
        s.task.join().await;
    }
    // Back to version 1: what a perfscope before the runtime's minutes left.
    {
        let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).expect("open");
        conn.execute_batch("DROP TABLE runtime_points; PRAGMA user_version = 1;")
            .expect("version 1");
    }

    let s = open_at(&dir, 64 << 20, 300);
    assert_eq!(opened(&s.store).await, StoreState::Writing);
    let version = s
        .store
        .read(|c| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)))
        .await
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
    let totals = s
        .store
        .read(|c| read::statement_totals(c, "shop", START, START + DAY, 10))
        .await
        .expect("totals");
    assert_eq!(totals.len(), 2);
    assert_eq!(totals[0].sums.calls, 5);
    let events = s
        .store
        .read(|c| read::events(c, START, START + DAY, 10))
        .await
        .expect("events");
    assert_eq!(events[0].label, "v1");

    s.store.record(minute(START + 60));
    s.store.flush().await;
    let points = runtime(&s.store, START, START + DAY, 600).await;
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].minutes, 1);
    s.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}
