//! The sqlcommenter comment the pool appends to a statement
//! ([`PoolSettings::sql_comments`], `PERFSCOPE_SQL_COMMENTS`): the route
//! template of the current request, the `traceparent` of the current span
//! when the request is traced, and the pool's `application_name`, as
//! [`crate::db::sqlcomment::render`] writes them (keys sorted, values
//! URL-encoded, so no value can close the comment).
//!
//! Which calls get one: none with `Off`, on a budgeted pool (the agent's
//! own) or on one marked beside the app (an `Integration`'s readers);
//! with `Sampled`, those run inside a sampled trace; with `All`, those run
//! inside a request or a sampled trace. Never one outside both (a
//! background job of the app, the agent's readers), and never a text that
//! already ends with a comment (the caller wrote its own).
//!
//! A commented text differs per request (the `traceparent`), so it must not
//! become a prepared statement kept on the connection or the pool's
//! statement cache: both would grow without bound. The clients run it as
//! the unnamed statement (`unnamed`: Parse, Bind, Execute in one round
//! trip, nothing left on the server), typed from the caller's prepared
//! statement or else from the Rust values; everything perfscope records
//! (fingerprint, normalized text, the slow log, N+1 counts, metrics,
//! spans) is keyed by the text without the comment, the one the caller
//! wrote.

use tokio_postgres::types::ToSql;

#[cfg(doc)]
use super::settings::PoolSettings;
use super::shared::{CachedStatement, Shared};
use super::timing::TimedSql;
use super::unnamed::{self, Typed};
use crate::config::SqlComments;
use crate::db::context;
use crate::db::sqlcomment::{self, Written};

/// The text to send instead of `cached`'s, with its comment, when this
/// call is to carry one.
pub(super) fn commented(shared: &Shared, cached: &CachedStatement) -> Option<String> {
    let mode = shared.sql_comments;
    if mode == SqlComments::Off || shared.beside_app.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let (route, traceparent) = match mode {
        SqlComments::Off => return None,
        SqlComments::Sampled => {
            let traceparent = crate::telemetry::current_traceparent()?;
            (context::current_route().flatten(), Some(traceparent))
        }
        SqlComments::All => {
            let route = context::current_route();
            let traceparent = crate::telemetry::current_traceparent();
            if route.is_none() && traceparent.is_none() {
                return None;
            }
            (route.flatten(), traceparent)
        }
    };
    if ends_with_comment(&cached.text) {
        return None;
    }
    let comment = sqlcomment::render(&Written {
        route: route.as_deref(),
        traceparent: traceparent.as_deref(),
        application: shared.application.as_deref(),
    });
    Some(sqlcomment::append(&cached.text, &comment))
}

/// Whether `sql` already ends with a comment: a block comment, or a line
/// comment on its last line (a comment appended there would be inside it).
fn ends_with_comment(sql: &str) -> bool {
    let body = sql.trim_end().trim_end_matches(';').trim_end();
    body.ends_with("*/")
        || body
            .rsplit('\n')
            .next()
            .is_some_and(|line| line.contains("--"))
}

/// The parameters with the types the commented text is sent with: the
/// caller's prepared statement's, else each Rust value's (see
/// `unnamed`); `None` when a value's type is not known, and the
/// commented text then goes the driver's usual way (prepared under a
/// one-off name, then closed: nothing is left behind either).
pub(super) fn typed<'a, S: TimedSql + ?Sized>(
    sql: &S,
    params: &[&'a (dyn ToSql + Sync)],
) -> Option<Vec<Typed<'a>>> {
    match sql.prepared() {
        Some(statement) if statement.params().len() == params.len() => Some(
            params
                .iter()
                .zip(statement.params())
                .map(|(value, ty)| (*value, ty.clone()))
                .collect(),
        ),
        Some(_) => None,
        None => unnamed::types(params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_own_comment_is_left_alone() {
        for sql in [
            "SELECT 1 /*route='/x'*/",
            "SELECT 1 /* mine */;",
            "SELECT 1 -- mine",
            "SELECT a\nFROM t -- mine\n",
        ] {
            assert!(ends_with_comment(sql), "{sql:?}");
        }
        for sql in [
            "SELECT 1",
            "SELECT /* hint */ 1;",
            "SELECT 1 -- note\nFROM t",
        ] {
            assert!(!ends_with_comment(sql), "{sql:?}");
        }
    }
}
