//! Findings as the history store keeps them: each current finding as a
//! stable key, a severity and a summary, and what to write so the store's
//! open findings become the current ones (new or changed ones opened, gone
//! ones closed). Read back from the store each time, so a restart neither
//! reopens nor forgets one.
//!
//! A threshold finding has no subject field, so its key is its kind and a
//! hash of its public message with the digits left out: the same finding
//! keeps its key while its counts move. Only public (non-admin) messages
//! are stored: they name no table, index or statement.

use super::{Recommendation, Severity};
use crate::store::{FindingChange, FindingRow};

/// Findings written per check, at most.
pub const MAX_RECORDED: usize = 200;

/// One finding as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Stable key: kind and subject.
    pub key: String,
    /// `low`, `medium` or `high`.
    pub severity: &'static str,
    /// One line, without object names.
    pub summary: String,
}

/// A severity's stored name.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
    }
}

/// FNV-1a: stable across builds, unlike the standard library's hasher.
fn fnv(text: impl Iterator<Item = u8>) -> u64 {
    text.fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Recorded {
    /// A threshold finding, from its public form (`admin` false).
    pub fn of(finding: &Recommendation) -> Self {
        let shape = fnv(finding.message.bytes().filter(|b| !b.is_ascii_digit()));
        Self {
            key: format!("{}:{shape:016x}", finding.kind),
            severity: severity_name(finding.severity),
            summary: finding.message.clone(),
        }
    }
}

/// What to write at `at` so the store's `open` findings become `current`.
pub fn changes(open: &[FindingRow], current: &[Recorded], at: i64) -> Vec<FindingChange> {
    let mut changes = Vec::new();
    for finding in current.iter().take(MAX_RECORDED) {
        let same = open.iter().any(|row| {
            row.key == finding.key
                && row.severity == finding.severity
                && row.summary == finding.summary
        });
        if !same {
            changes.push(FindingChange {
                at,
                key: finding.key.clone(),
                severity: finding.severity.to_owned(),
                summary: finding.summary.clone(),
                open: true,
            });
        }
    }
    for row in open {
        if !current.iter().any(|finding| finding.key == row.key) {
            changes.push(FindingChange {
                at,
                key: row.key.clone(),
                severity: row.severity.clone(),
                summary: row.summary.clone(),
                open: false,
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Kind;

    fn finding(message: &str) -> Recommendation {
        Recommendation {
            kind: Kind::VacuumOverdue.into(),
            severity: Severity::Medium,
            message: message.into(),
            value: 1.0,
            threshold: 1.0,
            objects: None,
        }
    }

    fn row(recorded: &Recorded) -> FindingRow {
        FindingRow {
            key: recorded.key.clone(),
            severity: recorded.severity.into(),
            summary: recorded.summary.clone(),
            opened: 1,
            closed: None,
        }
    }

    #[test]
    fn a_finding_keeps_its_key_while_its_counts_move_and_closes_when_gone() {
        let three = Recorded::of(&finding("3 table(s) with more dead tuples"));
        let four = Recorded::of(&finding("4 table(s) with more dead tuples"));
        let other = Recorded::of(&finding("2 sequence(s) past 75%"));
        assert_eq!(three.key, four.key);
        assert_ne!(three.key, other.key);
        assert!(three.key.starts_with("vacuum_overdue:"));

        let opened = changes(&[], std::slice::from_ref(&three), 10);
        assert_eq!(opened.len(), 1);
        assert!(opened[0].open);
        // Unchanged: nothing to write; its count moved: its row is updated.
        assert!(changes(&[row(&three)], std::slice::from_ref(&three), 20).is_empty());
        let moved = changes(&[row(&three)], std::slice::from_ref(&four), 30);
        assert_eq!(moved.len(), 1);
        assert_eq!(
            (moved[0].open, moved[0].key.as_str()),
            (true, three.key.as_str())
        );
        // Gone: closed; a new one opens.
        let closed = changes(&[row(&four)], std::slice::from_ref(&other), 40);
        assert_eq!(closed.len(), 2);
        assert!(closed.iter().any(|c| c.open && c.key == other.key));
        assert!(
            closed
                .iter()
                .any(|c| !c.open && c.key == four.key && c.at == 40)
        );
    }
}
