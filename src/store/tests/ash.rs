//! The active session history's minutes on a real file: a simulated
//! month of minutes, each with more keys than a minute keeps, rolled
//! through the tiers and read back: no sample lost or doubled, the keys
//! bounded, texts and routes kept.

use super::*;

/// One minute written every ten of the test clock.
const EVERY: i64 = 600;
/// Keys each minute brings (more than a minute keeps).
const KEYS: u32 = 70;

fn minute(at: i64) -> Write {
    Write::Ash(AshMinute {
        at,
        ticks: vec![(Arc::from("shop"), 60)],
        counts: (0..KEYS)
            .map(|k| AshCount {
                database: Arc::from("shop"),
                class: Arc::from(if k.is_multiple_of(2) { "CPU" } else { "IO" }),
                event: (k % 2 == 1).then(|| Arc::from("DataFileRead")),
                fingerprint: u64::from(k) + 1,
                query_id: Some(i64::from(k)),
                text: Arc::from(format!("select * from t{k} where id = $1").as_str()),
                role: Arc::from("app"),
                application: Arc::from("api"),
                route: Some(Arc::from(format!("/r{}", k % 5).as_str())),
                samples: k + 1,
            })
            .collect(),
    })
}

#[tokio::test]
async fn a_month_of_ash_minutes_rolls_up_bounded_and_reads_back() {
    let dir = temp_dir("ash-month");
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

    let per_minute: i64 = (1..=i64::from(KEYS)).sum();
    let steps = s
        .store
        .read(move |c| crate::store::ash::read(c, START, end, 30 * DAY, Some("shop")))
        .await
        .expect("read");
    let ticks: u32 = steps.iter().map(|m| m.ticks[0].1).sum();
    assert_eq!(i64::from(ticks), written * 60);
    let mut keys: std::collections::HashMap<Arc<str>, (i64, AshCount)> = Default::default();
    for count in steps.iter().flat_map(|m| &m.counts) {
        let key = Arc::from(format!("{}{}", count.class, count.text).as_str());
        keys.entry(key).or_insert_with(|| (0, count.clone())).0 += i64::from(count.samples);
    }
    let total: i64 = keys.values().map(|(n, _)| n).sum();
    assert_eq!(total, written * per_minute, "no sample lost or doubled");
    // The 50 busiest keys and one `other` per class.
    assert_eq!(keys.len(), MAX_ASH_KEYS_PER_MINUTE + 2, "{:?}", keys.keys());
    let (_, busiest) = keys
        .values()
        .filter(|(_, c)| &*c.text != ASH_OTHER)
        .max_by_key(|(n, _)| *n)
        .expect("a key");
    assert_eq!(&*busiest.text, "select * from t69 where id = $1");
    assert_eq!(busiest.route.as_deref(), Some("/r4"));
    assert_eq!(busiest.event.as_deref(), Some("DataFileRead"));
    assert_eq!(busiest.query_id, Some(69));
    assert!(keys.values().any(|(_, c)| &*c.text == ASH_OTHER));

    // Every tier holds its part.
    let tiers: Vec<i64> = s
        .store
        .read(|c| {
            let mut stmt = c.prepare("SELECT DISTINCT tier FROM ash_ticks ORDER BY tier")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .await
        .expect("tiers");
    assert_eq!(tiers, [0, 1, 2]);
    // A day in the hourly tier reads back in hours: 24 steps of 6 minutes.
    let day = s
        .store
        .read(move |c| crate::store::ash::read(c, START + 3 * DAY, START + 4 * DAY, 3_600, None))
        .await
        .expect("a day");
    assert_eq!(day.len(), 24);
    assert!(day.iter().all(|h| h.ticks[0].1 == 6 * 60));
    s.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}
