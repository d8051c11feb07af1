//! Bulk inserts with `COPY … FROM STDIN BINARY` (tokio-postgres'
//! `BinaryCopyInWriter`): the "createMany" case, an order of magnitude
//! faster than row-by-row INSERTs (see BENCHMARKS.md). The statement is
//! written from identifiers that are validated and quoted, never from
//! interpolated text; the column types come from the catalog by preparing
//! (not running) a `SELECT` of the same columns.
//!
//! `copy_in` is a method of the four clients ([`TimedClient`],
//! [`TimedTransaction`], [`NamedClient`], [`NamedTransaction`]) but is
//! written here, in `impl` blocks of its own: this module depends on the
//! pool (its error, its shared state, the `timed` core) and the pool
//! depends on nothing here.

use std::borrow::Cow;
use std::pin::pin;

use tokio_postgres::GenericClient;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;

use super::pool::{
    DbError, NamedClient, NamedTransaction, Shared, TimedClient, TimedTransaction, timed,
};

/// Longest identifier Postgres keeps (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// `name` quoted as an identifier, or why it cannot be one.
pub fn quoted_identifier(name: &str) -> Result<String, DbError> {
    if name.is_empty() || name.len() > MAX_IDENTIFIER || name.contains('\0') {
        return Err(DbError::Invalid(format!(
            "{name:?} is not an identifier (1 to {MAX_IDENTIFIER} bytes, no NUL)"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// `table` or `schema.table`, each part quoted.
pub fn quoted_table(table: &str) -> Result<String, DbError> {
    match table.split_once('.') {
        Some((schema, name)) => Ok(format!(
            "{}.{}",
            quoted_identifier(schema)?,
            quoted_identifier(name)?
        )),
        None => quoted_identifier(table),
    }
}

/// The quoted, comma-separated column list.
pub fn quoted_columns(columns: &[&str]) -> Result<String, DbError> {
    if columns.is_empty() {
        return Err(DbError::Invalid("no columns given".into()));
    }
    Ok(columns
        .iter()
        .map(|c| quoted_identifier(c))
        .collect::<Result<Vec<_>, _>>()?
        .join(", "))
}

async fn copy_in<'r, C, R>(
    driver: &C,
    shared: &Shared,
    operation: Option<&Cow<'static, str>>,
    table: &str,
    columns: &[&str],
    rows: Vec<R>,
) -> Result<u64, DbError>
where
    C: GenericClient + Sync,
    R: AsRef<[&'r (dyn ToSql + Sync)]> + Send + Sync,
{
    let target = quoted_table(table)?;
    let list = quoted_columns(columns)?;
    let probe = driver
        .prepare(&format!("SELECT {list} FROM {target} LIMIT 0"))
        .await?;
    let types: Vec<_> = probe.columns().iter().map(|c| c.type_().clone()).collect();
    let sql = format!("COPY {target} ({list}) FROM STDIN BINARY");
    let cached = shared.statement(&sql);
    let width = columns.len();
    let copy = async {
        let sink = driver.client().copy_in(sql.as_str()).await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for row in rows {
            let row = row.as_ref();
            if row.len() != width {
                // Dropping the writer before `finish` aborts the COPY: no
                // partial insert.
                return Ok(Err(DbError::Invalid(format!(
                    "a row has {} values for {width} columns",
                    row.len()
                ))));
            }
            writer.as_mut().write(row).await?;
        }
        writer.finish().await.map(Ok)
    };
    timed(shared, &cached, operation, copy).await?
}

/// Adds `copy_in` to a client-like type of the pool whose `parts()` gives
/// a tokio-postgres client or transaction, the shared state and the
/// `operation` label.
macro_rules! copy_method {
    ($client:ty) => {
        impl $client {
            /// Bulk-inserts `rows` (each one value per column, in `columns`
            /// order) into `table` with `COPY … FROM STDIN BINARY`, timed as
            /// one statement; returns the rows written. `table` (`name` or
            /// `schema.name`) and `columns` are quoted as identifiers, and
            /// their types come from the catalog.
            ///
            /// The rows are gathered (as references) before the future
            /// starts, so an iterator with a closure does not become part of a
            /// future that must be `Send`.
            pub fn copy_in<'s, 'r, R, Rows>(
                &'s self,
                table: &'s str,
                columns: &'s [&'s str],
                rows: Rows,
            ) -> impl std::future::Future<Output = Result<u64, DbError>> + Send + use<'s, 'r, R, Rows>
            where
                R: AsRef<[&'r (dyn ToSql + Sync)]> + Send + Sync,
                Rows: IntoIterator<Item = R>,
            {
                let rows: Vec<R> = rows.into_iter().collect();
                let (driver, shared, op) = self.parts();
                copy_in(driver, shared, op, table, columns, rows)
            }
        }
    };
}

copy_method!(TimedClient);
copy_method!(TimedTransaction<'_>);
copy_method!(NamedClient<'_>);
copy_method!(NamedTransaction<'_>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated_and_quoted() {
        assert_eq!(quoted_table("orders").ok(), Some("\"orders\"".into()));
        assert_eq!(
            quoted_table("shop.orders").ok(),
            Some("\"shop\".\"orders\"".into())
        );
        assert_eq!(
            quoted_identifier("we\"ird; DROP TABLE x").ok(),
            Some("\"we\"\"ird; DROP TABLE x\"".into())
        );
        assert!(quoted_identifier("").is_err());
        assert!(quoted_identifier(&"x".repeat(64)).is_err());
        assert!(quoted_columns(&[]).is_err());
    }
}
