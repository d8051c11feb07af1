//! The file's layout and its migrations. The schema version is SQLite's
//! `user_version`; each migration runs in its own transaction and bumps it,
//! so an interrupted upgrade resumes where it stopped. A file written by a
//! newer perfscope (a higher version) is refused rather than guessed at.
//!
//! Points are `WITHOUT ROWID` tables keyed by (tier, series, time): a
//! series (a statement of a database, a route, a relation) is named once
//! in `series` and referenced by its integer id, so a point costs a few
//! varint-encoded integers.

use rusqlite::Connection;

use super::StoreError;

/// The version this build writes.
pub const VERSION: i64 = 3;

/// Migration `n` takes the file from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the first layout.
    "
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    -- kind: 'statement' (key: queryid), 'route' (database '', key:
    -- 'METHOD template'), 'table', 'index', 'database'.
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        database TEXT NOT NULL,
        key TEXT NOT NULL,
        text TEXT,
        UNIQUE (kind, database, key)
    );

    -- tier 0: one row per reader pass; 1: 5-minute sums; 2: hourly sums.
    CREATE TABLE statement_points (
        tier INTEGER NOT NULL,
        series INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        calls INTEGER NOT NULL,
        total_us INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        shared_hit INTEGER NOT NULL,
        shared_read INTEGER NOT NULL,
        temp_written INTEGER NOT NULL,
        io_us INTEGER NOT NULL,
        PRIMARY KEY (tier, series, ts)
    ) WITHOUT ROWID;
    CREATE INDEX statement_points_by_time ON statement_points (tier, ts);

    -- The request-duration histogram's bounds, once per distinct set.
    CREATE TABLE bounds (
        id INTEGER PRIMARY KEY,
        upper TEXT NOT NULL UNIQUE
    );

    -- tier 0: one row per minute; 1: 5 minutes; 2: hourly. buckets: the
    -- interval's count per bucket as varints.
    CREATE TABLE route_points (
        tier INTEGER NOT NULL,
        series INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        bounds INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        sum_us INTEGER NOT NULL,
        buckets BLOB NOT NULL,
        PRIMARY KEY (tier, series, ts)
    ) WITHOUT ROWID;
    CREATE INDEX route_points_by_time ON route_points (tier, ts);

    -- The last size of each relation on each day (day: Unix day number).
    CREATE TABLE sizes (
        series INTEGER NOT NULL,
        day INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (series, day)
    ) WITHOUT ROWID;
    CREATE INDEX sizes_by_day ON sizes (day);

    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        database TEXT,
        label TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX events_by_time ON events (ts);

    CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        severity TEXT NOT NULL,
        summary TEXT NOT NULL,
        opened INTEGER NOT NULL,
        closed INTEGER
    );
    CREATE INDEX findings_by_key ON findings (key, closed);
    CREATE INDEX findings_by_time ON findings (opened);
    ",
    // 1 → 2: the runtime's minutes (the overview's runtime cards past the
    // hour). A row sums `minutes` minutes: the means are kept as sums
    // (divided by `minutes` when read), the maxima as maxima, so a rollup
    // is a plain sum and max and a step's mean weighs each minute once.
    // tier 0: one row per minute; 1: 5 minutes; 2: hourly.
    "
    CREATE TABLE runtime_points (
        tier INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        minutes INTEGER NOT NULL,
        lag_us_sum INTEGER NOT NULL,
        lag_max_us INTEGER NOT NULL,
        busy_ppm_sum INTEGER NOT NULL,
        resident_sum INTEGER NOT NULL,
        resident_max INTEGER NOT NULL,
        PRIMARY KEY (tier, ts)
    ) WITHOUT ROWID;
    ",
    // 2 → 3: the active session history's minutes. A key (database, wait
    // class and event, statement, role, application, route) is a series of
    // kind 'ash' (its statement's text kept once there); a point counts the
    // samples that saw it, a tick row the samples taken of the database,
    // so a rollup is a plain sum and a range's AAS is points / ticks.
    // tier 0: one row per minute; 1: 5 minutes; 2: hourly.
    "
    CREATE TABLE IF NOT EXISTS ash_ticks (
        tier INTEGER NOT NULL,
        database TEXT NOT NULL,
        ts INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        PRIMARY KEY (tier, database, ts)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ash_ticks_by_time ON ash_ticks (tier, ts);
    CREATE TABLE IF NOT EXISTS ash_points (
        tier INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        series INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        PRIMARY KEY (tier, ts, series)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ash_points_by_series ON ash_points (series);
    ",
];

/// The file's schema version.
pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the file to [`VERSION`], or refuses a newer one.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = version(conn)?;
    if found > VERSION {
        return Err(StoreError::Newer {
            found,
            known: VERSION,
        });
    }
    let start = usize::try_from(found).unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_reach_the_version_once() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("migrate");
        assert_eq!(version(&conn).expect("version"), VERSION);
        assert_eq!(MIGRATIONS.len() as i64, VERSION);
        // Again: nothing to do, nothing fails.
        migrate(&mut conn).expect("migrate again");
    }

    #[test]
    fn a_file_at_version_1_migrates_and_keeps_its_data() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("the first layout");
        conn.pragma_update(None, "user_version", 1).expect("set");
        conn.execute_batch(
            "INSERT INTO series (id, kind, database, key, text) VALUES (7, 'statement', 'shop', '42', 'SELECT 1');
             INSERT INTO statement_points VALUES (0, 7, 1000, 3, 1500, 3, 9, 1, 0, 0);
             INSERT INTO events (ts, kind, label) VALUES (1000, 'deploy', 'v1');",
        )
        .expect("rows of version 1");

        migrate(&mut conn).expect("migrate");

        assert_eq!(version(&conn).expect("version"), VERSION);
        let kept: (i64, String, String) = conn
            .query_row(
                "SELECT p.calls, s.text, e.label FROM statement_points p
                 JOIN series s ON s.id = p.series, events e",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .expect("the old rows");
        assert_eq!(kept, (3, "SELECT 1".to_owned(), "v1".to_owned()));
        conn.execute(
            "INSERT INTO runtime_points VALUES (0, 1060, 1, 250, 900, 400000, 1048576, 2097152)",
            [],
        )
        .expect("the new table takes a minute");
        conn.execute_batch(
            "INSERT INTO ash_ticks VALUES (0, 'shop', 1020, 60);
             INSERT INTO ash_points VALUES (0, 1020, 7, 42);",
        )
        .expect("version 3's tables take an ASH minute");
    }

    #[test]
    fn a_newer_file_is_refused() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "user_version", VERSION + 1)
            .expect("set");
        let error = migrate(&mut conn).expect_err("newer");
        assert!(
            matches!(error, StoreError::Newer { found, known } if found == VERSION + 1 && known == VERSION)
        );
        assert!(error.to_string().contains("newer"), "{error}");
    }
}
