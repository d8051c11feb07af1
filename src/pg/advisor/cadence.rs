//! When the advisor runs: on every runner pass until one had statements
//! to consider, then on every [`ADVISOR_EVERY`]th.
//!
//! Why not every fourth pass from the start: statements usually appear
//! after the agent (it starts with the application), and at the default
//! 15 s interval a fixed every-fourth cadence left a cold start 62 s
//! without advice. Running on every pass while there is nothing to plan
//! costs one catalog query a pass; once statements exist, the first advice
//! comes within one read interval, and the planning cost drops back to
//! one pass in four.

use std::sync::atomic::Ordering;

use super::{ADVISOR_EVERY, IndexAdvisor};

impl IndexAdvisor {
    /// Runner passes between two of the advisor's: 1 until a pass had
    /// statements to consider, then [`ADVISOR_EVERY`].
    pub fn every(&self) -> u64 {
        if self.warm.load(Ordering::Relaxed) {
            ADVISOR_EVERY
        } else {
            1
        }
    }
}

impl crate::pg::Reader for IndexAdvisor {
    fn name(&self) -> &'static str {
        "index_advisor"
    }

    fn every(&self) -> u64 {
        IndexAdvisor::every(self)
    }

    fn read<'a>(
        &'a self,
        tx: &'a crate::db::TimedTransaction<'a>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), crate::pg::ReadError>> + Send + 'a>> {
        Box::pin(self.pass(tx))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::pg::readers::statements::StatementsReader;

    #[test]
    fn every_pass_until_warm_then_every_fourth() {
        let advisor = IndexAdvisor::new(
            Arc::from("db"),
            Arc::new(StatementsReader::default()),
            None,
            Duration::from_secs(10),
        );
        assert_eq!(advisor.every(), 1);
        advisor.warm.store(true, Ordering::Relaxed);
        assert_eq!(advisor.every(), ADVISOR_EVERY);
    }
}
