//! Values that must never be printed — tokens, DSNs, webhook URLs — and the
//! redaction of a Postgres connection string's password. Kept apart so the
//! one place that decides what is hidden is small enough to read whole.

use std::fmt;
use std::sync::Arc;

/// A value that must never be printed: tokens and DSNs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A Postgres connection string whose `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Secret);

impl DatabaseUrl {
    /// Wraps a connection string (URL or `key=value` form).
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(Secret::new(value))
    }

    /// The full connection string, password included.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The connection string with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_dsn(self.expose())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

/// Replaces the password of a URL-form (`postgres://user:pw@host`,
/// `?password=pw`) or key/value-form (`password=pw`, `password = 'p w'`)
/// connection string. Errs on the side of hiding: a URL's userinfo runs to
/// its last `@` (a password with an unencoded `/`, `?` or `@` is still
/// hidden), and a key/value text that does not parse is hidden whole when
/// it mentions a password.
pub(super) fn redact_dsn(dsn: &str) -> String {
    let lower = dsn.trim_start().to_ascii_lowercase();
    let url = lower.starts_with("postgres://") || lower.starts_with("postgresql://");
    if url && let Some(scheme_end) = dsn.find("://") {
        let (head, rest) = dsn.split_at(scheme_end + 3);
        let rest = match rest.rfind('@') {
            Some(at) => match rest[..at].find(':') {
                Some(colon) => format!("{}:***{}", &rest[..colon], &rest[at..]),
                None => rest.to_owned(),
            },
            None => rest.to_owned(),
        };
        return format!("{head}{}", redact_query_password(&rest));
    }
    // Neither form parses (a mistyped URL such as `postgres:/u:pw@h`):
    // nothing of it is shown.
    redact_keyword_values(dsn).unwrap_or_else(|| "***".to_owned())
}

/// Whether a connection parameter's key names a secret: `password`,
/// `sslpassword`, percent-encoded or not.
fn secret_key(key: &str) -> bool {
    let mut decoded = String::with_capacity(key.len());
    let bytes = key.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = key
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            decoded.push(char::from(byte));
            i += 3;
            continue;
        }
        decoded.push(char::from(bytes[i]));
        i += 1;
    }
    decoded.to_ascii_lowercase().contains("password")
}

/// Hides the values of `password=` parameters in a URL's query.
fn redact_query_password(rest: &str) -> String {
    let Some(question) = rest.find('?') else {
        return rest.to_owned();
    };
    let params: Vec<String> = rest[question + 1..]
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if secret_key(key) => format!("{key}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{}?{}", &rest[..question], params.join("&"))
}

/// libpq's `key = value` form with every `password` value hidden, or
/// `None` when the text is not of that form.
fn redact_keyword_values(dsn: &str) -> Option<String> {
    let mut out = String::with_capacity(dsn.len());
    let mut chars = dsn.chars().peekable();
    loop {
        while let Some(&c) = chars.peek().filter(|c| c.is_whitespace()) {
            out.push(c);
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace() && **c != '=') {
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'\'');
        let mut closed = !quoted;
        if quoted {
            value.extend(chars.next());
        }
        while let Some(&c) = chars.peek() {
            if !quoted && c.is_whitespace() {
                break;
            }
            chars.next();
            value.push(c);
            if c == '\\' {
                value.extend(chars.next());
            } else if quoted && c == '\'' {
                closed = true;
                break;
            }
        }
        if !closed {
            return None;
        }
        out.push_str(&key);
        out.push('=');
        out.push_str(if secret_key(&key) { "***" } else { &value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_dsn_is_redacted() {
        assert_eq!(
            redact_dsn("host=db user=app password=s3cret dbname=app"),
            "host=db user=app password=*** dbname=app"
        );
        assert_eq!(redact_dsn("postgres://db/app"), "postgres://db/app");
    }
}
