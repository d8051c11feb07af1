//! sqlcommenter comments, both ways: [`render`] writes the trailing
//! `/*key='value',…*/` comment the timed pool may append to a statement
//! (`PERFSCOPE_SQL_COMMENTS`), and [`parse`] reads the one any app's
//! library wrote (sqlcommenter for Node, Python, Java, Go, Ruby, …), so
//! the activity view, the active session history and the slow-query list
//! can name the route behind a statement whatever language sent it.
//!
//! The format (<https://google.github.io/sqlcommenter/spec/>): one
//! comment at the end of the statement; `key='value'` pairs separated by
//! commas, keys sorted; keys and values URL-encoded, then a `'` in the
//! encoded value escaped as `\'`.
//!
//! Statement texts are untrusted, so the parser is bounded: it looks only
//! at the last comment of the text, at most [`MAX_COMMENT_BYTES`] of it,
//! keeps only the [`Tags`] it knows, each at most [`MAX_VALUE_CHARS`]
//! characters after decoding and without control characters, and takes a
//! `traceparent` only when it is a well-formed W3C one. Nothing here is a
//! metric label: whoever labels with a route caps the set of values.
//!
//! pg_stat_statements ignores comments when it computes a `queryid`, and
//! [`crate::db::statement`] drops them before it normalizes or
//! fingerprints a text, so a comment changes neither.

use std::fmt::Write as _;

/// The longest trailing comment read; a longer one is not sqlcommenter's.
pub const MAX_COMMENT_BYTES: usize = 2_048;
/// The most characters kept of a tag's value.
pub const MAX_VALUE_CHARS: usize = 128;

/// The sqlcommenter tags perfscope knows, as decoded from a comment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    /// `route`: the request's route template (`/users/:id`).
    pub route: Option<Box<str>>,
    /// `controller` (Rails, Django, …).
    pub controller: Option<Box<str>>,
    /// `action`.
    pub action: Option<Box<str>>,
    /// `framework` (`django:4.2`, `express:4.18.2`, `perfscope:…`).
    pub framework: Option<Box<str>>,
    /// `db_driver`.
    pub db_driver: Option<Box<str>>,
    /// `application`.
    pub application: Option<Box<str>>,
    /// The trace id of `traceparent`, 32 lower-case hex digits.
    pub trace_id: Option<Box<str>>,
}

impl Tags {
    /// Whether no known tag was found.
    pub fn is_empty(&self) -> bool {
        self.route.is_none()
            && self.controller.is_none()
            && self.action.is_none()
            && self.framework.is_none()
            && self.db_driver.is_none()
            && self.application.is_none()
            && self.trace_id.is_none()
    }

    /// What the tags say the statement was for: the route, else
    /// `controller#action`, else the controller or the action alone.
    pub fn endpoint(&self) -> Option<String> {
        if let Some(route) = &self.route {
            return Some(route.to_string());
        }
        match (&self.controller, &self.action) {
            (Some(c), Some(a)) => Some(format!("{c}#{a}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
            (None, None) => None,
        }
    }

    /// Bytes this holds on the heap (for byte-bounded stores).
    pub fn heap_bytes(&self) -> usize {
        [
            &self.route,
            &self.controller,
            &self.action,
            &self.framework,
            &self.db_driver,
            &self.application,
            &self.trace_id,
        ]
        .iter()
        .map(|v| v.as_ref().map_or(0, |s| s.len()))
        .sum()
    }
}

/// What the end of a statement's text holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comment {
    /// No trailing comment, or one with no tag perfscope knows.
    None,
    /// A sqlcommenter comment and the tags read from it.
    Tags(Tags),
    /// A comment that starts but never ends: the text was cut (at
    /// `track_activity_query_size` in `pg_stat_activity`) and its tags
    /// with it.
    Cut,
}

impl Comment {
    /// The tags, when there are any.
    pub fn tags(self) -> Option<Tags> {
        match self {
            Comment::Tags(tags) => Some(tags),
            Comment::None | Comment::Cut => None,
        }
    }
}

/// Reads the sqlcommenter comment at the end of `sql`, if any.
pub fn parse(sql: &str) -> Comment {
    let text = sql.trim_end_matches(|c: char| c.is_whitespace() || c == ';');
    if let Some(body) = text.strip_suffix("*/") {
        let Some(start) = body.rfind("/*") else {
            return Comment::None;
        };
        let inner = &body[start + 2..];
        if inner.len() > MAX_COMMENT_BYTES {
            return Comment::None;
        }
        let tags = read_pairs(inner);
        return if tags.is_empty() {
            Comment::None
        } else {
            Comment::Tags(tags)
        };
    }
    // A cut text: the last `/*` opens a comment that looks like
    // sqlcommenter's (`/*key='`) and never closes.
    match text.rfind("/*") {
        Some(start) if !text[start..].contains("*/") && looks_tagged(&text[start + 2..]) => {
            Comment::Cut
        }
        _ => Comment::None,
    }
}

/// Whether a comment's start reads `key='`.
fn looks_tagged(inner: &str) -> bool {
    let Some(eq) = inner.find('=') else {
        // Cut inside the first key: cannot tell, so only a known key's
        // prefix counts.
        let key = inner.trim();
        return !key.is_empty() && KNOWN.iter().any(|k| k.starts_with(key));
    };
    let key = &inner[..eq];
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%'))
        && inner[eq + 1..].starts_with('\'')
}

/// The keys read, as they are written.
const KNOWN: [&str; 7] = [
    "action",
    "application",
    "controller",
    "db_driver",
    "framework",
    "route",
    "traceparent",
];

/// Reads `key='value'` pairs; anything malformed ends the reading.
fn read_pairs(inner: &str) -> Tags {
    let mut tags = Tags::default();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = decode(rest[..eq].trim());
        let after = &rest[eq + 1..];
        let Some(quoted) = after.strip_prefix('\'') else {
            break;
        };
        let Some((raw, tail)) = closing_quote(quoted) else {
            break;
        };
        if let Some(key) = key {
            store(&mut tags, &key, raw);
        }
        rest = tail.trim_start();
        match rest.strip_prefix(',') {
            Some(next) => rest = next.trim_start(),
            None => break,
        }
    }
    tags
}

/// The quoted value up to its closing `'` (a `\'` is part of it), and
/// what follows.
fn closing_quote(quoted: &str) -> Option<(&str, &str)> {
    let bytes = quoted.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\'' => return Some((&quoted[..i], &quoted[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Keeps `raw`'s decoded value under the tag `key` names.
fn store(tags: &mut Tags, key: &str, raw: &str) {
    let Some(value) = decode(&raw.replace("\\'", "'")) else {
        return;
    };
    let slot = match key {
        "route" => &mut tags.route,
        "controller" => &mut tags.controller,
        "action" => &mut tags.action,
        "framework" => &mut tags.framework,
        "db_driver" => &mut tags.db_driver,
        "application" => &mut tags.application,
        "traceparent" => {
            tags.trace_id = trace_id(&value).map(Box::from);
            return;
        }
        _ => return,
    };
    let value = value.trim();
    if value.is_empty() || value.chars().any(char::is_control) {
        return;
    }
    *slot = Some(
        value
            .chars()
            .take(MAX_VALUE_CHARS)
            .collect::<String>()
            .into(),
    );
}

/// Percent-decodes `text` (`+` stays `+`), or `None` when it is not
/// UTF-8 once decoded or a `%` is not followed by two hex digits.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
/// when it is well formed and not all zeros.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0');
    ok.then_some(trace)
}

/// What the timed pool writes into its comment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Written<'a> {
    /// The request's route template.
    pub route: Option<&'a str>,
    /// The `traceparent` of the current span, when traced.
    pub traceparent: Option<&'a str>,
    /// The application's name.
    pub application: Option<&'a str>,
}

/// The sqlcommenter comment for `written`, keys sorted as the
/// specification asks, or an empty string when there is nothing to say.
pub fn render(written: &Written<'_>) -> String {
    let mut out = String::new();
    let pairs = [
        ("application", written.application),
        ("route", written.route),
        ("traceparent", written.traceparent),
    ];
    for (key, value) in pairs {
        let Some(value) = value else { continue };
        out.push_str(if out.is_empty() { "/*" } else { "," });
        out.push_str(key);
        out.push_str("='");
        encode_into(&mut out, value);
        out.push('\'');
    }
    if !out.is_empty() {
        out.push_str("*/");
    }
    out
}

/// `sql` with `comment` appended after a space (the comment goes last, as
/// the specification asks; a trailing `;` stays last).
pub fn append(sql: &str, comment: &str) -> String {
    if comment.is_empty() {
        return sql.to_owned();
    }
    let body = sql.trim_end();
    match body.strip_suffix(';') {
        Some(head) => format!("{} {comment};", head.trim_end()),
        None => format!("{body} {comment}"),
    }
}

/// Percent-encodes everything but unreserved characters (and `/` and `:`,
/// which sqlcommenter's own libraries also encode: so does this), so the
/// value can hold neither `'` nor `*/`.
fn encode_into(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_what_sqlcommenter_libraries_write() {
        // As written by sqlcommenter for Python (Django) and Node (Express).
        let django = "SELECT * FROM polls_question \
            /*controller='index',db_driver='django.db.backends.postgresql',\
            framework='django%3A4.2',route='%5Epolls/%24',\
            traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01'*/";
        let tags = parse(django).tags().expect("tags");
        assert_eq!(tags.route.as_deref(), Some("^polls/$"));
        assert_eq!(tags.controller.as_deref(), Some("index"));
        assert_eq!(tags.framework.as_deref(), Some("django:4.2"));
        assert_eq!(
            tags.db_driver.as_deref(),
            Some("django.db.backends.postgresql")
        );
        assert_eq!(
            tags.trace_id.as_deref(),
            Some("5bd66ef5095369c7b0d1f8f4bd33716a")
        );
        let express = "SELECT * FROM users WHERE id = $1 \
            /*controller='users',framework='express%3A4.18.2',route='%2Fusers%2F%3Aid'*/;";
        let tags = parse(express).tags().expect("tags");
        assert_eq!(tags.endpoint().as_deref(), Some("/users/:id"));
        assert_eq!(
            Tags {
                route: None,
                ..tags.clone()
            }
            .endpoint()
            .as_deref(),
            Some("users")
        );
    }

    #[test]
    fn what_it_writes_it_reads_back() {
        let comment = render(&Written {
            route: Some("/users/:id"),
            traceparent: Some(TRACEPARENT),
            application: Some("shop's api */ drop"),
        });
        assert!(comment.starts_with("/*application='shop%27s%20api%20%2A%2F%20drop',route="));
        assert_eq!(comment.matches("*/").count(), 1, "{comment}");
        let sql = append("SELECT 1;", &comment);
        assert!(sql.ends_with("*/;"), "{sql}");
        let tags = parse(&sql).tags().expect("tags");
        assert_eq!(tags.route.as_deref(), Some("/users/:id"));
        assert_eq!(tags.application.as_deref(), Some("shop's api */ drop"));
        assert_eq!(
            tags.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(render(&Written::default()), "");
        assert_eq!(append("SELECT 1", ""), "SELECT 1");
    }

    #[test]
    fn escaped_quotes_and_unknown_keys() {
        let tags = parse(r"SELECT 1 /*route='/a\'b',secret='x',route2='y'*/")
            .tags()
            .expect("tags");
        assert_eq!(tags.route.as_deref(), Some("/a'b"));
        assert_eq!(tags.heap_bytes(), 4);
    }

    #[test]
    fn hostile_or_foreign_comments_give_nothing() {
        for sql in [
            "SELECT 1",
            "SELECT 1 /* just a note */",
            "SELECT 1 /*route=unquoted*/",
            "SELECT 1 /*route='%ZZ'*/",
            "SELECT 1 /*route='%FF%FE'*/",
            "SELECT 1 /*route='line\nbreak'*/",
            "SELECT 1 /*route='   '*/",
            "SELECT 1 /*traceparent='00-00000000000000000000000000000000-00f067aa0ba902b7-01'*/",
            "SELECT 1 /*traceparent='not a traceparent'*/",
            "*/",
            "/*",
            "",
        ] {
            assert_eq!(parse(sql), Comment::None, "{sql:?}");
        }
        let long = format!("SELECT 1 /*route='{}'*/", "a".repeat(MAX_COMMENT_BYTES));
        assert_eq!(parse(&long), Comment::None);
        let capped = format!("SELECT 1 /*route='{}'*/", "é".repeat(500));
        let route = parse(&capped).tags().and_then(|t| t.route).expect("route");
        assert_eq!(route.chars().count(), MAX_VALUE_CHARS);
    }

    #[test]
    fn a_text_cut_inside_its_comment_is_told_apart() {
        assert_eq!(parse("SELECT 1 /*route='/users/"), Comment::Cut);
        assert_eq!(parse("SELECT 1 /*rou"), Comment::Cut);
        assert_eq!(parse("SELECT 1 /* a note that was cu"), Comment::None);
        assert_eq!(parse("SELECT 1 /*"), Comment::None);
    }

    #[test]
    fn comments_change_no_fingerprint() {
        let bare = "SELECT * FROM users WHERE id = $1";
        let tagged = append(
            bare,
            &render(&Written {
                route: Some("/users/:id"),
                traceparent: Some(TRACEPARENT),
                application: None,
            }),
        );
        let (a, b) = (
            crate::db::statement::parse(bare),
            crate::db::statement::parse(&tagged),
        );
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.normalized, b.normalized);
    }
}
