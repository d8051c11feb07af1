//! What perfscope knows about a SQL statement from its text alone: the
//! normalized text (no literal values, ever), a fingerprint, the operation
//! (the SQL verb) and the model (the main table).
//!
//! A small lexer rather than a full parser: it must handle every statement
//! an application sends (including ones a grammar would reject), run once
//! per distinct text (results are cached by the pool), and above all never
//! let a literal through. String, escape-string, dollar-quoted and numeric
//! literals become `?`; comments are dropped; whitespace is collapsed; a
//! parenthesised list of only values/parameters after `IN` becomes
//! `IN (...)`, so `IN ($1, $2)` and `IN ($1, $2, $3)` share a fingerprint.
//!
//! Over 600 lines with its unit tests (from `mod tests` on): the lexer,
//! the normalizer and the model label are one pipeline over one token
//! stream, and are read (and fuzzed) together.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The SQL verb of a statement, the `operation` label's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Copy,
    /// CREATE, ALTER, DROP, TRUNCATE, COMMENT, GRANT, REVOKE.
    Ddl,
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, SET, SHOW, …
    Session,
    /// VACUUM, ANALYZE, REINDEX, CLUSTER, EXPLAIN, …
    Maintenance,
    Other,
}

impl Verb {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Merge => "merge",
            Self::Copy => "copy",
            Self::Ddl => "ddl",
            Self::Session => "session",
            Self::Maintenance => "maintenance",
            Self::Other => "other",
        }
    }

    /// The verb as SQL writes it (`SELECT`), for span names and the
    /// `db.operation.name` attribute.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Merge => "MERGE",
            Self::Copy => "COPY",
            Self::Ddl => "DDL",
            Self::Session => "SESSION",
            Self::Maintenance => "MAINTENANCE",
            Self::Other => "OTHER",
        }
    }

    fn from_keyword(word: &str) -> Option<Self> {
        Some(match word {
            "select" | "values" | "table" => Self::Select,
            "insert" => Self::Insert,
            "update" => Self::Update,
            "delete" => Self::Delete,
            "merge" => Self::Merge,
            "copy" => Self::Copy,
            "create" | "alter" | "drop" | "truncate" | "comment" | "grant" | "revoke" => Self::Ddl,
            "begin" | "start" | "commit" | "end" | "rollback" | "savepoint" | "release" | "set"
            | "reset" | "show" | "discard" | "listen" | "notify" | "unlisten" | "prepare"
            | "execute" | "deallocate" => Self::Session,
            "vacuum" | "analyze" | "reindex" | "cluster" | "explain" | "refresh" | "checkpoint"
            | "lock" => Self::Maintenance,
            _ => return None,
        })
    }
}

/// A statement as perfscope records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementInfo {
    /// The text with every literal replaced by `?`.
    pub normalized: Arc<str>,
    /// A stable hash of the statement's [`shape`]: the same for the text
    /// an application sends (`pg_sleep(0.5)`, `id = $1`) and the text
    /// pg_stat_statements stores for it (`pg_sleep($1)`), so the two
    /// sources' figures of one statement meet under one fingerprint.
    pub fingerprint: u64,
    /// The SQL verb.
    pub verb: Verb,
    /// The main table (`schema.table` when qualified), or `unknown`.
    pub model: Arc<str>,
}

#[derive(Clone, Debug, PartialEq)]
enum Token<'a> {
    /// An unquoted word, lowercased for keywords and identifiers.
    Word(String),
    /// A quoted identifier, as written (with its quotes).
    Quoted(&'a str),
    /// Any literal value.
    Literal,
    /// A bind parameter `$n`.
    Param(&'a str),
    /// Punctuation or an operator.
    Symbol(&'a str),
}

fn lex(sql: &str) -> Vec<Token<'_>> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // Nested block comments, as Postgres allows.
                let mut depth = 0;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => {
                i = skip_string(bytes, i + 1, false);
                tokens.push(Token::Literal);
            }
            // A Unicode escape string, `U&'d\0061ta'` (found by the
            // `statement_model` fuzz target: it was read as the word `u`).
            b'u' | b'U' if bytes.get(i + 1) == Some(&b'&') && bytes.get(i + 2) == Some(&b'\'') => {
                i = skip_string(bytes, i + 3, false);
                tokens.push(Token::Literal);
            }
            b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'n' | b'N' | b'u' | b'U'
                if bytes.get(i + 1) == Some(&b'\'') =>
            {
                let escapes = matches!(c, b'e' | b'E');
                i = skip_string(bytes, i + 2, escapes);
                tokens.push(Token::Literal);
            }
            b'"' => {
                let start = i;
                i += 1;
                let mut closed = false;
                while i < bytes.len() {
                    if bytes[i] == b'"' {
                        if bytes.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        closed = true;
                        break;
                    }
                    i += 1;
                }
                // An unterminated identifier swallows the rest of the text,
                // literals included: it is shown as one.
                tokens.push(if closed {
                    Token::Quoted(&sql[start..i.min(sql.len())])
                } else {
                    Token::Literal
                });
            }
            b'$' => {
                let start = i;
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if j > i + 1 {
                    tokens.push(Token::Param(&sql[start..j]));
                    i = j;
                    continue;
                }
                // A dollar-quoted string: $tag$ ... $tag$.
                let mut k = i + 1;
                while k < bytes.len() && (bytes[k].is_ascii_alphanumeric() || bytes[k] == b'_') {
                    k += 1;
                }
                if bytes.get(k) == Some(&b'$') {
                    let tag = &sql[start..=k];
                    let body_start = k + 1;
                    i = match sql[body_start..].find(tag) {
                        Some(end) => body_start + end + tag.len(),
                        None => sql.len(),
                    };
                    tokens.push(Token::Literal);
                } else {
                    tokens.push(Token::Symbol("$"));
                    i += 1;
                }
            }
            b'0'..=b'9' => {
                i = skip_number(bytes, i);
                tokens.push(Token::Literal);
            }
            b'.' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = skip_number(bytes, i);
                tokens.push(Token::Literal);
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'_'
                        || bytes[i] == b'$'
                        || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                tokens.push(Token::Word(sql[start..i].to_lowercase()));
            }
            _ => {
                let start = i;
                // Operators made of several symbol characters stay together.
                const OPERATOR: &[u8] = b"+-*/<>=~!@#%^&|`?:";
                if OPERATOR.contains(&c) {
                    while i < bytes.len() && OPERATOR.contains(&bytes[i]) {
                        i += 1;
                    }
                } else {
                    // One (possibly multi-byte) character.
                    i += sql[i..].chars().next().map_or(1, char::len_utf8);
                }
                tokens.push(Token::Symbol(&sql[start..i]));
            }
        }
    }
    tokens
}

/// Index just past a quoted string whose body starts at `i`.
fn skip_string(bytes: &[u8], mut i: usize, backslash_escapes: bool) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash_escapes => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_number(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
    {
        // Exponent sign: 1e-5.
        if matches!(bytes[i], b'e' | b'E') && matches!(bytes.get(i + 1), Some(b'-' | b'+')) {
            i += 1;
        }
        i += 1;
    }
    i
}

/// Replaces `IN ( v, v, ... )` lists of values or parameters by `IN (...)`.
fn collapse_in_lists(tokens: Vec<Token<'_>>) -> Vec<Token<'_>> {
    collapse_lists(tokens, "in", "(", ")")
}

/// Replaces the lists of values or parameters that follow `keyword`
/// between `open` and `close` by `open ... close`.
fn collapse_lists<'a>(
    tokens: Vec<Token<'a>>,
    keyword: &str,
    open: &'static str,
    close: &'static str,
) -> Vec<Token<'a>> {
    let mut out: Vec<Token<'_>> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let after_keyword = matches!(out.last(), Some(Token::Word(w)) if w == keyword);
        if after_keyword && tokens[i] == Token::Symbol(open) {
            let mut j = i + 1;
            let mut values = 0;
            let mut ok = true;
            while j < tokens.len() && tokens[j] != Token::Symbol(close) {
                match &tokens[j] {
                    Token::Literal | Token::Param(_) => values += 1,
                    Token::Symbol(",") => {}
                    // Casts such as $1::int stay a value.
                    Token::Symbol("::") | Token::Word(_) if values > 0 => {}
                    _ => {
                        ok = false;
                        break;
                    }
                }
                j += 1;
            }
            if ok && values > 0 && j < tokens.len() {
                out.push(Token::Symbol(open));
                out.push(Token::Symbol("..."));
                out.push(Token::Symbol(close));
                i = j + 1;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// Keywords after which a parenthesis opens a list or subquery, not a call.
const KEYWORDS_BEFORE_PARENS: &[&str] = &[
    "in",
    "values",
    "as",
    "from",
    "join",
    "exists",
    "and",
    "or",
    "not",
    "on",
    "select",
    "where",
    "using",
    "over",
    "filter",
    "within",
    "into",
    "table",
    "lateral",
    "returning",
    "set",
    "by",
    "when",
    "then",
    "else",
    "case",
    "union",
    "intersect",
    "except",
    "with",
    "is",
    "like",
];

fn render(tokens: &[Token<'_>]) -> String {
    let mut text = String::new();
    let mut previous: Option<&Token<'_>> = None;
    for token in tokens {
        let piece = match token {
            Token::Word(w) => w.as_str(),
            Token::Quoted(q) => q,
            Token::Literal => "?",
            Token::Param(p) => p,
            Token::Symbol(s) => s,
        };
        // A function call hugs its parenthesis: `count(*)`, not `count (*)`.
        let call = *token == Token::Symbol("(")
            && matches!(previous, Some(Token::Word(w)) if !KEYWORDS_BEFORE_PARENS.contains(&w.as_str()))
            || *token == Token::Symbol("(") && matches!(previous, Some(Token::Quoted(_)));
        let tight_before =
            call || matches!(token, Token::Symbol("," | ")" | "." | "::" | ";" | "]"));
        let tight_after = matches!(previous, Some(Token::Symbol("(" | "." | "::" | "[")));
        if previous.is_some() && !tight_before && !tight_after {
            text.push(' ');
        }
        text.push_str(piece);
        previous = Some(token);
    }
    text
}

fn word<'t>(token: Option<&'t Token<'_>>) -> Option<&'t str> {
    match token {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

/// A table name starting at `tokens[i]`: `name`, `"Name"` or `schema.name`.
fn table_at(tokens: &[Token<'_>], mut i: usize) -> Option<String> {
    while word(tokens.get(i)).is_some_and(|w| w == "only" || w == "lateral") {
        i += 1;
    }
    let part = |t: Option<&Token<'_>>| match t {
        Some(Token::Word(w)) => Some(w.clone()),
        Some(Token::Quoted(q)) => Some(q.trim_matches('"').replace("\"\"", "\"")),
        _ => None,
    };
    let first = part(tokens.get(i))?;
    if tokens.get(i + 1) == Some(&Token::Symbol("."))
        && let Some(second) = part(tokens.get(i + 2))
    {
        return Some(format!("{first}.{second}"));
    }
    Some(first)
}

/// The main verb and table, at parenthesis depth 0 (skipping CTEs).
fn verb_and_model(tokens: &[Token<'_>]) -> (Verb, Option<String>) {
    let mut depth = 0i32;
    let mut verb = None;
    let mut model = None;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Symbol("(") => depth += 1,
            Token::Symbol(")") => depth -= 1,
            Token::Word(w) if depth == 0 => {
                if verb.is_none() {
                    if w == "with" || w == "recursive" {
                        continue;
                    }
                    // In a WITH, CTE names and AS come first: the verb is
                    // the first verb keyword at depth 0.
                    if let Some(v) = Verb::from_keyword(w) {
                        verb = Some(v);
                        model = match v {
                            Verb::Insert | Verb::Merge => None,
                            Verb::Update | Verb::Copy => table_at(tokens, i + 1),
                            _ => None,
                        };
                        if matches!(v, Verb::Ddl | Verb::Maintenance | Verb::Session) {
                            break;
                        }
                    }
                    continue;
                }
                if model.is_none() {
                    let wanted = match verb {
                        Some(Verb::Select | Verb::Delete) => w == "from",
                        Some(Verb::Insert | Verb::Merge) => w == "into",
                        _ => false,
                    };
                    if wanted {
                        model = table_at(tokens, i + 1);
                    }
                }
            }
            _ => {}
        }
        if verb.is_some() && model.is_some() {
            break;
        }
    }
    (verb.unwrap_or(Verb::Other), model)
}

/// Parses one statement's text: its verb, its model (main table), its
/// normalized text and fingerprint.
pub fn parse(sql: &str) -> StatementInfo {
    let tokens = collapse_in_lists(lex(sql));
    let normalized = render(&tokens);
    let (verb, model) = verb_and_model(&tokens);
    let mut hasher = std::hash::DefaultHasher::new();
    shape(sql).hash(&mut hasher);
    StatementInfo {
        fingerprint: hasher.finish(),
        normalized: normalized.into(),
        verb,
        model: model.unwrap_or_else(|| "unknown".to_owned()).into(),
    }
}

/// Normalizes a text for display only (the same rules as [`parse`]).
pub fn normalize(sql: &str) -> String {
    render(&collapse_in_lists(lex(sql)))
}

/// Whether the last tokens are `is` or `is not`.
fn after_is(tokens: &[Token<'_>]) -> bool {
    let last = |n: usize| {
        tokens
            .len()
            .checked_sub(n)
            .and_then(|i| word(tokens.get(i)))
    };
    last(1) == Some("is") || (last(1) == Some("not") && last(2) == Some("is"))
}

/// A text's shape, for telling whether two texts are the same statement
/// whoever replaced their values: [`normalize`], with every bind parameter
/// and the constants `true`, `false` and `null` also written `?`.
/// pg_stat_statements writes a statement's constants as `$n` numbered
/// after its own parameters, so `LIMIT 20` is stored as `LIMIT $2`; both
/// spellings have the shape `limit ?`.
///
/// `IS NULL`, `IS NOT TRUE` and the like stay: the server keeps them as
/// tests, not constants.
///
/// It also follows what the server takes for a constant: a negative number
/// (`= -1` is stored as `= $3`) and the field of `extract(epoch FROM …)`
/// (stored as `extract($1 FROM …)`); and PostgreSQL 18 squashes a list of
/// constants and parameters, `ARRAY['a', $3::text]` as in an IN list, into
/// `ARRAY[$5 /*, ... */]`, so `array[...]` lists collapse like IN lists.
pub fn shape(sql: &str) -> String {
    let mut tokens: Vec<Token<'_>> = Vec::new();
    for token in lex(sql) {
        let token = match token {
            Token::Param(_) => Token::Literal,
            // `IS NULL`, `IS NOT TRUE`: a test, not a constant (the server
            // keeps those words).
            Token::Word(w)
                if matches!(w.as_str(), "true" | "false" | "null") && !after_is(&tokens) =>
            {
                Token::Literal
            }
            Token::Word(_)
                if tokens.len() >= 2
                    && tokens[tokens.len() - 1] == Token::Symbol("(")
                    && word(tokens.get(tokens.len() - 2)) == Some("extract") =>
            {
                Token::Literal
            }
            other => other,
        };
        // A unary minus before a constant is part of the constant.
        if token == Token::Literal && tokens.last() == Some(&Token::Symbol("-")) {
            let before = tokens.len().checked_sub(2).and_then(|i| tokens.get(i));
            let unary = match before {
                None => true,
                Some(Token::Symbol(s)) => !matches!(*s, ")" | "]"),
                Some(Token::Word(w)) => {
                    KEYWORDS_BEFORE_PARENS.contains(&w.as_str())
                        || matches!(w.as_str(), "limit" | "offset" | "between" | "return")
                }
                Some(_) => false,
            };
            if unary {
                tokens.pop();
            }
        }
        tokens.push(token);
    }
    render(&collapse_lists(
        collapse_in_lists(tokens),
        "array",
        "[",
        "]",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_whoever_replaced_the_values() {
        assert_eq!(
            shape("/* a comment */ SELECT a FROM t WHERE k IN ('r', 'm') AND b = true LIMIT 20"),
            shape("SELECT a FROM t WHERE k IN ($2, $3) AND b = $4 LIMIT $1"),
        );
        assert_eq!(
            shape("SELECT a FROM t WHERE b = $1"),
            "select a from t where b = ?"
        );
        assert_ne!(shape("SELECT a FROM t"), shape("SELECT b FROM t"));
        // What the server stores as constants.
        assert_eq!(
            shape("SELECT CASE WHEN p = -1 THEN 'l' END, a - 1, extract(epoch FROM x)"),
            shape("SELECT CASE WHEN p = $1 THEN $2 END, a - $3, extract($4 FROM x)"),
        );
        assert_ne!(shape("SELECT a FROM \"T\""), shape("SELECT a FROM t"));
        // PostgreSQL 18 squashes lists of constants and parameters, in
        // IN and in ARRAY[…]; 15 keeps one `$n` per element.
        assert_eq!(
            shape("SELECT a FROM t WHERE k IN ($2 /*, ... */) AND n = ANY (ARRAY[$3 /*, ... */])"),
            shape("SELECT a FROM t WHERE k IN ('r', 'm') AND n = ANY (ARRAY['x', $1::text, 'y'])"),
        );
        assert_eq!(
            shape("SELECT ARRAY[$1, $2::text, $3]"),
            "select array [...]"
        );
        assert_ne!(shape("SELECT ARRAY[a, b]"), shape("SELECT ARRAY[$1]"));
        // Tests are not constants; a compared constant is.
        assert_eq!(
            shape("SELECT a FROM t WHERE d IS NULL AND e IS NOT TRUE AND f = true"),
            "select a from t where d is null and e is not true and f = ?"
        );
        assert_ne!(
            shape("SELECT a FROM t WHERE d IS NULL"),
            shape("SELECT a FROM t WHERE d IS TRUE")
        );
    }

    /// The text an application sends and the text pg_stat_statements
    /// stores for it are one statement: one fingerprint.
    #[test]
    fn the_app_and_pg_stat_statements_texts_share_a_fingerprint() {
        for (app, server) in [
            ("SELECT pg_sleep(0.12)", "SELECT pg_sleep($1)"),
            (
                "select  id, name FROM customers\n WHERE email = $1 LIMIT 20",
                "SELECT id, name FROM customers WHERE email = $1 LIMIT $2",
            ),
            (
                "/* app */ SELECT * FROM t WHERE k IN ('a', 'b') AND d IS NULL AND n = -1",
                "SELECT * FROM t WHERE k IN ($1, $2) AND d IS NULL AND n = $3",
            ),
        ] {
            assert_eq!(parse(app).fingerprint, parse(server).fingerprint, "{app}");
        }
        assert_ne!(
            parse("SELECT pg_sleep(0.12)").fingerprint,
            parse("SELECT pg_sleep(0.12), 1").fingerprint
        );
    }

    #[test]
    fn literals_never_survive() {
        let cases = [
            (
                "SELECT * FROM users WHERE email = 'a@b.c'",
                "select * from users where email = ?",
            ),
            ("select 1, 2.5, -3e-4, .5", "select ?, ?, - ?, ?"),
            ("SELECT E'it\\'s' , 'o''k'", "select ?, ?"),
            ("SELECT $$secret$$, $tag$x$y$tag$", "select ?, ?"),
            // Found by tests/properties.rs: an unterminated identifier
            // swallowed a literal.
            ("SELECT \"x FROM t WHERE pw = 'hunter2'", "select ?"),
            (
                "ALTER ROLE app PASSWORD 'hunter2'",
                "alter role app password ?",
            ),
            ("select x'1f', b'101', n'nat'", "select ?, ?, ?"),
            // Found by the `statement_model` fuzz target.
            (
                "UPDATE U&'d\\0061ta' SET a = U&'secret'",
                "update ? set a = ?",
            ),
            (
                "SELECT /* note 'x' */ a -- trailing 'y'\n FROM t",
                "select a from t",
            ),
        ];
        for (sql, expected) in cases {
            let info = parse(sql);
            assert_eq!(&*info.normalized, expected, "{sql}");
            for secret in ["a@b.c", "hunter2", "secret", "it", "note", "nat"] {
                assert!(
                    !info.normalized.contains(secret),
                    "{secret} leaked from {sql}"
                );
            }
        }
    }

    #[test]
    fn parameters_and_identifiers_stay() {
        let info = parse("SELECT \"Id\", name FROM public.\"Users\" WHERE id = $1 AND x::int > $2");
        assert_eq!(
            &*info.normalized,
            "select \"Id\", name from public.\"Users\" where id = $1 and x::int > $2"
        );
        assert_eq!(&*info.model, "public.Users");
    }

    #[test]
    fn in_lists_share_a_fingerprint() {
        let a = parse("select * from t where id in ($1, $2)");
        let b = parse("SELECT * FROM t WHERE id IN ($1,$2,$3)");
        let c = parse("select * from t where id in (1, 2, 3, 4)");
        assert_eq!(&*a.normalized, "select * from t where id in (...)");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint, c.fingerprint);
        let sub = parse("select * from t where id in (select id from u)");
        assert_eq!(
            &*sub.normalized,
            "select * from t where id in (select id from u)"
        );
    }

    #[test]
    fn verbs_and_models() {
        let cases = [
            (
                "SELECT * FROM orders o JOIN users u ON u.id = o.user_id",
                Verb::Select,
                "orders",
            ),
            (
                "insert into audit.events (a) values ($1)",
                Verb::Insert,
                "audit.events",
            ),
            (
                "UPDATE ONLY accounts SET n = n + 1",
                Verb::Update,
                "accounts",
            ),
            (
                "delete from sessions where expires < now()",
                Verb::Delete,
                "sessions",
            ),
            (
                "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent_view",
                Verb::Select,
                "recent_view",
            ),
            (
                "with x as (select 1) insert into items select * from x",
                Verb::Insert,
                "items",
            ),
            ("CREATE INDEX CONCURRENTLY i ON t (a)", Verb::Ddl, "unknown"),
            ("BEGIN", Verb::Session, "unknown"),
            ("VACUUM ANALYZE t", Verb::Maintenance, "unknown"),
            ("select now()", Verb::Select, "unknown"),
            ("select * from (select 1) s", Verb::Select, "unknown"),
        ];
        for (sql, verb, model) in cases {
            let info = parse(sql);
            assert_eq!(info.verb, verb, "{sql}");
            assert_eq!(&*info.model, model, "{sql}");
        }
    }

    #[test]
    fn whitespace_and_case_do_not_change_the_fingerprint() {
        let a = parse("SELECT  a\n\tFROM t WHERE b = 1");
        let b = parse("select a from t where b = 42");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(
            a.fingerprint,
            parse("select a from t where c = 1").fingerprint
        );
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for sql in [
            "select 'abc",
            "select $$abc",
            "select \"abc",
            "/* open",
            "select $a",
            "€ 'x",
        ] {
            let info = parse(sql);
            assert!(
                !info.normalized.contains("abc") || sql.contains('"'),
                "{sql}"
            );
        }
    }
}
