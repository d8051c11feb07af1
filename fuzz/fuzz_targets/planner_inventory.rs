//! Any text through the planner's lexer (what a database user's statement
//! text can make the agent do before anything reaches Postgres): no panic,
//! parameters within the protocol's limit, and work and output bounded by
//! the text (no `$n` inside a quoted identifier, comment or string counts;
//! what it reports stays within fixed multiples of the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfscope::pg::planner::inventory::{MAX_DISTINCT, MAX_OPERATOR_RUN, MAX_PARAMS, read};

fuzz_target!(|sql: &str| {
    let Ok(found) = read(sql) else {
        return;
    };
    assert!(found.params <= MAX_PARAMS);
    assert!(found.names.len() <= MAX_DISTINCT + 1);
    assert!(found.operators.len() <= MAX_DISTINCT + 1);
    // Each name is kept as the server keeps identifiers: at most 63 bytes
    // (folding may change a character's length, so not "a piece of the
    // text").
    for name in &found.names {
        assert!(name.len() <= 63, "{name:?} from {sql:?}");
    }
    for op in &found.operators {
        assert!(!op.is_empty() && op.len() <= MAX_OPERATOR_RUN, "{op:?}");
        assert!(sql.contains(op.as_str()), "{op:?} not in {sql:?}");
    }
    // A parameter is a real `$n` token: the text holds its digits.
    if found.params > 0 {
        let named = sql.split('$').skip(1).any(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok() == Some(found.params)
        });
        assert!(named, "${} is not in {sql:?}", found.params);
    }
});
