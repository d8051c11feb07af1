//! What a statement text names, read the way PostgreSQL's lexer reads it:
//! every identifier (quoted ones exactly, unquoted ones folded to lower
//! case), every operator, and its real `$n` parameters. Strings, dollar
//! quotes, comments and quoted identifiers are skipped as units, so a `$9`
//! inside `"…"` or `/* … */` is not a parameter and a function name inside
//! a string is not a name.
//!
//! It exists for the planner's trust check
//! (`sql/queries/planner_untrusted.sql`, run by [`super::Planner`]): before
//! a statement written by a database user is planned, every function,
//! operator, cast or relation it could reach is looked up by these names.
//! Over-reading is safe (an extra name can only refuse a statement);
//! under-reading is not, so anything the lexer does not fully understand
//! (`U&"…"` identifiers, an unterminated quote or comment, a text past
//! [`MAX_STATEMENT_BYTES`], a parameter past [`MAX_PARAMS`]) is refused.

use std::collections::BTreeSet;

/// Longest statement text the agent plans (longer ones are refused, so a
/// text cannot make the agent lex, allocate or send without bound).
pub const MAX_STATEMENT_BYTES: usize = 64 * 1024;
/// Highest `$n` a statement may use (the protocol's limit).
pub const MAX_PARAMS: usize = 65_535;
/// Longest run of operator characters read (PostgreSQL accepts 63; a real
/// statement's are a few characters long). Every substring of a run is
/// looked up, so the bound keeps that quadratic set small.
pub const MAX_OPERATOR_RUN: usize = 16;
/// Distinct names and operators a statement may have (beyond them the
/// lookup itself would be the cost).
pub const MAX_DISTINCT: usize = 4_096;

/// The names, operators and parameters of one statement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Identifiers, as the server would compare them with catalog names.
    pub names: BTreeSet<String>,
    /// Operator symbols, and every run inside them (the lexer may split a
    /// run like `>=-` into `>=` and `-`).
    pub operators: BTreeSet<String>,
    /// The highest `$n` (0 without parameters).
    pub params: usize,
}

/// Why a statement text is not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Past [`MAX_STATEMENT_BYTES`].
    #[error("the statement is longer than {MAX_STATEMENT_BYTES} bytes")]
    TooLong,
    /// A `$n` past [`MAX_PARAMS`].
    #[error("the statement names a parameter past ${MAX_PARAMS}")]
    TooManyParams,
    /// Something the lexer does not read exactly.
    #[error("the statement uses {0}, which the agent does not plan")]
    Unsupported(&'static str),
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_operator_char(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

/// Reads `sql`.
pub fn read(sql: &str) -> Result<Inventory, Refused> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(Refused::TooLong);
    }
    let bytes = sql.as_bytes();
    let mut out = Inventory::default();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = block_comment(bytes, i)?,
            b'\'' => i = string(bytes, i + 1, false)?,
            b'"' => {
                let (name, next) = quoted_ident(sql, i + 1)?;
                insert_name(&mut out.names, &name);
                i = next;
            }
            b'$' => i = dollar(sql, i, &mut out)?,
            b'0'..=b'9' => {
                while i < bytes.len() && (is_ident_char(bytes[i]) || bytes[i] == b'.') {
                    i += 1;
                }
            }
            _ if is_ident_start(b) => {
                let start = i;
                while i < bytes.len() && is_ident_char(bytes[i]) {
                    i += 1;
                }
                let word = &sql[start..i];
                let next = bytes.get(i).copied();
                if word.eq_ignore_ascii_case("u") && next == Some(b'&') {
                    match bytes.get(i + 1) {
                        Some(b'\'') => {
                            i = string(bytes, i + 2, false)?;
                            continue;
                        }
                        Some(b'"') => return Err(Refused::Unsupported("a U& identifier")),
                        _ => {}
                    }
                }
                if next == Some(b'\'') && word.eq_ignore_ascii_case("e") {
                    i = string(bytes, i + 1, true)?;
                    continue;
                }
                insert_name(&mut out.names, &word.to_ascii_lowercase());
                // PostgreSQL folds non-ASCII letters too in single-byte
                // encodings: look that spelling up as well.
                if !word.is_ascii() {
                    insert_name(&mut out.names, &word.to_lowercase());
                }
            }
            _ if is_operator_char(b) => {
                let start = i;
                while i < bytes.len()
                    && is_operator_char(bytes[i])
                    && !(bytes[i] == b'-' && bytes.get(i + 1) == Some(&b'-'))
                    && !(bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*'))
                {
                    i += 1;
                }
                if i == start {
                    // A comment starts here; the next round reads it.
                    continue;
                }
                operator_runs(&sql[start..i], &mut out.operators)?;
            }
            _ => i += 1,
        }
        if out.names.len() > MAX_DISTINCT || out.operators.len() > MAX_DISTINCT {
            return Err(Refused::Unsupported(
                "more than 4,096 distinct names or operators",
            ));
        }
    }
    Ok(out)
}

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` bytes): longer
/// ones are truncated by the server, so they are looked up truncated.
const MAX_IDENTIFIER: usize = 63;

/// Adds `name` as the server would keep it: truncated to
/// [`MAX_IDENTIFIER`] bytes on a character boundary.
fn insert_name(names: &mut BTreeSet<String>, name: &str) {
    let mut end = name.len().min(MAX_IDENTIFIER);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    names.insert(name[..end].to_owned());
}

/// Every contiguous run of an operator symbol.
fn operator_runs(symbol: &str, out: &mut BTreeSet<String>) -> Result<(), Refused> {
    if symbol.len() > MAX_OPERATOR_RUN {
        return Err(Refused::Unsupported(
            "a run of more than 16 operator characters",
        ));
    }
    for start in 0..symbol.len() {
        for end in start + 1..=symbol.len() {
            out.insert(symbol[start..end].to_owned());
        }
    }
    Ok(())
}

/// Past a `/* … */` comment starting at `i` (comments nest).
fn block_comment(bytes: &[u8], mut i: usize) -> Result<usize, Refused> {
    let mut depth = 0usize;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Ok(i);
            }
        } else {
            i += 1;
        }
    }
    Err(Refused::Unsupported("an unterminated comment"))
}

/// Past a string whose body starts at `i` (`''` doubles a quote; with
/// `escapes`, a backslash escapes the next byte).
fn string(bytes: &[u8], mut i: usize, escapes: bool) -> Result<usize, Refused> {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(Refused::Unsupported("an unterminated string"))
}

/// A quoted identifier whose body starts at `i`, and the index past it.
fn quoted_ident(sql: &str, mut i: usize) -> Result<(String, usize), Refused> {
    let bytes = sql.as_bytes();
    let mut name = String::new();
    let mut start = i;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            name.push_str(&sql[start..i]);
            if bytes.get(i + 1) == Some(&b'"') {
                name.push('"');
                i += 2;
                start = i;
                continue;
            }
            return Ok((name, i + 1));
        }
        i += 1;
    }
    Err(Refused::Unsupported("an unterminated quoted identifier"))
}

/// A `$n` parameter or a dollar-quoted string starting at `i`.
fn dollar(sql: &str, i: usize, out: &mut Inventory) -> Result<usize, Refused> {
    let bytes = sql.as_bytes();
    let mut j = i + 1;
    if bytes.get(j).is_some_and(u8::is_ascii_digit) {
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        let n: usize = sql[i + 1..j].parse().unwrap_or(usize::MAX);
        if n > MAX_PARAMS {
            return Err(Refused::TooManyParams);
        }
        out.params = out.params.max(n);
        return Ok(j);
    }
    while j < bytes.len() && (is_ident_start(bytes[j]) || bytes[j].is_ascii_digit()) {
        j += 1;
    }
    if bytes.get(j) != Some(&b'$') {
        // A lone `$` is not valid SQL outside these forms.
        return Err(Refused::Unsupported("a stray `$`"));
    }
    let tag = &sql[i..=j];
    match sql[j + 1..].find(tag) {
        Some(end) => Ok(j + 1 + end + tag.len()),
        None => Err(Refused::Unsupported("an unterminated dollar quote")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        read(sql).expect("read").names.into_iter().collect()
    }

    #[test]
    fn parameters_are_real_tokens_only() {
        assert_eq!(read("select $1, $12, $3").map(|i| i.params), Ok(12));
        assert_eq!(read("select 1").map(|i| i.params), Ok(0));
        // The attack of the issue: `$n` in a quoted identifier or a comment
        // is not a parameter, so it allocates nothing.
        let hostile =
            "SELECT id AS \"$9999999999\" FROM t /* $88888888 */ WHERE a = $2 -- $77777\n";
        assert_eq!(read(hostile).map(|i| i.params), Ok(2));
        assert_eq!(
            read("select '$5', $$ $6 $$, $q$ $7 $q$").map(|i| i.params),
            Ok(0)
        );
        assert_eq!(read("select $65536"), Err(Refused::TooManyParams));
        assert_eq!(
            read("select $99999999999999999999999"),
            Err(Refused::TooManyParams)
        );
    }

    #[test]
    fn names_as_the_server_compares_them() {
        assert_eq!(
            names("SELECT Lower(\"Email\") FROM public.\"Order Items\" oi WHERE x::MyType = 1"),
            [
                "Email",
                "Order Items",
                "from",
                "lower",
                "mytype",
                "oi",
                "public",
                "select",
                "where",
                "x"
            ]
        );
        assert_eq!(names("select \"we\"\"ird\"()"), ["select", "we\"ird"]);
        // Nothing inside strings, escape strings or dollar quotes.
        assert_eq!(
            names("select 'evil()', E'it\\'s evil()', $body$ evil() $body$, U&'evil'"),
            ["select"]
        );
    }

    #[test]
    fn operators_and_their_runs() {
        let ops = read("select a >=- b, c OPERATOR(public.===) d")
            .expect("read")
            .operators;
        for op in [">=-", ">=", "=-", ">", "=", "-", "==="] {
            assert!(ops.contains(op), "{op} in {ops:?}");
        }
        // A comment inside an operator run ends it.
        let ops = read("select a +/* x */ b -- c\n").expect("read").operators;
        assert!(ops.contains("+") && !ops.contains("+/"), "{ops:?}");
    }

    #[test]
    fn what_is_not_read_exactly_is_refused() {
        for sql in [
            "SELECT U&\"pg\\005fterminate\\005fbackend\"(1)",
            "select 'open",
            "select \"open",
            "select /* open",
            "select $tag$ open",
            "select $ 1",
        ] {
            assert!(matches!(read(sql), Err(Refused::Unsupported(_))), "{sql}");
        }
        assert_eq!(
            read(&"x".repeat(MAX_STATEMENT_BYTES + 1)),
            Err(Refused::TooLong)
        );
        assert!(read(&format!("select a {} b", "+".repeat(17))).is_err());
        let many: String = (0..5_000).map(|i| format!("c{i},")).collect();
        assert!(read(&format!("select {many} 1")).is_err());
    }

    #[test]
    fn long_and_non_ascii_names_as_the_server_keeps_them() {
        let long = "a".repeat(70);
        assert_eq!(
            names(&format!("select {long}()")),
            [&"a".repeat(63), "select"]
        );
        let found = names("select ÉVIL()");
        assert!(found.contains(&"Évil".to_owned()), "{found:?}");
        assert!(found.contains(&"évil".to_owned()), "{found:?}");
    }

    #[test]
    fn nested_comments() {
        assert_eq!(
            names("select /* a /* b */ evil() */ ok()"),
            ["ok", "select"]
        );
    }
}
