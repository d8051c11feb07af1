//! Keyset ("cursor") pagination over the timed pool: each page is
//! `WHERE (k1, k2) > ($1, $2) ORDER BY k1, k2 LIMIT n`, so page 1,000
//! costs what page 1 does (an index range scan from the cursor), where
//! `OFFSET` reads and throws away every earlier row.
//!
//! [`Keyset::pages`] yields a `Stream` of pages; it holds one page and the
//! cursor (the last row's key values, kept as the server sent them, in
//! binary, and sent back as they came), and takes a pooled connection per
//! page rather than holding one. Before the first page it checks, in the
//! catalog, that the key orders rows uniquely — a valid, non-partial
//! unique index whose columns are all in the key and `NOT NULL` — and
//! refuses a key that does not, since a tie at a page boundary would skip
//! or repeat rows.

use std::sync::Arc;

use futures_core::Stream;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::copy::{quoted_identifier, quoted_table};
use super::pool::{DbError, TimedPool};

const UNIQUE_KEY: &str = include_str!("../../sql/queries/keyset_unique.sql");

/// A keyset query: the table, its key, what to select and an optional
/// filter. Built once, paged with [`Keyset::pages`].
#[derive(Clone)]
pub struct Keyset {
    table: String,
    key: Vec<String>,
    select: Vec<String>,
    filter: Option<(&'static str, Vec<Arc<dyn ToSql + Send + Sync>>)>,
    page_size: i64,
    descending: bool,
}

impl std::fmt::Debug for Keyset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyset")
            .field("table", &self.table)
            .field("key", &self.key)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl Keyset {
    /// Pages of `table` (`name` or `schema.name`) ordered by `key` (one or
    /// more columns), 100 rows a page, every column selected.
    pub fn new(table: &str, key: &[&str]) -> Self {
        Self {
            table: table.to_owned(),
            key: key.iter().map(|k| (*k).to_owned()).collect(),
            select: Vec::new(),
            filter: None,
            page_size: 100,
            descending: false,
        }
    }

    /// Selects these columns (the key columns are added if missing).
    pub fn select(mut self, columns: &[&str]) -> Self {
        self.select = columns.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Rows per page (1 to 10,000).
    pub fn page_size(mut self, rows: u32) -> Self {
        self.page_size = i64::from(rows.clamp(1, 10_000));
        self
    }

    /// Newest (largest key) first.
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    /// Only rows matching `condition`, a constant SQL fragment of the
    /// application's (never request input) using `$1`, `$2`… for `params`,
    /// e.g. `("user_id = $1", vec![Arc::new(42)])`.
    pub fn filter(
        mut self,
        condition: &'static str,
        params: Vec<Arc<dyn ToSql + Send + Sync>>,
    ) -> Self {
        self.filter = Some((condition, params));
        self
    }

    /// The pages, in key order, through `pool`. The first item is an
    /// error if the key does not order rows uniquely or names a missing
    /// table or column.
    pub fn pages(self, pool: &TimedPool) -> impl Stream<Item = Result<Vec<Row>, DbError>> + use<> {
        let state = State {
            pool: pool.clone(),
            keyset: self,
            plan: None,
            cursor: None,
            done: false,
        };
        futures_util::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            let page = state.next_page().await;
            match &page {
                // No more rows: the stream ends rather than yield an
                // empty page.
                Ok(rows) if rows.is_empty() => return None,
                Ok(_) => {}
                Err(_) => state.done = true,
            }
            Some((page, state))
        })
    }
}

/// The statements of a checked keyset.
struct Plan {
    first: String,
    next: String,
    /// Where each key column sits in the selected row.
    key_positions: Vec<usize>,
}

struct State {
    pool: TimedPool,
    keyset: Keyset,
    plan: Option<Plan>,
    cursor: Option<Vec<RawValue>>,
    done: bool,
}

impl State {
    async fn next_page(&mut self) -> Result<Vec<Row>, DbError> {
        let client = self.pool.get().await?;
        if self.plan.is_none() {
            self.plan = Some(plan(&client, &self.keyset).await?);
        }
        let Some(plan) = &self.plan else {
            unreachable!("planned above");
        };
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some((_, filter)) = &self.keyset.filter {
            params.extend(filter.iter().map(|p| &**p as &(dyn ToSql + Sync)));
        }
        // Prepared once per connection (tokio-postgres caches them).
        let rows = match &self.cursor {
            None => {
                let statement = client.prepare(&plan.first).await?;
                client.query(&statement, &params).await?
            }
            Some(cursor) => {
                params.extend(cursor.iter().map(|v| v as &(dyn ToSql + Sync)));
                let statement = client.prepare(&plan.next).await?;
                client.query(&statement, &params).await?
            }
        };
        if (rows.len() as i64) < self.keyset.page_size {
            self.done = true;
        }
        if let Some(last) = rows.last() {
            let cursor = plan
                .key_positions
                .iter()
                .map(|&i| last.try_get::<_, RawValue>(i))
                .collect::<Result<Vec<_>, _>>()?;
            self.cursor = Some(cursor);
        }
        if rows.is_empty() {
            self.done = true;
        }
        Ok(rows)
    }
}

/// Checks the key against the catalog and writes the two statements.
async fn plan(client: &super::pool::TimedClient, keyset: &Keyset) -> Result<Plan, DbError> {
    let table = quoted_table(&keyset.table)?;
    if keyset.key.is_empty() {
        return Err(DbError::Invalid(
            "a keyset needs at least one key column".into(),
        ));
    }
    let row = client.query_one(UNIQUE_KEY, &[&table, &keyset.key]).await?;
    let exists: bool = row.try_get(0)?;
    let missing: Vec<String> = row.try_get(1)?;
    let unique: bool = row.try_get(2)?;
    if !exists {
        return Err(DbError::Invalid(format!(
            "table {:?} does not exist",
            keyset.table
        )));
    }
    if !missing.is_empty() {
        return Err(DbError::Invalid(format!(
            "table {:?} has no column {}",
            keyset.table,
            missing.join(", ")
        )));
    }
    if !unique {
        return Err(DbError::Invalid(format!(
            "key ({}) does not order rows of {:?} uniquely: it needs the columns of a unique index (or primary key), all NOT NULL",
            keyset.key.join(", "),
            keyset.table
        )));
    }
    let select = &keyset.select;
    let mut key_positions = Vec::new();
    let star = select.is_empty();
    let mut list: Vec<String> = if star {
        vec!["*".into()]
    } else {
        select
            .iter()
            .map(|c| quoted_identifier(c))
            .collect::<Result<_, _>>()?
    };
    for key in &keyset.key {
        match (!star)
            .then(|| select.iter().position(|c| c == key))
            .flatten()
        {
            Some(i) => key_positions.push(i),
            None => {
                key_positions.push(usize::MAX);
                list.push(quoted_identifier(key)?);
            }
        }
    }
    // Positions of appended keys: after the selected columns (for `*`,
    // after every table column, which the first row tells).
    let keys: Vec<String> = keyset
        .key
        .iter()
        .map(|k| quoted_identifier(k))
        .collect::<Result<_, _>>()?;
    let direction = if keyset.descending { "DESC" } else { "ASC" };
    let order = keys
        .iter()
        .map(|k| format!("{k} {direction}"))
        .collect::<Vec<_>>()
        .join(", ");
    let filter_params = keyset.filter.as_ref().map_or(0, |(_, p)| p.len());
    let filter = keyset
        .filter
        .as_ref()
        .map(|(condition, _)| format!("({condition})"));
    let cursor_params: Vec<String> = (1..=keys.len())
        .map(|i| format!("${}", filter_params + i))
        .collect();
    let comparison = format!(
        "({}) {} ({})",
        keys.join(", "),
        if keyset.descending { "<" } else { ">" },
        cursor_params.join(", ")
    );
    let where_first = filter
        .clone()
        .map(|f| format!(" WHERE {f}"))
        .unwrap_or_default();
    let where_next = match &filter {
        Some(f) => format!(" WHERE {f} AND {comparison}"),
        None => format!(" WHERE {comparison}"),
    };
    let columns = list.join(", ");
    let limit = keyset.page_size;
    let first =
        format!("SELECT {columns} FROM {table}{where_first} ORDER BY {order} LIMIT {limit}");
    let next = format!("SELECT {columns} FROM {table}{where_next} ORDER BY {order} LIMIT {limit}");
    // Resolve appended positions from the statement's own columns.
    let described = client.prepare(&first).await?;
    let width = described.raw().columns().len();
    let appended = key_positions.iter().filter(|p| **p == usize::MAX).count();
    let mut next_appended = width - appended;
    for position in &mut key_positions {
        if *position == usize::MAX {
            *position = next_appended;
            next_appended += 1;
        }
    }
    Ok(Plan {
        first,
        next,
        key_positions,
    })
}

/// A column value exactly as the server sent it (binary), sent back as a
/// parameter of the same type: the cursor, whatever the key's types.
#[derive(Clone, Debug)]
struct RawValue {
    bytes: Vec<u8>,
    ty: Type,
}

impl<'a> FromSql<'a> for RawValue {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self {
            bytes: raw.to_vec(),
            ty: ty.clone(),
        })
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl ToSql for RawValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty != self.ty {
            return Err(format!("cursor value of type {} bound as {ty}", self.ty).into());
        }
        out.extend_from_slice(&self.bytes);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl TimedPool {
    /// The pages of `keyset` (see [`Keyset::pages`]).
    pub fn cursor_paginate(
        &self,
        keyset: Keyset,
    ) -> impl Stream<Item = Result<Vec<Row>, DbError>> + use<> {
        keyset.pages(self)
    }
}
