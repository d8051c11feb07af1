//! Findings about storage: bloated tables and indexes, and replication
//! slots that keep WAL.

use super::{Kind, Recommendation, Severity};

/// Tables and indexes whose estimated bloat is at least half their size
/// and 8 MiB, from the space reader's last pass. Names only for the admin
/// token.
pub(super) fn bloat_findings(
    name: &str,
    space: &crate::pg::readers::space::SpaceSnapshot,
    admin: bool,
) -> Vec<Recommendation> {
    let (tables, indexes) = space.bloated();
    let mib = |b: Option<f64>| b.unwrap_or(0.0) / 1024.0 / 1024.0;
    let mut findings = Vec::new();
    if !tables.is_empty() {
        let stale = tables.iter().filter(|t| t.stale_statistics).count();
        let stale = if stale == 0 {
            String::new()
        } else {
            format!(
                " {stale} of them changed a lot since their last ANALYZE: ANALYZE them too (the estimate's row width is from then)."
            )
        };
        findings.push(Recommendation {
            kind: Kind::TableBloat.into(),
            severity: Severity::Medium,
            message: format!(
                "Database {name}: {} tables are mostly dead space (their size now against their live rows, estimated from statistics): VACUUM (FULL, or pg_repack online) to give it back, and tune autovacuum for them.{stale}",
                tables.len()
            ),
            value: tables.iter().filter_map(|t| t.bloat_ratio).fold(0.0, f64::max),
            threshold: crate::pg::readers::space::BLOAT_SHARE,
            objects: admin.then(|| {
                tables
                    .iter()
                    .map(|t| {
                        format!(
                            "{}.{} ({:.0} MiB of {:.0} MiB{})",
                            t.schema,
                            t.name,
                            mib(t.bloat_bytes),
                            t.heap_bytes as f64 / 1024.0 / 1024.0,
                            if t.stale_statistics { ", statistics stale" } else { "" }
                        )
                    })
                    .collect()
            }),
        });
    }
    if !indexes.is_empty() {
        findings.push(Recommendation {
            kind: Kind::IndexBloat.into(),
            severity: Severity::Medium,
            message: format!(
                "Database {name}: {} indexes are mostly empty space (estimated from statistics): REINDEX CONCURRENTLY them.",
                indexes.len()
            ),
            value: indexes.iter().filter_map(|i| i.bloat_ratio).fold(0.0, f64::max),
            threshold: crate::pg::readers::space::BLOAT_SHARE,
            objects: admin.then(|| {
                indexes
                    .iter()
                    .map(|i| format!("{}.{} on {} ({:.0} MiB of {:.0} MiB)", i.schema, i.name, i.table, mib(i.bloat_bytes), i.bytes as f64 / 1024.0 / 1024.0))
                    .collect()
            }),
        });
    }
    findings
}

/// Inactive replication slots that keep WAL from being removed. Slot names
/// only for the admin token.
pub(super) fn slot_findings(
    name: &str,
    replication: &crate::pg::readers::replication::ReplicationSnapshot,
    admin: bool,
) -> Vec<Recommendation> {
    let inactive = replication.inactive_slots();
    if inactive.is_empty() {
        return Vec::new();
    }
    let retained = inactive
        .iter()
        .filter_map(|s| s.retained_bytes)
        .fold(0.0, f64::max);
    vec![Recommendation {
        kind: Kind::InactiveReplicationSlot.into(),
        severity: if retained >= 1024.0 * 1024.0 * 1024.0 {
            Severity::High
        } else {
            Severity::Medium
        },
        message: format!(
            "Database {name}'s server has {} inactive replication slot(s) keeping WAL ({:.0} MiB at most): the disk fills until the consumer returns. Reconnect it, or drop the slot with pg_drop_replication_slot(name).",
            inactive.len(),
            retained / 1024.0 / 1024.0
        ),
        value: retained,
        threshold: 0.0,
        objects: admin.then(|| {
            inactive
                .iter()
                .map(|s| {
                    format!(
                        "{} ({}, {:.0} MiB)",
                        s.name,
                        s.slot_type,
                        s.retained_bytes.unwrap_or(0.0) / 1024.0 / 1024.0
                    )
                })
                .collect()
        }),
    }]
}
