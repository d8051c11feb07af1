//! How far back the store's history goes: a page asked for a week says
//! so when the store holds a day. A read like those of [`super::read`],
//! kept beside them.

use rusqlite::Connection;

/// The oldest statement or route point's time, Unix seconds (`None` on
/// an empty store). Each arm is one step of a `(tier, ts)` index: SQLite's
/// min() shortcut needs an equality on the tier, which `IN` is not.
pub fn oldest(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT min(ts) FROM (
             SELECT (SELECT min(ts) FROM statement_points WHERE tier = 0) AS ts
             UNION ALL SELECT (SELECT min(ts) FROM statement_points WHERE tier = 1)
             UNION ALL SELECT (SELECT min(ts) FROM statement_points WHERE tier = 2)
             UNION ALL SELECT (SELECT min(ts) FROM route_points WHERE tier = 0)
             UNION ALL SELECT (SELECT min(ts) FROM route_points WHERE tier = 1)
             UNION ALL SELECT (SELECT min(ts) FROM route_points WHERE tier = 2))",
    )?
    .query_row([], |row| row.get(0))
}
