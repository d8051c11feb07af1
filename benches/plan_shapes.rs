//! What catching plan changes adds to an advisor pass, beside its planning
//! (the shapes come from plans the advisor makes anyway: no planner call of
//! its own): the shape and fingerprint of one generic plan (a 3-way join
//! with an aggregate and a sort, 9 nodes, as EXPLAIN's JSON gives it), and
//! one pass's record of 20 statements into a tracker holding 1,000.
//!
//!     cargo bench --bench plan_shapes

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use perfscope::pg::plans::{PlanChanges, Planned, Shape};
use perfscope::pg::readers::statements::Figures;
use serde_json::{Value, json};

fn scan(node: &str, relation: &str, index: Option<&str>) -> Value {
    let mut scan = json!({
        "Node Type": node, "Parent Relationship": "Outer", "Parallel Aware": false,
        "Async Capable": false, "Relation Name": relation, "Alias": relation,
        "Startup Cost": 0.42, "Total Cost": 1234.5, "Plan Rows": 100, "Plan Width": 16,
        "Filter": "(status = $1)"
    });
    if let Some(index) = index {
        scan["Index Name"] = json!(index);
        scan["Scan Direction"] = json!("Forward");
        scan["Index Cond"] = json!("(id = o.customer_id)");
    }
    scan
}

fn plan() -> Value {
    let hash = |child: Value| json!({"Node Type": "Hash", "Plans": [child], "Total Cost": 9.0});
    json!({
        "Node Type": "Limit", "Total Cost": 99.0, "Plan Rows": 20,
        "Plans": [{
            "Node Type": "Sort", "Sort Key": ["(sum(o.amount)) DESC"],
            "Plans": [{
                "Node Type": "Aggregate", "Strategy": "Hashed", "Group Key": ["c.id"],
                "Plans": [{
                    "Node Type": "Hash Join", "Join Type": "Inner",
                    "Plans": [
                        {"Node Type": "Nested Loop", "Join Type": "Inner",
                         "Plans": [scan("Seq Scan", "orders", None),
                                   scan("Index Scan", "customers", Some("customers_pkey"))]},
                        hash(scan("Bitmap Heap Scan", "regions", None)),
                    ]
                }]
            }]
        }]
    })
}

fn shapes(c: &mut Criterion) {
    let plan = plan();
    let mut group = c.benchmark_group("plan_shapes");
    group.bench_function("shape of a 9-node plan", |b| {
        b.iter(|| black_box(Shape::of(black_box(&plan))))
    });
    let changes = PlanChanges::new(Arc::from("db"));
    let shape = Shape::of(&plan);
    let planned = |from: i64, calls: i64| -> Vec<Planned> {
        (from..from + 20)
            .map(|queryid| Planned {
                queryid,
                text: None,
                shape: shape.clone(),
                cumulative: Figures {
                    calls,
                    total_ms: calls as f64,
                    ..Figures::default()
                },
            })
            .collect()
    };
    for block in 0..50 {
        changes.record(planned(block * 20, 1), 0, SystemTime::now());
    }
    let mut calls = 1;
    group.bench_function("record 20 statements (1,000 tracked)", |b| {
        b.iter(|| {
            calls += 1;
            changes.record(planned(0, calls), 0, SystemTime::now());
        })
    });
    group.finish();
}

criterion_group!(benches, shapes);
criterion_main!(benches);
