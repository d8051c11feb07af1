//! N+1 suspects: a route whose requests run the same statement many times
//! (default ≥ 10) — the classic loop issuing one query per item where one
//! query for all would do. Kept per (route, statement), bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::statement::StatementInfo;

/// Executions of one statement in one request that make an N+1 suspect.
pub const DEFAULT_N_PLUS_ONE_THRESHOLD: u32 = 10;
/// (route, statement) pairs kept.
pub const MAX_SUSPECTS: usize = 200;

/// One suspect.
#[derive(Clone, Debug)]
pub struct Suspect {
    /// The route template.
    pub route: Arc<str>,
    /// The statement repeated.
    pub statement: Arc<StatementInfo>,
    /// Requests in which it ran at least the threshold's number of times.
    pub requests: u64,
    /// The most executions seen in one request.
    pub max_per_request: u32,
    /// When it was last seen.
    pub last_seen: SystemTime,
}

/// The suspects seen so far.
#[derive(Debug)]
pub struct NPlusOne {
    threshold: u32,
    suspects: Mutex<HashMap<(Arc<str>, u64), Suspect>>,
}

impl Default for NPlusOne {
    fn default() -> Self {
        Self::new(DEFAULT_N_PLUS_ONE_THRESHOLD)
    }
}

impl NPlusOne {
    /// Suspects from `threshold` executions per request.
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(2),
            suspects: Mutex::default(),
        }
    }

    /// The threshold.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Records that one request to `route` ran `statement` `count` times;
    /// returns whether that made it a suspect.
    pub fn observe(&self, route: &Arc<str>, statement: &Arc<StatementInfo>, count: u32) -> bool {
        if count < self.threshold {
            return false;
        }
        let mut suspects = self.suspects.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (route.clone(), statement.fingerprint);
        if let Some(suspect) = suspects.get_mut(&key) {
            suspect.requests += 1;
            suspect.max_per_request = suspect.max_per_request.max(count);
            suspect.last_seen = SystemTime::now();
        } else if suspects.len() < MAX_SUSPECTS {
            suspects.insert(
                key,
                Suspect {
                    route: route.clone(),
                    statement: statement.clone(),
                    requests: 1,
                    max_per_request: count,
                    last_seen: SystemTime::now(),
                },
            );
        }
        true
    }

    /// Every suspect, most requests first.
    pub fn suspects(&self) -> Vec<Suspect> {
        let mut list: Vec<Suspect> = self
            .suspects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        list.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then(b.max_per_request.cmp(&a.max_per_request))
        });
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::statement::parse;

    #[test]
    fn only_repeated_statements_are_suspects() {
        let n = NPlusOne::new(10);
        let route: Arc<str> = "/orders".into();
        let stmt = Arc::new(parse("select * from items where order_id = $1"));
        assert!(!n.observe(&route, &stmt, 9));
        assert!(n.suspects().is_empty());
        assert!(n.observe(&route, &stmt, 12));
        assert!(n.observe(&route, &stmt, 30));
        let suspects = n.suspects();
        assert_eq!(suspects.len(), 1);
        assert_eq!(suspects[0].requests, 2);
        assert_eq!(suspects[0].max_per_request, 30);
    }
}
