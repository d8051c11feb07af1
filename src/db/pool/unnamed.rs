//! Statements without named prepared statements, for a pool with its
//! statement cache off ([`PoolSettings::statement_cache`]): behind a
//! transaction pooler (PgBouncer in `pool_mode = transaction`, RDS Proxy)
//! each transaction, and each statement outside one, may run on another
//! server connection.
//!
//! The driver's usual path does not survive that: a SQL text is prepared
//! as a *named* statement (`s0`, `s1`, … counted per process) in one
//! round trip, bound and executed in a second, closed in a third, each
//! ended by its own Sync, so the pooler may hand each to another backend
//! ("prepared statement "s3" does not exist"), and a name left on a
//! backend by one app process collides with the same name from another
//! ("prepared statement "s3" already exists"). A statement cached on the
//! connection (`prepare_cached`) lives on one backend only.
//!
//! Here a SQL text goes as the *unnamed* statement, Parse, Bind, Describe,
//! Execute and Sync in one message batch (tokio-postgres' `query_typed`):
//! one round trip, one backend, nothing left on the server. That needs the
//! parameters' types up front, and the server's are not known without a
//! round trip of their own, so each is the type of the Rust value
//! ([`types`]): `i32` int4, `i64` int8, `String` and `&str` text, `f64`
//! float8, `bool`, `Vec<u8>` bytea, `serde_json::Value` jsonb, arrays of
//! those, … The server casts where a column differs (an int8 compared with
//! an int4 key still uses its index). A value of a type outside the list
//! (a custom enum, hstore) leaves the statement on the driver's usual path,
//! which behind a transaction pooler is safe inside a transaction only.
//!
//! Kept out of the clients' macro so the choice (which statements, which
//! types) is one function with its tests.

use tokio_postgres::RowStream;
use tokio_postgres::types::{ToSql, Type, WrongType};

#[cfg(doc)]
use super::settings::PoolSettings;
use super::shared::Shared;
use super::timing::TimedSql;

/// The types a parameter is tried against, in order: the first its Rust
/// value accepts is sent. Scalars before arrays; within a family the
/// widest or most common first (`String` accepts text, varchar, bpchar and
/// name: text; `serde_json::Value` json and jsonb: jsonb).
const CANDIDATES: &[Type] = &[
    Type::BOOL,
    Type::INT2,
    Type::INT4,
    Type::INT8,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::NUMERIC,
    Type::TEXT,
    Type::BYTEA,
    Type::JSONB,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMP,
    Type::DATE,
    Type::TIME,
    Type::INET,
    Type::OID,
    Type::CHAR,
    Type::BOOL_ARRAY,
    Type::INT2_ARRAY,
    Type::INT4_ARRAY,
    Type::INT8_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::FLOAT8_ARRAY,
    Type::NUMERIC_ARRAY,
    Type::TEXT_ARRAY,
    Type::BYTEA_ARRAY,
    Type::JSONB_ARRAY,
    Type::UUID_ARRAY,
    Type::TIMESTAMPTZ_ARRAY,
    Type::TIMESTAMP_ARRAY,
    Type::DATE_ARRAY,
];

/// A parameter with the type it is sent as.
pub(super) type Typed<'a> = (&'a (dyn ToSql + Sync), Type);

/// The type `value` is sent as: the first of [`CANDIDATES`] it accepts.
/// (Only the accepted type encodes the value; an encoding error other than
/// a wrong type still names that type, and the call reports the error.)
fn type_of(value: &(dyn ToSql + Sync)) -> Option<Type> {
    let mut buf = bytes::BytesMut::new();
    CANDIDATES.iter().find_map(|candidate| {
        buf.clear();
        match value.to_sql_checked(candidate, &mut buf) {
            Err(error) if error.is::<WrongType>() => None,
            _ => Some(candidate.clone()),
        }
    })
}

/// Every parameter's type, or `None` when one has none of [`CANDIDATES`].
pub(super) fn types<'a>(params: &[&'a (dyn ToSql + Sync)]) -> Option<Vec<Typed<'a>>> {
    params
        .iter()
        .map(|value| type_of(*value).map(|ty| (*value, ty)))
        .collect()
}

/// The parameters with their types when this call goes as the unnamed
/// statement: the pool's statement cache is off, the statement is a SQL
/// text (a [`super::TimedStatement`] was prepared by the caller) and every
/// value's type is known.
pub(super) fn typed<'a, S: TimedSql + ?Sized>(
    shared: &Shared,
    sql: &S,
    params: &[&'a (dyn ToSql + Sync)],
) -> Option<Vec<Typed<'a>>> {
    if shared.statement_cache || sql.prepared().is_some() {
        return None;
    }
    types(params)
}

/// The rows a `query_typed_raw` affected (its `execute`), once read to
/// the end.
pub(super) async fn rows_affected(
    stream: impl std::future::Future<Output = Result<RowStream, tokio_postgres::Error>>,
) -> Result<u64, tokio_postgres::Error> {
    use futures_util::TryStreamExt;
    let stream = stream.await?;
    futures_util::pin_mut!(stream);
    while stream.try_next().await?.is_some() {}
    Ok(stream.rows_affected().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent_as(value: &(dyn ToSql + Sync)) -> Option<Type> {
        type_of(value)
    }

    #[test]
    fn each_rust_value_is_sent_as_its_own_type() {
        assert_eq!(sent_as(&1_i32), Some(Type::INT4));
        assert_eq!(sent_as(&1_i64), Some(Type::INT8));
        assert_eq!(sent_as(&1_i16), Some(Type::INT2));
        assert_eq!(sent_as(&1.5_f64), Some(Type::FLOAT8));
        assert_eq!(sent_as(&true), Some(Type::BOOL));
        assert_eq!(sent_as(&"a"), Some(Type::TEXT));
        assert_eq!(sent_as(&String::from("a")), Some(Type::TEXT));
        assert_eq!(sent_as(&vec![1_u8]), Some(Type::BYTEA));
        assert_eq!(sent_as(&serde_json::json!({})), Some(Type::JSONB));
        assert_eq!(sent_as(&vec![1_i32, 2]), Some(Type::INT4_ARRAY));
        assert_eq!(sent_as(&vec!["a"]), Some(Type::TEXT_ARRAY));
        assert_eq!(
            sent_as(&std::time::SystemTime::now()),
            Some(Type::TIMESTAMPTZ)
        );
        assert_eq!(sent_as(&1_u32), Some(Type::OID));
    }

    #[test]
    fn a_null_has_its_values_type() {
        assert_eq!(sent_as(&None::<i64>), Some(Type::INT8));
        assert_eq!(sent_as(&None::<String>), Some(Type::TEXT));
    }

    #[test]
    fn a_value_of_an_unlisted_type_leaves_the_statement_on_the_usual_path() {
        let hstore: std::collections::HashMap<String, Option<String>> = Default::default();
        assert_eq!(sent_as(&hstore), None);
        let params: [&(dyn ToSql + Sync); 2] = [&1_i32, &hstore];
        assert!(types(&params).is_none());
        let params: [&(dyn ToSql + Sync); 2] = [&1_i32, &"a"];
        let typed = types(&params).expect("both known");
        assert_eq!(typed[0].1, Type::INT4);
        assert_eq!(typed[1].1, Type::TEXT);
    }
}
