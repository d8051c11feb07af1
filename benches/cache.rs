//! The hit path of `QueryCache::cached_query` with its metrics on, beside
//! the bare store it is built on (`cached`'s `ExpiringLruCache` behind a
//! mutex, no metrics, no single-flight) and beside a miss that loads.
//! Goal: a hit under 1 µs.
//!
//!     cargo bench --bench cache

use std::hint::black_box;
use std::time::{Duration, Instant};

use cached::{Cached, Expires, ExpiringLruCache};
use criterion::{Criterion, criterion_group, criterion_main};
use parking_lot::Mutex;

struct Bare {
    value: u64,
    expires_at: Instant,
}

impl Expires for Bare {
    fn is_expired(&self) -> bool {
        Instant::now() >= self.expires_at
    }
}

fn hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    let cache = perfscope.caches().query_cache::<u64>("users");
    let keys: Vec<String> = (0..1000).map(|i| format!("user:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        cache.set(key, i as u64, Some(Duration::from_secs(3600)));
    }
    let bare: Mutex<ExpiringLruCache<String, Bare>> = Mutex::new(
        ExpiringLruCache::builder()
            .max_size(1000)
            .build()
            .expect("store"),
    );
    for (i, key) in keys.iter().enumerate() {
        bare.lock().cache_set(
            key.clone(),
            Bare {
                value: i as u64,
                expires_at: Instant::now() + Duration::from_secs(3600),
            },
        );
    }

    let mut group = c.benchmark_group("cache hit");
    group.bench_function("harness only: block_on of a ready future", |b| {
        b.iter(|| runtime.block_on(async { black_box(0u64) }))
    });
    let mut i = 0usize;
    group.bench_function("bare ExpiringLruCache behind a mutex", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(bare.lock().cache_get(keys[i].as_str()).map(|e| e.value))
        })
    });
    let mut i = 0usize;
    group.bench_function("perfscope cached_query (metrics on)", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            let key = keys[i].as_str();
            runtime.block_on(async {
                black_box(
                    cache
                        .cached_query(key, || async { Ok::<_, std::io::Error>(0) }, None)
                        .await,
                )
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("cache miss");
    let mut n = 0u64;
    group.bench_function("perfscope cached_query, loader returns at once", |b| {
        b.iter(|| {
            n += 1;
            let key = format!("new:{n}");
            runtime.block_on(async {
                black_box(
                    cache
                        .cached_query(&key, || async { Ok::<_, std::io::Error>(n) }, None)
                        .await,
                )
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hit
}
criterion_main!(benches);
