//! The per-request database context: a task-local the HTTP middleware
//! opens around each request and the timed pool records into, so that a
//! request's statements can be attributed to its route (known only when the
//! response comes back), counted by fingerprint for N+1 detection, and
//! summed into per-route database time.
//!
//! A front end that knows the route template before the request runs (the
//! tower layer: axum's `MatchedPath`, a gRPC method) opens the scope with
//! it ([`scope_routed`]), so the timed pool can write it into a
//! statement's sqlcommenter comment ([`current_route`]); Poem matches the route
//! inside the app's `Route`, after this scope opens, so there it is
//! unknown until the response.
//!
//! Nothing is allocated for a request that runs no query. Queries run on
//! other tasks (`tokio::spawn` inside a handler) are outside the request's
//! task and are not attributed.
//!
//! The context is a thread-local pointer set only while the request's
//! future is being polled (restored afterwards, even on panic), rather than
//! `tokio::task_local!`: it is on every request's path, and this costs two
//! `Cell` writes per poll where the task-local cost about 90 ns a request.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::slow_log::SlowQuery;
use super::statement::StatementInfo;

/// Distinct statements tracked per request; past it, new ones are only
/// counted in the totals.
pub const MAX_STATEMENTS_PER_REQUEST: usize = 256;

thread_local! {
    /// The scope of the request being polled on this thread, or null.
    static CURRENT: Cell<*const RequestScope> = const { Cell::new(std::ptr::null()) };
}

#[derive(Default)]
struct RequestScope {
    db: RefCell<Option<Box<RequestDb>>>,
    /// The route template, when known before the request runs.
    route: Option<Arc<str>>,
}

/// Restores the previous scope when a poll ends, panicking or not.
struct Restore(*const RequestScope);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.0));
    }
}

pin_project_lite::pin_project! {
    /// A future run inside a request scope; see [`scope`].
    pub struct Scoped<F> {
        scope: RequestScope,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = (F::Output, Option<Box<RequestDb>>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Only shared references to the scope exist from here on (this one
        // and those `record` makes from `CURRENT`); the `RefCell` inside
        // gives the mutation.
        let scope: &RequestScope = this.scope;
        let _restore = Restore(CURRENT.with(|current| current.replace(scope)));
        match this.future.poll(cx) {
            Poll::Ready(output) => Poll::Ready((output, scope.db.take())),
            Poll::Pending => Poll::Pending,
        }
    }
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
    let scope = CURRENT.with(Cell::get);
    if scope.is_null() {
        return;
    }
    // SAFETY: a non-null `CURRENT` points at the scope of the `Scoped`
    // future being polled on this thread right now (set and restored around
    // each poll), which is pinned and alive for the whole poll.
    let scope = unsafe { &*scope };
    {
        let Ok(mut db) = scope.db.try_borrow_mut() else {
            return;
        };
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
    }
}

/// Runs `future` inside a fresh request context; it resolves to the
/// future's output and what it did with the database (`None` when it ran no
/// query).
pub fn scope<F: Future>(future: F) -> Scoped<F> {
    scope_routed(future, None)
}

/// [`scope`] for a request whose route template is already known.
pub fn scope_routed<F: Future>(future: F, route: Option<Arc<str>>) -> Scoped<F> {
    Scoped {
        scope: RequestScope {
            db: RefCell::default(),
            route,
        },
        future,
    }
}

/// Where the statement being issued stands: outside any request (`None`),
/// or inside one, with its route template when the front end knew it
/// before the request ran.
pub fn current_route() -> Option<Option<Arc<str>>> {
    let scope = CURRENT.with(Cell::get);
    if scope.is_null() {
        return None;
    }
    // SAFETY: as in `record`: a non-null `CURRENT` is the scope of the
    // `Scoped` future being polled on this thread right now.
    let scope = unsafe { &*scope };
    Some(scope.route.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::statement::parse;

    #[tokio::test]
    async fn counts_statements_per_request() {
        let a = Arc::new(parse("select * from t where id = 1"));
        let b = Arc::new(parse("select * from u"));
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
    async fn the_route_is_known_inside_its_request_only() {
        assert_eq!(current_route(), None);
        let ((), _) = scope(async {
            assert_eq!(current_route(), Some(None));
        })
        .await;
        let ((), _) = scope_routed(
            async {
                tokio::task::yield_now().await;
                assert_eq!(current_route(), Some(Some(Arc::from("/users/:id"))));
            },
            Some(Arc::from("/users/:id")),
        )
        .await;
        assert_eq!(current_route(), None);
    }

    #[tokio::test]
    async fn nothing_outside_or_without_queries() {
        record(&Arc::new(parse("select 1")), Duration::ZERO, None);
        let ((), db) = scope(async {}).await;
        assert!(db.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scopes_nest_survive_yields_and_stay_apart() {
        let a = Arc::new(parse("select a from t"));
        let outer = scope(async {
            record(&a, Duration::from_millis(1), None);
            tokio::task::yield_now().await;
            let (_, inner) = scope(async {
                record(&a, Duration::from_millis(1), None);
            })
            .await;
            assert_eq!(inner.expect("inner ran one").queries, 1);
            tokio::task::yield_now().await;
            record(&a, Duration::from_millis(1), None);
        });
        let other = tokio::spawn(scope(async {
            tokio::task::yield_now().await;
        }));
        let ((), db) = outer.await;
        assert_eq!(db.expect("outer ran two").queries, 2);
        let ((), none) = other.await.expect("task");
        assert!(none.is_none());
        // Nothing is left set on this thread.
        assert!(CURRENT.with(Cell::get).is_null());
    }

    #[test]
    fn a_panicking_poll_restores_the_previous_scope() {
        let result = std::panic::catch_unwind(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            runtime.block_on(scope(async { panic!("boom") }))
        });
        assert!(result.is_err());
        assert!(CURRENT.with(Cell::get).is_null());
    }
}
