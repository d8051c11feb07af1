//! A plan's shape: what the planner chose, without what it estimated.
//!
//! The canonical shape is one line per node in tree order (depth-first,
//! children in EXPLAIN's order), indented by depth: the node type (with
//! `Parallel` when parallel-aware), an aggregate's strategy, a join's type,
//! a scan's direction when backward, and the relation and index it reads.
//! Costs, row and width estimates, filters, conditions and output columns
//! are left out: they change with statistics (more rows, an ANALYZE) while
//! the plan stays the same, and conditions may carry constants. The
//! fingerprint is FNV-1a (64 bits) of the whole canonical text, stable
//! across processes and releases (unlike `std`'s hasher), so a store can
//! compare fingerprints written by an older agent.
//!
//! Relation and index names are the database's, so the text is for the
//! admin only; it is capped at [`SHAPE_TEXT_BYTES`] (the fingerprint still
//! covers every node).

use serde_json::Value;

/// The shape text kept per plan, at most (bytes; the fingerprint covers
/// the whole shape).
pub const SHAPE_TEXT_BYTES: usize = 4_096;
/// Plan nodes read below the root, at most (deeper nodes are left out of
/// text and fingerprint alike).
const MAX_DEPTH: usize = 64;
/// What ends a shape text cut at [`SHAPE_TEXT_BYTES`].
const CUT: &str = "…";

/// A plan's canonical shape and its fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// FNV-1a of the whole canonical text.
    pub fingerprint: u64,
    /// The canonical text, at most [`SHAPE_TEXT_BYTES`] bytes.
    pub text: String,
}

impl Shape {
    /// The shape of the plan under `root` (EXPLAIN's `/0/Plan` node).
    pub fn of(root: &Value) -> Self {
        let mut builder = Builder {
            hash: FNV_OFFSET,
            text: String::new(),
            cut: false,
        };
        builder.node(root, 0);
        Self {
            fingerprint: builder.hash,
            text: builder.text,
        }
    }

    /// The fingerprint as 16 hex digits.
    pub fn hex(&self) -> String {
        hex(self.fingerprint)
    }
}

/// A fingerprint as 16 hex digits.
pub fn hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

struct Builder {
    hash: u64,
    text: String,
    cut: bool,
}

impl Builder {
    fn node(&mut self, node: &Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let line = line(node, depth);
        self.push(&line);
        if let Some(children) = node.get("Plans").and_then(Value::as_array) {
            for child in children {
                self.node(child, depth + 1);
            }
        }
    }

    /// Hashes `line` and a newline, and keeps it while under the cap.
    fn push(&mut self, line: &str) {
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            self.hash ^= u64::from(byte);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        if self.cut {
            return;
        }
        // The line and its newline, leaving room for the cut's mark.
        if self.text.len() + line.len() < SHAPE_TEXT_BYTES - CUT.len() {
            self.text.push_str(line);
            self.text.push('\n');
        } else {
            self.text.push_str(CUT);
            self.cut = true;
        }
    }
}

/// One node's line: `  Parallel Seq Scan on orders`,
/// `Hash Join (Inner)`, `Aggregate [Hashed]`,
/// `Index Scan backward on orders using orders_pkey`.
fn line(node: &Value, depth: usize) -> String {
    let text = |key: &str| node.get(key).and_then(Value::as_str);
    let mut line = "  ".repeat(depth);
    if node.get("Parallel Aware").and_then(Value::as_bool) == Some(true) {
        line.push_str("Parallel ");
    }
    line.push_str(text("Node Type").unwrap_or("?"));
    if let Some(strategy) = text("Strategy") {
        line.push_str(&format!(" [{strategy}]"));
    }
    if let Some(join) = text("Join Type") {
        line.push_str(&format!(" ({join})"));
    }
    if text("Scan Direction") == Some("Backward") {
        line.push_str(" backward");
    }
    if let Some(relation) = text("Relation Name") {
        line.push_str(&format!(" on {}", printable(relation)));
    }
    if let Some(index) = text("Index Name") {
        line.push_str(&format!(" using {}", printable(index)));
    }
    line
}

/// A name with its control characters (a newline would forge a node)
/// replaced.
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index_scan(rows: f64, cost: f64) -> Value {
        json!({
            "Node Type": "Limit", "Startup Cost": 0.29, "Total Cost": cost,
            "Plan Rows": rows, "Plan Width": 8,
            "Plans": [{
                "Node Type": "Index Scan", "Parent Relationship": "Outer",
                "Parallel Aware": false, "Scan Direction": "Forward",
                "Index Name": "orders_customer", "Relation Name": "orders",
                "Alias": "o", "Total Cost": cost, "Plan Rows": rows,
                "Index Cond": "(customer_id = 42)", "Filter": "(note <> 'secret'::text)"
            }]
        })
    }

    #[test]
    fn the_shape_names_nodes_relations_and_indexes_in_tree_order() {
        let shape = Shape::of(&index_scan(10.0, 8.3));
        assert_eq!(
            shape.text,
            "Limit\n  Index Scan on orders using orders_customer\n"
        );
        assert_eq!(shape.hex().len(), 16);
    }

    #[test]
    fn costs_rows_and_conditions_do_not_change_the_fingerprint() {
        let a = Shape::of(&index_scan(10.0, 8.3));
        let b = Shape::of(&index_scan(10_000.0, 1_234.5));
        assert_eq!(a, b);
        assert!(!a.text.contains("secret") && !a.text.contains("42"));
    }

    #[test]
    fn another_node_join_strategy_or_index_is_another_fingerprint() {
        let base = index_scan(10.0, 8.3);
        let mut seq = base.clone();
        seq["Plans"][0]["Node Type"] = json!("Seq Scan");
        let mut other_index = base.clone();
        other_index["Plans"][0]["Index Name"] = json!("orders_pkey");
        let mut backward = base.clone();
        backward["Plans"][0]["Scan Direction"] = json!("Backward");
        let mut parallel = base.clone();
        parallel["Plans"][0]["Parallel Aware"] = json!(true);
        let join = |kind: &str, join_type: &str| {
            json!({"Node Type": kind, "Join Type": join_type,
                   "Plans": [{"Node Type": "Seq Scan", "Relation Name": "a"},
                             {"Node Type": "Seq Scan", "Relation Name": "b"}]})
        };
        let shapes = [
            Shape::of(&base),
            Shape::of(&seq),
            Shape::of(&other_index),
            Shape::of(&backward),
            Shape::of(&parallel),
            Shape::of(&join("Hash Join", "Inner")),
            Shape::of(&join("Hash Join", "Left")),
            Shape::of(&join("Nested Loop", "Inner")),
            Shape::of(&json!({"Node Type": "Aggregate", "Strategy": "Hashed"})),
            Shape::of(&json!({"Node Type": "Aggregate", "Strategy": "Sorted"})),
        ];
        for (i, a) in shapes.iter().enumerate() {
            for b in &shapes[i + 1..] {
                assert_ne!(a.fingerprint, b.fingerprint, "{}\n{}", a.text, b.text);
            }
        }
        // Children in order: swapping a join's sides is another plan.
        let swapped = json!({"Node Type": "Hash Join", "Join Type": "Inner",
            "Plans": [{"Node Type": "Seq Scan", "Relation Name": "b"},
                      {"Node Type": "Seq Scan", "Relation Name": "a"}]});
        assert_ne!(Shape::of(&swapped), Shape::of(&join("Hash Join", "Inner")));
    }

    #[test]
    fn a_long_shape_is_cut_but_fingerprinted_whole() {
        let wide = |last: &str| {
            let mut scans: Vec<Value> = (0..500)
                .map(|i| json!({"Node Type": "Seq Scan", "Relation Name": format!("t{i}")}))
                .collect();
            scans.push(json!({"Node Type": "Seq Scan", "Relation Name": last}));
            json!({"Node Type": "Append", "Plans": scans})
        };
        let (a, b) = (Shape::of(&wide("x")), Shape::of(&wide("y")));
        assert!(a.text.len() <= SHAPE_TEXT_BYTES, "{}", a.text.len());
        assert!(a.text.ends_with(CUT));
        assert_eq!(a.text, b.text);
        assert_ne!(a.fingerprint, b.fingerprint);
    }

    #[test]
    fn a_name_cannot_forge_a_line() {
        let shape =
            Shape::of(&json!({"Node Type": "Seq Scan", "Relation Name": "a\nSeq Scan on b"}));
        assert_eq!(shape.text.lines().count(), 1, "{}", shape.text);
    }

    #[test]
    fn the_fingerprint_is_fnv1a_of_the_text() {
        // A fixed value: a store written by one release is read by the next.
        let shape = Shape::of(&json!({"Node Type": "Result"}));
        assert_eq!(shape.text, "Result\n");
        assert_eq!(shape.hex(), "ca1a59608855feaa");
    }
}
