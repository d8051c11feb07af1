//! What the timed pool tells the span exporters about a query, in the
//! database semantic conventions: begun as `db.sql.query` with the
//! normalized text (never a literal value) and `db.system`, ended named
//! `VERB table` with the operation, text, table and, for a failure, the
//! SQLSTATE. Kept apart from the pool so the pool only times and records,
//! and the span's shape is read in one place.

use crate::trace::{Attribute, SpanDetails, SpanKind, SpanStart};

use super::statement::StatementInfo;

/// The span of a query as it begins.
pub(super) fn start(info: &StatementInfo) -> SpanStart<'_> {
    SpanStart {
        kind: SpanKind::Query,
        description: &info.normalized,
        db_system: Some("postgresql"),
    }
}

/// The name and attributes of a finished query's span (built only when
/// an exporter records it).
pub(super) fn details(info: &StatementInfo, error: Option<&tokio_postgres::Error>) -> SpanDetails {
    let verb = info.verb.keyword();
    let table = (&*info.model != "unknown").then_some(&*info.model);
    let name = match table {
        Some(table) => format!("{verb} {table}"),
        None => verb.to_owned(),
    };
    let mut attributes = vec![
        Attribute::new("db.operation.name", verb),
        Attribute::new("db.query.text", info.normalized.to_string()),
    ];
    if let Some(table) = table {
        attributes.push(Attribute::new("db.collection.name", table.to_owned()));
    }
    match error.map(|e| e.code()) {
        Some(Some(code)) => {
            attributes.push(Attribute::new(
                "db.response.status_code",
                code.code().to_owned(),
            ));
            attributes.push(Attribute::new("error.type", code.code().to_owned()));
        }
        Some(None) => attributes.push(Attribute::new("error.type", "connection")),
        None => {}
    }
    SpanDetails { name, attributes }
}
