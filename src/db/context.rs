//! The per-request database context: a task-local the HTTP middleware
//! opens around each request and the timed pool records into, so that a
//! request's statements can be attributed to its route (known only when the
//! response comes back), counted by fingerprint for N+1 detection, and
//! summed into per-route database time.
//!
//! Nothing is allocated for a request that runs no query. Queries run on
//! other tasks (`tokio::spawn` inside a handler) are outside the request's
//! task and are not attributed.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::slow_log::SlowQuery;
use super::statement::StatementInfo;

/// Distinct statements tracked per request; past it, new ones are only
/// counted in the totals.
pub const MAX_STATEMENTS_PER_REQUEST: usize = 256;

tokio::task_local! {
    static REQUEST: RequestScope;
}

#[derive(Default)]
struct RequestScope {
    db: RefCell<Option<Box<RequestDb>>>,
}

/// What one request did with the database.
#[derive(Debug, Default)]
pub struct RequestDb {
    /// Each distinct statement and how often it ran.
    pub statements: Vec<StatementCount>,
    /// Statements run.
    pub queries: u64,
    /// Time spent in them.
    pub db_time: Duration,
    /// Its slow-log entries, to receive the route.
    pub slow: Vec<Arc<SlowQuery>>,
}

/// One statement's count within a request.
#[derive(Debug)]
pub struct StatementCount {
    /// The statement.
    pub statement: Arc<StatementInfo>,
    /// Executions in this request.
    pub count: u32,
}

/// Records one statement execution into the current request, if any.
pub fn record(statement: &Arc<StatementInfo>, elapsed: Duration, slow: Option<&Arc<SlowQuery>>) {
    let _ = REQUEST.try_with(|scope| {
        let mut db = scope.db.borrow_mut();
        let db = db.get_or_insert_with(Box::default);
        db.queries += 1;
        db.db_time += elapsed;
        if let Some(entry) = db
            .statements
            .iter_mut()
            .find(|s| s.statement.fingerprint == statement.fingerprint)
        {
            entry.count += 1;
        } else if db.statements.len() < MAX_STATEMENTS_PER_REQUEST {
            db.statements.push(StatementCount {
                statement: statement.clone(),
                count: 1,
            });
        }
        if let Some(slow) = slow {
            db.slow.push(slow.clone());
        }
    });
}

/// Runs `future` inside a fresh request context and returns what it did
/// with the database (`None` when it ran no query).
pub async fn scope<F: Future>(future: F) -> (F::Output, Option<Box<RequestDb>>) {
    let scoped = REQUEST.scope(RequestScope::default(), future);
    let mut scoped = std::pin::pin!(scoped);
    let output = scoped.as_mut().await;
    let db = scoped
        .as_mut()
        .take_value()
        .and_then(|scope| scope.db.into_inner());
    (output, db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::statement::analyze;

    #[tokio::test]
    async fn counts_statements_per_request() {
        let a = Arc::new(analyze("select * from t where id = 1"));
        let b = Arc::new(analyze("select * from u"));
        let ((), db) = scope(async {
            for _ in 0..3 {
                record(&a, Duration::from_millis(2), None);
            }
            record(&b, Duration::from_millis(5), None);
        })
        .await;
        let db = db.expect("queries ran");
        assert_eq!(db.queries, 4);
        assert_eq!(db.db_time, Duration::from_millis(11));
        assert_eq!(db.statements.len(), 2);
        assert_eq!(db.statements[0].count, 3);
    }

    #[tokio::test]
    async fn nothing_outside_or_without_queries() {
        record(&Arc::new(analyze("select 1")), Duration::ZERO, None);
        let ((), db) = scope(async {}).await;
        assert!(db.is_none());
    }
}
