//! What the advisor reads off a statement's generic plan (EXPLAIN's JSON):
//! its cost, the relations it scans sequentially, and its largest nested
//! loop with no index on the inner side, for the stats' reasons.

/// What perfscope reads off a generic plan.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Plan {
    pub(super) cost: f64,
    /// Relations read by a sequential scan.
    pub(super) seq_scans: Vec<String>,
    /// The largest nested loop's estimated `(outer rows, inner rows)`,
    /// when at least [`NESTED_LOOP_ROWS`] pairs and no index on the inner
    /// side.
    pub(super) nested_loop: Option<(f64, f64)>,
    /// Its shape, for a generic plan (what [`crate::pg::plans`] tracks).
    pub(super) shape: Option<crate::pg::plans::Shape>,
}

/// Row pairs an unindexed nested loop must join, estimated, to be told.
pub const NESTED_LOOP_ROWS: f64 = 1_000_000.0;

/// The largest nested loop under `node` whose inner side reads no index
/// and that joins at least [`NESTED_LOOP_ROWS`] row pairs.
pub(super) fn largest_nested_loop(node: &serde_json::Value, depth: usize) -> Option<(f64, f64)> {
    if depth > 64 {
        return None;
    }
    let children = node.get("Plans").and_then(|p| p.as_array());
    let mut largest = children
        .into_iter()
        .flatten()
        .filter_map(|child| largest_nested_loop(child, depth + 1))
        .max_by(|a, b| (a.0 * a.1).total_cmp(&(b.0 * b.1)));
    if node.get("Node Type").and_then(|t| t.as_str()) == Some("Nested Loop")
        && let Some([outer, inner]) = children.map(Vec::as_slice)
        && !reads_an_index(inner, 0)
    {
        let rows = |n: &serde_json::Value| n.get("Plan Rows").and_then(serde_json::Value::as_f64);
        if let (Some(o), Some(i)) = (rows(outer), rows(inner))
            && o * i >= NESTED_LOOP_ROWS
            && largest.is_none_or(|(lo, li)| o * i > lo * li)
        {
            largest = Some((o, i));
        }
    }
    largest
}

/// Whether any node under `node` scans an index.
pub(super) fn reads_an_index(node: &serde_json::Value, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    let scans_index = matches!(
        node.get("Node Type").and_then(|t| t.as_str()),
        Some("Index Scan" | "Index Only Scan" | "Bitmap Index Scan")
    );
    scans_index
        || node
            .get("Plans")
            .and_then(|p| p.as_array())
            .is_some_and(|plans| plans.iter().any(|p| reads_an_index(p, depth + 1)))
}

/// The relations of every `Seq Scan` node under `node`.
pub(super) fn collect_seq_scans(node: &serde_json::Value, out: &mut Vec<String>) {
    if node.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan")
        && let Some(relation) = node.get("Relation Name").and_then(|r| r.as_str())
        && !out.iter().any(|r| r == relation)
    {
        out.push(relation.to_owned());
    }
    if let Some(children) = node.get("Plans").and_then(|p| p.as_array()) {
        for child in children {
            collect_seq_scans(child, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_loop_is_told_only_when_large_and_unindexed() {
        let nested = |inner: &str, outer_rows: f64| {
            serde_json::json!({
                "Node Type": "Aggregate",
                "Plans": [{
                    "Node Type": "Nested Loop",
                    "Plans": [
                        {"Node Type": "Seq Scan", "Plan Rows": outer_rows},
                        {"Node Type": "Materialize", "Plan Rows": 3000.0,
                         "Plans": [{"Node Type": inner, "Plan Rows": 3000.0}]}
                    ]
                }]
            })
        };
        assert_eq!(
            largest_nested_loop(&nested("Seq Scan", 3000.0), 0),
            Some((3000.0, 3000.0))
        );
        // An index on the inner side: the loop looks rows up.
        assert_eq!(largest_nested_loop(&nested("Index Scan", 3000.0), 0), None);
        // Too small to tell.
        assert_eq!(largest_nested_loop(&nested("Seq Scan", 10.0), 0), None);
    }
}
