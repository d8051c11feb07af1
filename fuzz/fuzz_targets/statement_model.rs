//! Statements built from SQL-shaped fragments with literal values in every
//! form Postgres has (quoted, E'', U&'', B'', dollar-quoted, numbers): no
//! literal value reaches the normalized text or the model (a metric label),
//! whatever surrounds it, and the model is made of words of the statement
//! (a name, or a keyword where a name was expected) or is `unknown`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use perfscope::db::statement::parse;

/// The marker every literal value starts with, so finding it in the output
/// means a literal leaked.
const MARK: &str = "zqx";

#[derive(Arbitrary, Debug)]
enum Fragment {
    Keyword(u8),
    Name(u8),
    QuotedName(u8),
    Symbol(u8),
    Text(String),
    EscapeText(String),
    UnicodeText(String),
    BitText(u16),
    Dollar(String),
    Number(u64),
    Float(u32, u32),
    Comment(String),
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "IN",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "WITH",
    "AS",
    "JOIN",
    "ON",
    "ORDER",
    "BY",
    "LIMIT",
    "MERGE",
    "USING",
    "COPY",
    "ONLY",
    "LATERAL",
    "RETURNING",
    "NOT",
    "NULL",
    "ANY",
    "ARRAY",
];
const NAMES: &[&str] = &["items", "orders", "public", "users", "id", "name", "n"];
const SYMBOLS: &[&str] = &[
    "(", ")", ",", ".", "=", "<", ">", "::", ";", "*", "$1", "?", "[", "]",
];

/// A literal's body: the marker and the fuzzer's text, without the
/// characters that would end the literal early.
fn body(text: &str, forbidden: &[char]) -> String {
    let kept: String = text.chars().filter(|c| !forbidden.contains(c)).collect();
    format!("{MARK}{kept}")
}

fn render(fragment: &Fragment, out: &mut String) {
    let pick = |list: &[&str], i: u8| list[usize::from(i) % list.len()].to_owned();
    let piece = match fragment {
        Fragment::Keyword(i) => pick(KEYWORDS, *i),
        Fragment::Name(i) => pick(NAMES, *i),
        Fragment::QuotedName(i) => format!("\"{}\"", pick(NAMES, *i)),
        Fragment::Symbol(i) => pick(SYMBOLS, *i),
        Fragment::Text(t) => format!("'{}'", body(t, &['\'', '\\']).replace('\0', "")),
        Fragment::EscapeText(t) => format!("E'{}'", body(t, &['\'', '\\', '\0'])),
        Fragment::UnicodeText(t) => format!("U&'{}'", body(t, &['\'', '\\', '\0'])),
        Fragment::BitText(bits) => format!("B'{bits:b}'"),
        Fragment::Dollar(t) => format!("$q${}$q$", body(t, &['$', '\0'])),
        Fragment::Number(n) => format!("{}{n}", 7_000_000_000u64),
        Fragment::Float(a, b) => format!("{a}.{b}e3"),
        // A comment may hold anything but its own end; it is dropped.
        Fragment::Comment(t) => format!("/* {} */", body(t, &['*', '/'])),
    };
    out.push_str(&piece);
    out.push(' ');
}

fuzz_target!(|fragments: Vec<Fragment>| {
    let mut sql = String::new();
    for fragment in &fragments {
        render(fragment, &mut sql);
    }
    let info = parse(&sql);
    assert!(
        !info.normalized.contains(MARK),
        "{sql:?} -> {:?}",
        info.normalized
    );
    assert!(
        !info.normalized.contains("7000000000"),
        "{sql:?} -> {:?}",
        info.normalized
    );
    assert!(
        !info.model.contains(MARK),
        "{sql:?} -> model {:?}",
        info.model
    );
    assert!(!info.model.is_empty());
    if &*info.model != "unknown" {
        assert!(
            info.model.split('.').all(|part| NAMES
                .iter()
                .chain(KEYWORDS)
                .any(|word| word.eq_ignore_ascii_case(part))),
            "{sql:?} -> model {:?}",
            info.model
        );
    }
});
