//! What sampling real parameter values costs the timed pool: the check
//! every call with parameters pays (one atomic add on the statement's
//! counter and `samples::due`), against the rare call that is sampled
//! (encoding two values against their types and keeping them in the
//! store). Goal: the per-call check under 0.1 % and the sampled call
//! under 2 % of the ~21 µs of client CPU a statement costs (BENCHMARKS.md,
//! "Timed pool against raw deadpool-postgres").
//!
//!     cargo bench --bench samples

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use perfscope::db::samples::{self, Sample, SampleStore};
use tokio_postgres::types::Type;

fn sampling(c: &mut Criterion) {
    let calls = AtomicU64::new(samples::ALWAYS_SAMPLED_CALLS);
    c.bench_function("per call: counter + due", |b| {
        b.iter(|| samples::due(black_box(&calls).fetch_add(1, Ordering::Relaxed)))
    });
    let store = SampleStore::default();
    let types = [Type::TEXT, Type::INT4];
    let mut i = 0u32;
    c.bench_function("sampled call: encode 2 values + record", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let status = if i.is_multiple_of(2) {
                "urgent"
            } else {
                "done"
            };
            let limit = (i % 8) as i32;
            if let Some(sample) = Sample::encode(&types, &[&status, &limit]) {
                store.record(
                    black_box("SELECT id FROM tasks WHERE status = $1 LIMIT $2"),
                    sample,
                );
            }
        })
    });
}

criterion_group!(benches, sampling);
criterion_main!(benches);
