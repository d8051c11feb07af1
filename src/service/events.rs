//! Deploy markers and other events of the history store, as the API
//! posts and lists them (issue 19, "Deploys compared"): a release the
//! recorder did not see (a host app's own deploy, a config change, a
//! migration) is marked by hand with a label, and the compare view
//! ([`super::compare`]) splits its windows at one.
//!
//! The label is an admin's free text: it is checked here once (1 to
//! [`MAX_LABEL_CHARS`] printable characters, not only blanks)
//! so every front end refuses the same labels with the same words, and it
//! is never logged (its length is).

use crate::store::{Event, EventKind, EventRow, MAX_LABEL_BYTES, Store, StoreError, Write, read};

/// The longest label accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// Events listed when no limit is asked.
pub const DEFAULT_LIMIT: usize = 100;
/// Most events one listing returns.
pub const MAX_LIMIT: usize = read::MAX_ROWS;
/// How far in the future a posted event may be dated, seconds (clocks
/// drift; a deploy planned for next week is not an event yet).
pub const MAX_AHEAD: i64 = 86_400;

/// Why an events use case did not answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A field or parameter is out of range; the message names it.
    #[error("{0}")]
    BadRequest(String),
    /// No history store runs (`PERFSCOPE_DATA_DIR` is off, or this is a
    /// host app without one).
    #[error("the history store is off; set PERFSCOPE_DATA_DIR")]
    NoStore,
    /// The store is opening, unavailable or busy.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// An event to post.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Its label (a release, a change's name).
    pub label: String,
    /// [`EventKind::Deploy`] or [`EventKind::Marker`].
    pub kind: EventKind,
    /// When, Unix seconds (now when `None`).
    pub at: Option<i64>,
}

/// Any accepted label fits the store's byte cap whole, so the schema's
/// character count is the only length rule a client has to know.
const _: () = assert!(MAX_LABEL_CHARS * 4 <= MAX_LABEL_BYTES);

/// Checks a label: 1 to [`MAX_LABEL_CHARS`] characters, none of them a
/// control character, not only blanks (the rules the API's schema states
/// as a pattern).
pub fn check_label(label: &str) -> Result<(), HistoryError> {
    let bad = |why: &str| Err(HistoryError::BadRequest(format!("field `label`: {why}")));
    let chars = label.chars().count();
    if label.trim().is_empty() {
        bad("expected 1 to 200 printable characters, got none")
    } else if chars > MAX_LABEL_CHARS {
        bad(&format!(
            "expected at most {MAX_LABEL_CHARS} characters, got {chars}"
        ))
    } else if label.chars().any(char::is_control) {
        bad("control characters are not allowed")
    } else {
        Ok(())
    }
}

/// Records `event` and answers it as stored (with its id), once written.
pub async fn post(store: Option<&Store>, event: NewEvent) -> Result<EventRow, HistoryError> {
    let store = store.ok_or(HistoryError::NoStore)?;
    check_label(&event.label)?;
    if !matches!(event.kind, EventKind::Deploy | EventKind::Marker) {
        return Err(HistoryError::BadRequest(
            "field `kind`: expected deploy or marker".into(),
        ));
    }
    let now = store.now();
    let at = event.at.unwrap_or(now);
    if !(0..=now.saturating_add(MAX_AHEAD)).contains(&at) {
        return Err(HistoryError::BadRequest(format!(
            "field `at`: expected Unix seconds from 0 to a day from now ({now})"
        )));
    }
    if let crate::store::StoreState::Unavailable(why) = store.state() {
        return Err(StoreError::Unavailable(why).into());
    }
    store.record(Write::Event(Event {
        at,
        kind: event.kind,
        database: None,
        label: event.label.clone(),
        detail: None,
    }));
    store.flush().await;
    let label = event.label;
    let kind = event.kind;
    // The newest row of that second, kind and label is the one just
    // written (the writer is the only one and has flushed it).
    let stored = store
        .read(move |conn| {
            Ok(read::events(conn, at, at.saturating_add(1), MAX_LIMIT)?
                .into_iter()
                .find(|row| row.kind == kind && row.label == label))
        })
        .await?;
    let Some(stored) = stored else {
        // Dropped (a full queue, or the store failed while writing): the
        // store counted it.
        return Err(StoreError::Unavailable("the event was not written".into()).into());
    };
    tracing::info!(
        id = stored.id,
        kind = kind.as_str(),
        at,
        label_chars = stored.label.chars().count(),
        "event posted"
    );
    Ok(stored)
}

/// Events in `[since, until)` (defaults: everything up to now), newest
/// first, at most `limit` (default [`DEFAULT_LIMIT`], at most
/// [`MAX_LIMIT`]).
pub async fn list(
    store: Option<&Store>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<usize>,
) -> Result<Vec<EventRow>, HistoryError> {
    let store = store.ok_or(HistoryError::NoStore)?;
    let since = since.unwrap_or(0);
    let until = until.unwrap_or(i64::MAX);
    if since >= until {
        return Ok(Vec::new());
    }
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(HistoryError::BadRequest(format!(
            "parameter `limit`: expected 1 to {MAX_LIMIT}"
        )));
    }
    Ok(store
        .read(move |conn| read::events(conn, since, until, limit))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_by_characters_and_bytes() {
        assert!(check_label("v1.2.3").is_ok());
        assert!(check_label(&"é".repeat(200)).is_ok());
        assert!(check_label(&"😀".repeat(200)).is_ok());
        assert!(check_label(&"x".repeat(200)).is_ok());
        for bad in [
            String::new(),
            "   ".into(),
            "x".repeat(201),
            "é".repeat(201),
            "\u{a0}\u{3000}".into(),
            "v1\u{85}".into(),
            "v1\nDROP".into(),
            "tab\there".into(),
        ] {
            let Err(HistoryError::BadRequest(message)) = check_label(&bad) else {
                panic!("{bad:?} was accepted");
            };
            assert!(message.starts_with("field `label`"), "{message}");
        }
    }
}
