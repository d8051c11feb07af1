//! How far back the store's history goes: a page asked for a week says
//! so when the store holds a day. A read like those of [`super::read`],
//! kept beside them.

use rusqlite::Connection;

/// The oldest statement or route point's time, Unix seconds (`None` on
/// an empty store). Each side is one step of the `(tier, ts)` indexes.
pub fn oldest(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT min(ts) FROM (
             SELECT min(ts) AS ts FROM statement_points WHERE tier IN (0, 1, 2)
             UNION ALL
             SELECT min(ts) AS ts FROM route_points WHERE tier IN (0, 1, 2))",
    )?
    .query_row([], |row| row.get(0))
}
