//! Whole-workload index selection for one table: from the candidate of
//! every top statement to the smallest set of indexes with the most
//! benefit, with each index's read saving weighed against its write cost.
//!
//! Why a step of its own: a per-statement pass (Dexter's) suggests one
//! index per statement, so three statements filtering `a`, `a, b` and `a`
//! ordered by `b` get three indexes where one composite `(a, b)` serves all
//! three; and it never looks at what an index costs the table's writes. So
//! the advisor first collects every statement's candidate per table
//! ([`Choice::serve`] merges identical ones), lets a longer candidate claim
//! the statements whose candidate is a prefix of it ([`claims`]: the
//! advisor confirms each claim with hypopg before it counts), then
//! [`select`]s greedily: the option with the largest net benefit per
//! second (read saving of the statements it serves that no chosen index
//! serves yet, minus its write cost), again and again, while that is above
//! zero.
//!
//! The figures are in the planner's cost units per second: a statement's
//! saving per call is `cost before - cost after` of its generic plan with
//! the hypothetical index (hypopg), or, from statistics, the cost of
//! reading the table sequentially ([`statistics_saving`]); times its calls
//! per second. An index's write cost is [`INDEX_ENTRY_COST`] per index
//! entry written per second: one per insert, delete and non-HOT update,
//! and, when the index holds a column the workload's UPDATEs set, every
//! HOT update of the table becomes non-HOT and writes an entry into every
//! index of the table (those it has, those chosen before, and this one).
//!
//! Deterministic by construction: options are kept in a `BTreeMap` by
//! their elements, statements by queryid, sums are taken in that order,
//! and ties go to the fewer elements, then the smaller elements; the
//! statements' order in the pass changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::{Element, quote_ident};

/// What one index entry written costs, in the planner's cost units: a
/// B-tree descent to a leaf page that is, as a rule, not the last one
/// written (PostgreSQL's default `random_page_cost`, 4.0).
pub const INDEX_ENTRY_COST: f64 = 4.0;

/// Per row, the planner's cost of a sequential read with the default cost
/// settings: `cpu_tuple_cost` (0.01) and one `cpu_operator_cost` (0.0025)
/// for the filter, plus a page (`seq_page_cost` 1.0) per ~100 rows.
pub const SEQUENTIAL_ROW_COST: f64 = 0.0225;

/// Without hypopg, a statement's saving per call: the sequential read of
/// the table's `rows` it stops doing (an upper bound; the index's own
/// read is small beside it on a table worth an index).
pub fn statistics_saving(rows: i64) -> f64 {
    rows.max(0) as f64 * SEQUENTIAL_ROW_COST
}

/// One statement's figures, as the weighing needs them.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementFigures {
    /// pg_stat_statements' id (the stable key).
    pub queryid: i64,
    /// Calls per second over pg_stat_statements' window.
    pub calls_per_second: f64,
    /// Its total time, ms (the suggestion's cost figures come from the
    /// statement with the most).
    pub total_ms: f64,
}

/// How much an index saves one statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Saving {
    /// Planner cost saved per call.
    pub per_call: f64,
    /// `(before, after)` when hypopg planned it.
    pub costs: Option<(f64, f64)>,
}

/// One index that may be chosen, and the statements it serves.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// Its elements, in order.
    pub elements: Vec<Element>,
    /// The statements it serves, by queryid.
    pub serves: BTreeMap<i64, Saving>,
}

impl Choice {
    /// A statement it serves (the larger saving when it is there twice).
    pub fn serve(&mut self, queryid: i64, saving: Saving) {
        match self.serves.get(&queryid) {
            Some(had) if had.per_call >= saving.per_call => {}
            _ => {
                self.serves.insert(queryid, saving);
            }
        }
    }
}

/// The writes of one table, per second, and what its workload updates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableWrites {
    /// Rows inserted per second.
    pub inserts: f64,
    /// Rows updated per second (HOT ones included).
    pub updates: f64,
    /// Rows updated per second without touching an index (HOT).
    pub hot_updates: f64,
    /// Rows deleted per second.
    pub deletes: f64,
    /// Indexes the table has.
    pub indexes: usize,
    /// Columns the workload's UPDATEs of this table set.
    pub updated_columns: BTreeSet<String>,
}

impl TableWrites {
    /// Whether an index on `elements` holds a column the workload's
    /// UPDATEs set (an expression holds its column quoted).
    fn updated(&self, elements: &[Element]) -> bool {
        elements.iter().any(|element| match element {
            Element::Column(column) => self.updated_columns.contains(column),
            Element::Expression(sql) => self
                .updated_columns
                .iter()
                .any(|column| sql.contains(&quote_ident(column))),
        })
    }

    /// The write cost per second of one more index on `elements`, given
    /// the `chosen` new indexes before it and whether they already made
    /// the HOT updates non-HOT.
    fn cost(&self, elements: &[Element], chosen: usize, hot_lost: bool) -> f64 {
        let hot = self.hot_updates.clamp(0.0, self.updates.max(0.0));
        let mut entries = self.inserts.max(0.0) + self.deletes.max(0.0) + (self.updates - hot);
        if hot_lost {
            entries += hot;
        } else if self.updated(elements) {
            // This index's own entries, and one in every other index.
            entries += hot * (1 + self.indexes + chosen) as f64;
        }
        INDEX_ENTRY_COST * entries.max(0.0)
    }
}

/// One chosen index.
#[derive(Clone, Debug, PartialEq)]
pub struct Chosen {
    /// Its elements.
    pub elements: Vec<Element>,
    /// The statements it serves that no index chosen before serves, by
    /// queryid, ascending.
    pub serves: Vec<i64>,
    /// Their read saving, planner cost per second.
    pub read_saving_per_second: f64,
    /// Its write cost, planner cost per second.
    pub write_cost_per_second: f64,
    /// The cost figures of the statement with the most total time it
    /// serves (hypopg), for the suggestion's `costBefore`/`costAfter`.
    pub costs: Option<(f64, f64)>,
}

/// For each option, the statements of shorter options whose elements are a
/// prefix of its own: `(option, statement)` pairs, each to be confirmed
/// (with hypopg, by planning the statement with the option's hypothetical
/// index) before [`Choice::serve`] counts it. A B-tree on `(a, b)` serves
/// a lookup on `a` exactly as one on `(a)` does.
pub fn claims(options: &BTreeMap<Vec<Element>, Choice>) -> Vec<(Vec<Element>, i64)> {
    let mut out = Vec::new();
    for (longer, option) in options {
        for (shorter, other) in options {
            if shorter.len() < longer.len() && longer.starts_with(shorter) {
                for queryid in other.serves.keys() {
                    if !option.serves.contains_key(queryid) {
                        out.push((longer.clone(), *queryid));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The smallest set of `options` with the most net benefit, greedily: the
/// largest read saving per second of the statements not yet served minus
/// the write cost, while that is above zero. `statements` gives each
/// queryid's calls per second (a statement missing there saves nothing).
pub fn select(
    options: &BTreeMap<Vec<Element>, Choice>,
    statements: &BTreeMap<i64, StatementFigures>,
    writes: &TableWrites,
) -> Vec<Chosen> {
    let mut chosen: Vec<Chosen> = Vec::new();
    let mut served: BTreeSet<i64> = BTreeSet::new();
    let mut hot_lost = false;
    let mut left: Vec<&Choice> = options.values().collect();
    while !left.is_empty() {
        let mut best: Option<(usize, f64, f64, f64)> = None;
        for (i, option) in left.iter().enumerate() {
            let read: f64 = option
                .serves
                .iter()
                .filter(|(queryid, _)| !served.contains(queryid))
                .map(|(queryid, saving)| {
                    statements
                        .get(queryid)
                        .map_or(0.0, |s| s.calls_per_second * saving.per_call.max(0.0))
                })
                .sum();
            let write = writes.cost(&option.elements, chosen.len(), hot_lost);
            let net = read - write;
            // Options come in element order: a strictly larger net wins,
            // an equal one goes to the fewer elements.
            let better = match best {
                None => true,
                Some((j, best_net, _, _)) => {
                    net > best_net
                        || (net == best_net && option.elements.len() < left[j].elements.len())
                }
            };
            if better {
                best = Some((i, net, read, write));
            }
        }
        let Some((i, net, read, write)) = best else {
            break;
        };
        if net <= 0.0 || read <= 0.0 {
            break;
        }
        let option = left.remove(i);
        let serves: Vec<i64> = option
            .serves
            .keys()
            .filter(|queryid| !served.contains(queryid))
            .copied()
            .collect();
        let costs = serves
            .iter()
            .filter_map(|queryid| {
                let costs = option.serves.get(queryid)?.costs?;
                let total = statements.get(queryid).map_or(0.0, |s| s.total_ms);
                Some((total, *queryid, costs))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, _, costs)| costs);
        hot_lost |= writes.updated(&option.elements);
        served.extend(serves.iter().copied());
        chosen.push(Chosen {
            elements: option.elements.clone(),
            serves,
            read_saving_per_second: read,
            write_cost_per_second: write,
            costs,
        });
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Element {
        Element::Column(name.into())
    }

    fn figures(queryid: i64, calls_per_second: f64) -> (i64, StatementFigures) {
        (
            queryid,
            StatementFigures {
                queryid,
                calls_per_second,
                total_ms: calls_per_second * 10.0,
            },
        )
    }

    fn saving(per_call: f64) -> Saving {
        Saving {
            per_call,
            costs: Some((per_call + 10.0, 10.0)),
        }
    }

    /// The options the advisor would build from candidates given in
    /// `order`, with every claim confirmed at `claimed` per call.
    fn options_from(
        candidates: &[(Vec<Element>, i64, f64)],
        claimed: f64,
    ) -> BTreeMap<Vec<Element>, Choice> {
        let mut options: BTreeMap<Vec<Element>, Choice> = BTreeMap::new();
        for (elements, queryid, per_call) in candidates {
            options
                .entry(elements.clone())
                .or_insert_with(|| Choice {
                    elements: elements.clone(),
                    serves: BTreeMap::new(),
                })
                .serve(*queryid, saving(*per_call));
        }
        for (longer, queryid) in claims(&options) {
            if let Some(option) = options.get_mut(&longer) {
                option.serve(queryid, saving(claimed));
            }
        }
        options
    }

    fn workload() -> Vec<(Vec<Element>, i64, f64)> {
        vec![
            (vec![col("a")], 1, 900.0),
            (vec![col("a"), col("b")], 2, 950.0),
            (vec![col("a"), col("b")], 3, 990.0),
            (vec![col("c")], 4, 500.0),
            (vec![col("d"), col("e")], 5, 300.0),
            (vec![col("d")], 6, 300.0),
        ]
    }

    fn statements() -> BTreeMap<i64, StatementFigures> {
        [
            figures(1, 5.0),
            figures(2, 5.0),
            figures(3, 1.0),
            figures(4, 2.0),
            figures(5, 2.0),
            figures(6, 2.0),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn one_composite_serves_the_statements_of_its_prefixes() {
        let options = options_from(&workload(), 880.0);
        let chosen = select(&options, &statements(), &TableWrites::default());
        let sets: Vec<(Vec<Element>, Vec<i64>)> = chosen
            .iter()
            .map(|c| (c.elements.clone(), c.serves.clone()))
            .collect();
        assert_eq!(
            sets,
            vec![
                (vec![col("a"), col("b")], vec![1, 2, 3]),
                (vec![col("d"), col("e")], vec![5, 6]),
                (vec![col("c")], vec![4]),
            ]
        );
        // 5 × 880 + 5 × 950 + 1 × 990 per second, no writes.
        assert!((chosen[0].read_saving_per_second - 10_140.0).abs() < 1e-9);
        assert_eq!(chosen[0].write_cost_per_second, 0.0);
        // The cost figures of the statement with the most total time (1
        // and 2 tie: the smaller queryid), as its claim was planned.
        assert_eq!(chosen[0].costs, Some((890.0, 10.0)));
    }

    #[test]
    fn a_claim_not_confirmed_leaves_the_shorter_index() {
        let mut options = options_from(&workload(), 880.0);
        // hypopg said (a, b) does not serve statement 1.
        if let Some(option) = options.get_mut(&vec![col("a"), col("b")]) {
            option.serves.remove(&1);
        }
        let chosen = select(&options, &statements(), &TableWrites::default());
        assert!(chosen.iter().any(|c| c.elements == vec![col("a")]));
    }

    #[test]
    fn writes_that_lose_hot_updates_drop_the_index_on_the_updated_column() {
        let options = options_from(&workload(), 880.0);
        let quiet = select(&options, &statements(), &TableWrites::default());
        let busy = TableWrites {
            updates: 400.0,
            hot_updates: 390.0,
            indexes: 1,
            updated_columns: ["c".to_owned()].into(),
            ..TableWrites::default()
        };
        let chosen = select(&options, &statements(), &busy);
        assert!(quiet.iter().any(|c| c.elements == vec![col("c")]));
        assert!(chosen.iter().all(|c| c.elements != vec![col("c")]));
        assert!(chosen.len() < quiet.len());
        // The others pay only their own entries of the non-HOT updates.
        assert!(chosen.iter().all(|c| c.write_cost_per_second == 40.0));
        // Inserts alone, heavy enough, leave nothing.
        let flood = TableWrites {
            inserts: 1e6,
            ..TableWrites::default()
        };
        assert!(select(&options, &statements(), &flood).is_empty());
    }

    #[test]
    fn the_order_of_the_statements_changes_nothing() {
        let expected = select(
            &options_from(&workload(), 880.0),
            &statements(),
            &TableWrites::default(),
        );
        let mut candidates = workload();
        // Every rotation and its reverse: 12 orders of 6 statements.
        for turn in 0..candidates.len() {
            candidates.rotate_left(1);
            for reversed in [false, true] {
                let mut order = candidates.clone();
                if reversed {
                    order.reverse();
                }
                let statements: BTreeMap<i64, StatementFigures> =
                    statements().into_iter().rev().collect();
                let got = select(
                    &options_from(&order, 880.0),
                    &statements,
                    &TableWrites::default(),
                );
                assert_eq!(got, expected, "turn {turn}, reversed {reversed}");
            }
        }
        // Equal benefits: the fewer elements, then the smaller, win.
        let tie = options_from(
            &[(vec![col("y")], 1, 100.0), (vec![col("x")], 2, 100.0)],
            0.0,
        );
        let figures: BTreeMap<i64, StatementFigures> =
            [figures(1, 1.0), figures(2, 1.0)].into_iter().collect();
        let order: Vec<Vec<Element>> = select(&tie, &figures, &TableWrites::default())
            .into_iter()
            .map(|c| c.elements)
            .collect();
        assert_eq!(order, vec![vec![col("x")], vec![col("y")]]);
    }
}
