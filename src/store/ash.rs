//! The active session history's minutes in the store: written by the
//! writer (one [`AshMinute`], bounded first), read back a range at a time
//! as plain [`AshMinute`]s, one per step.
//!
//! A key (wait class and event, statement, role, application, route) of a
//! database is a series of kind `ash`, its statement text kept once in
//! `series.text`; its points count the samples that saw it. The samples
//! taken of each database are `ash_ticks`, so a range's average active
//! sessions is its points over its ticks, however coarse the tier.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{Connection, Transaction, params};

use super::records::{AshCount, AshMinute, MAX_LABEL_BYTES, MAX_TEXT_BYTES, cut};

/// The series kind of an ASH key.
pub(super) const KIND: &str = "ash";
/// Separates a key's fields (replaced inside a field, so a name holding
/// it cannot forge another key).
const SEP: char = '\u{1f}';
/// The most rows one range read returns (steps × keys).
pub const MAX_READ_ROWS: usize = 200_000;

/// A count's series key: its fields, each cut and cleaned of [`SEP`].
pub(super) fn key(count: &AshCount) -> String {
    let field = |text: &str| cut(text, MAX_LABEL_BYTES / 4).replace(SEP, "\u{fffd}");
    let optional = |text: &Option<Arc<str>>| match text {
        Some(text) => format!("+{}", field(text)),
        None => String::new(),
    };
    [
        field(&count.class),
        optional(&count.event),
        format!("{:016x}", count.fingerprint),
        count.query_id.map(|id| id.to_string()).unwrap_or_default(),
        field(&count.role),
        field(&count.application),
        optional(&count.route),
    ]
    .join(&SEP.to_string())
}

/// A count of the key `key` (as [`key`] wrote it), `text` its statement.
fn count_of(database: &str, key: &str, text: Option<String>, samples: i64) -> Option<AshCount> {
    let fields: Vec<&str> = key.split(SEP).collect();
    let [
        class,
        event,
        fingerprint,
        query_id,
        role,
        application,
        route,
    ] = fields[..]
    else {
        return None;
    };
    let optional = |text: &str| text.strip_prefix('+').map(Arc::from);
    Some(AshCount {
        database: Arc::from(database),
        class: Arc::from(class),
        event: optional(event),
        fingerprint: u64::from_str_radix(fingerprint, 16).ok()?,
        query_id: query_id.parse().ok(),
        text: Arc::from(text.unwrap_or_default().as_str()),
        role: Arc::from(role),
        application: Arc::from(application),
        route: optional(route),
        samples: u32::try_from(samples).unwrap_or(u32::MAX),
    })
}

/// Adds a minute's ticks and counts (already bounded) into tier 0, the
/// series of its keys made on first sight by `series`.
pub(super) fn write(
    tx: &Transaction<'_>,
    minute: &AshMinute,
    mut series: impl FnMut(&Transaction<'_>, &Arc<str>, String, &str) -> Result<i64, rusqlite::Error>,
) -> Result<(), rusqlite::Error> {
    for (database, samples) in &minute.ticks {
        tx.prepare_cached(
            "INSERT INTO ash_ticks (tier, database, ts, samples) VALUES (0, ?1, ?2, ?3)
             ON CONFLICT (tier, database, ts) DO UPDATE SET samples = samples + excluded.samples",
        )?
        .execute(params![cut(database, MAX_LABEL_BYTES), minute.at, samples])?;
    }
    for count in &minute.counts {
        let id = series(
            tx,
            &count.database,
            key(count),
            cut(&count.text, MAX_TEXT_BYTES),
        )?;
        tx.prepare_cached(
            "INSERT INTO ash_points (tier, ts, series, samples) VALUES (0, ?1, ?2, ?3)
             ON CONFLICT (tier, ts, series) DO UPDATE SET samples = samples + excluded.samples",
        )?
        .execute(params![minute.at, id, count.samples])?;
    }
    Ok(())
}

/// The history of `database` (every one when `None`) from `from` to `to`
/// (Unix seconds), one [`AshMinute`] per `step` seconds that has samples,
/// oldest first, at most [`MAX_READ_ROWS`] keys in all.
pub fn read(
    conn: &Connection,
    from: i64,
    to: i64,
    step: i64,
    database: Option<&str>,
) -> rusqlite::Result<Vec<AshMinute>> {
    let step = step.max(60);
    let mut minutes: BTreeMap<i64, AshMinute> = BTreeMap::new();
    let mut ticks = conn.prepare_cached(
        "SELECT ts - ts % ?1 AS bucket, database, sum(samples) FROM ash_ticks
         WHERE tier IN (0, 1, 2) AND ts >= ?2 AND ts < ?3 AND (?4 IS NULL OR database = ?4)
         GROUP BY bucket, database",
    )?;
    let rows = ticks.query_map(params![step, from, to, database], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (at, database, samples) = row?;
        minutes
            .entry(at)
            .or_insert_with(|| AshMinute {
                at,
                ..AshMinute::default()
            })
            .ticks
            .push((
                Arc::from(database.as_str()),
                u32::try_from(samples).unwrap_or(u32::MAX),
            ));
    }
    let mut points = conn.prepare_cached(
        "SELECT p.ts - p.ts % ?1 AS bucket, s.database, s.key, s.text, sum(p.samples)
         FROM ash_points p JOIN series s ON s.id = p.series
         WHERE p.tier IN (0, 1, 2) AND p.ts >= ?2 AND p.ts < ?3
           AND s.kind = 'ash' AND (?4 IS NULL OR s.database = ?4)
         GROUP BY bucket, p.series
         LIMIT ?5",
    )?;
    let rows = points.query_map(
        params![step, from, to, database, MAX_READ_ROWS as i64],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, i64>(4)?,
            ))
        },
    )?;
    for row in rows {
        let (at, database, key, text, samples) = row?;
        if let (Some(minute), Some(count)) = (
            minutes.get_mut(&at),
            count_of(&database, &key, text, samples),
        ) {
            minute.counts.push(count);
        }
    }
    Ok(minutes.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_as_written_and_a_separator_cannot_forge_one() {
        let count = AshCount {
            database: Arc::from("shop"),
            class: Arc::from("Lock"),
            event: Some(Arc::from("transactionid")),
            fingerprint: 0xdead_beef,
            query_id: Some(-42),
            text: Arc::from("update t set v = $1"),
            role: Arc::from("app"),
            application: Arc::from("orders\u{1f}api"),
            route: None,
            samples: 7,
        };
        let key = key(&count);
        let back = count_of("shop", &key, Some("update t set v = $1".into()), 7).expect("reads");
        assert_eq!(back.event, count.event);
        assert_eq!(back.fingerprint, count.fingerprint);
        assert_eq!(back.query_id, count.query_id);
        assert_eq!(back.route, None);
        assert_eq!(&*back.application, "orders\u{fffd}api");
        assert_eq!(back.samples, 7);
    }
}
