//! The report of one statement around a new index, as the API, the page
//! and the metric show it: the figures, the verdict and a sentence saying
//! it, with names only for the admin ([`IndexImpact::redacted`]).

use super::verdict::MIN_CALLS_AFTER;

/// How a statement fared after a new index.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct IndexImpact {
    /// The watched database.
    pub database: String,
    /// `schema.index` (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub index: Option<String>,
    /// `schema.table` (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub table: Option<String>,
    /// The index's definition, as the server gives it (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub definition: Option<String>,
    /// The normalized statement judged (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub statement: Option<String>,
    /// Its queryid.
    pub queryid: String,
    /// Whether the statement is one perfscope suggested this index for
    /// (otherwise: a top statement comparing the index's leading column).
    pub suggested: bool,
    /// The index enforces uniqueness or a constraint: kept for that
    /// whatever its effect on speed.
    pub enforces: bool,
    /// Seconds since the agent first saw the index.
    pub age_seconds: f64,
    /// Calls before the index (since pg_stat_statements' last reset).
    pub before_calls: u64,
    /// Mean time per call before, ms.
    pub before_mean_ms: f64,
    /// Shared blocks touched (hit or read) per call before.
    pub before_blocks_per_call: f64,
    /// Rows per call before.
    pub before_rows_per_call: f64,
    /// Calls since the index was seen (its first read after).
    pub after_calls: u64,
    /// Mean time per call since, ms (once there is a call).
    #[oai(skip_serializing_if_is_none)]
    pub after_mean_ms: Option<f64>,
    /// Shared blocks touched per call since.
    #[oai(skip_serializing_if_is_none)]
    pub after_blocks_per_call: Option<f64>,
    /// Rows per call since.
    #[oai(skip_serializing_if_is_none)]
    pub after_rows_per_call: Option<f64>,
    /// `beforeMeanMs / afterMeanMs`.
    #[oai(skip_serializing_if_is_none)]
    pub speedup: Option<f64>,
    /// `helped` (1.5× faster or more, fewer blocks per call), `no_effect`,
    /// `worse` (1.5× slower or more, more blocks per call) or `pending`
    /// (under 20 calls since the index).
    pub verdict: String,
    /// The verdict in a sentence (names only with the admin token).
    pub message: String,
}

/// A duration in ms, with the digits that matter.
fn ms(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0} ms"),
        v if v >= 1.0 => format!("{v:.1} ms"),
        v => format!("{v:.2} ms"),
    }
}

/// At most this many characters of a statement in a message.
const MESSAGE_STATEMENT_CHARS: usize = 80;

impl IndexImpact {
    /// A copy without index, table, definition and statement, for callers
    /// without the admin token.
    pub fn redacted(&self) -> Self {
        let mut copy = Self {
            index: None,
            table: None,
            definition: None,
            statement: None,
            ..self.clone()
        };
        copy.message = copy.describe();
        copy
    }

    /// "index X on T cut statement Y from 52 ms to 0.9 ms (58×)", with the
    /// names this copy has.
    pub(super) fn describe(&self) -> String {
        let index = match (&self.index, &self.table) {
            (Some(index), Some(table)) => format!("index {index} on {table}"),
            _ => "a new index".to_owned(),
        };
        let statement = match &self.statement {
            Some(text) if text.chars().count() > MESSAGE_STATEMENT_CHARS => {
                let cut: String = text.chars().take(MESSAGE_STATEMENT_CHARS).collect();
                format!("`{cut}…`")
            }
            Some(text) => format!("`{text}`"),
            None => format!("statement {}", self.queryid),
        };
        let before = ms(self.before_mean_ms);
        let after = self.after_mean_ms.map_or_else(String::new, ms);
        let speedup = self.speedup.unwrap_or(1.0);
        match self.verdict.as_str() {
            "helped" => format!("{index} cut {statement} from {before} to {after} ({speedup:.1}×)"),
            "worse" => format!(
                "{index} made {statement} slower: {before} to {after} ({:.1}× slower)",
                1.0 / speedup.max(f64::MIN_POSITIVE)
            ),
            "no_effect" => format!(
                "{index} did not change {statement}: {:.0} to {:.0} blocks per call, {before} to {after}; {}",
                self.before_blocks_per_call,
                self.after_blocks_per_call.unwrap_or_default(),
                if self.enforces {
                    "it enforces uniqueness or a constraint, so it stays for that"
                } else {
                    "if no other statement needs it, it may be dropped"
                }
            ),
            _ => format!(
                "{index}: waiting for {MIN_CALLS_AFTER} calls of {statement} since it appeared ({} so far; {before} before)",
                self.after_calls
            ),
        }
    }
}
