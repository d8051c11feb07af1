//! What a scrape of the `pg_ash_*` metrics and a Database time answer cost
//! the ring: the reads `metrics::pg_ash::AshCollector` makes per watched
//! database (AAS by wait class over the last minute, the top 10
//! statements and routes over 5 minutes), for 1 and 100 databases, and
//! the page's five answers for every database over 15 minutes. The ring
//! holds 15 minutes of one server sampled once a second, 200 active
//! sessions a sample spread over 100 databases (50 statements, 20 routes),
//! at the default memory bound.
//!
//!     cargo bench --bench ash_scrape

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use perfscope::pg::ash::{AshRing, By, Limits, Observation, StatementRef, WaitClass};

const DATABASES: usize = 100;
const NOW: u64 = 1_800_000_000;

fn ring() -> (AshRing, Vec<Arc<str>>) {
    let ring = AshRing::new(Limits::default());
    let databases: Vec<Arc<str>> = (0..DATABASES)
        .map(|i| Arc::from(format!("db{i}")))
        .collect();
    let statements: Vec<Arc<StatementRef>> = (0..50)
        .map(|i| {
            Arc::new(StatementRef::of_text(
                &format!("SELECT * FROM t{i} WHERE id = $1"),
                None,
            ))
        })
        .collect();
    let classes = [
        WaitClass::Cpu,
        WaitClass::Cpu,
        WaitClass::Io,
        WaitClass::Lock,
        WaitClass::LwLock,
    ];
    for at in NOW - 900..NOW {
        let sessions = (0..200usize)
            .map(|i| {
                let class = classes[(i + at as usize) % classes.len()];
                Observation {
                    database: databases[i % DATABASES].clone(),
                    class,
                    event: (class != WaitClass::Cpu).then(|| Arc::from("DataFileRead")),
                    statement: statements[(i * 7 + at as usize) % statements.len()].clone(),
                    role: Arc::from("app"),
                    application: Arc::from("shop"),
                    route: Some(Arc::from(format!("/route/{}", i % 20))),
                    trace_id: None,
                    blocked_by: None,
                }
            })
            .collect();
        ring.push(at, &databases, sessions, 0);
    }
    (ring, databases)
}

/// The collector's reads as they were: one read per database and family.
fn scrape(ring: &AshRing, databases: &[Arc<str>]) -> f64 {
    let mut sum = 0.0;
    for database in databases {
        sum += ring
            .db_time(Some(database), NOW - 60, NOW, By::Wait, usize::MAX)
            .aas;
        sum += ring
            .db_time(Some(database), NOW - 300, NOW, By::Statement, 10)
            .aas;
        sum += ring
            .db_time(Some(database), NOW - 300, NOW, By::Route, 10)
            .aas;
    }
    sum
}

/// The collector's reads now: every database's answers from one pass per
/// family (`AshRing::db_time_each`).
fn scrape_each(ring: &AshRing) -> f64 {
    let mut sum = 0.0;
    for (range, by, top) in [
        (60, By::Wait, usize::MAX),
        (300, By::Statement, 10),
        (300, By::Route, 10),
    ] {
        sum += ring
            .db_time_each(NOW - range, NOW, by, top)
            .iter()
            .map(|(_, answer)| answer.aas)
            .sum::<f64>();
    }
    sum
}

fn bench(c: &mut Criterion) {
    let (ring, databases) = ring();
    eprintln!("ring: {:?}", ring.stats());
    c.bench_function("ash scrape reads, 1 database", |b| {
        b.iter(|| black_box(scrape(&ring, &databases[..1])))
    });
    c.bench_function("ash scrape reads, 100 databases", |b| {
        b.iter(|| black_box(scrape(&ring, &databases)))
    });
    c.bench_function("ash scrape reads in one pass, 100 databases", |b| {
        b.iter(|| black_box(scrape_each(&ring)))
    });
    c.bench_function("db-time page answers, every database, 15 min", |b| {
        b.iter(|| {
            for (by, top) in [
                (By::Wait, 20),
                (By::Statement, 10),
                (By::Route, 10),
                (By::Application, 10),
                (By::Role, 10),
            ] {
                black_box(ring.db_time(None, NOW - 900, NOW + 1, by, top));
            }
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
