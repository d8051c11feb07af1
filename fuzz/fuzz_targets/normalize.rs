//! Any text through the SQL normalizer and fingerprint: no panic, no string
//! literal left outside quoted identifiers, `normalize` agrees with
//! `parse`, and the output stays proportional to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfscope::db::statement::{normalize, parse};

fuzz_target!(|sql: &str| {
    let info = parse(sql);
    let outside: String = info.normalized.split('"').step_by(2).collect();
    assert!(
        !outside.contains('\''),
        "a literal survived: {:?}",
        info.normalized
    );
    assert_eq!(normalize(sql), &*info.normalized);
    assert!(
        info.normalized.len() <= 2 * sql.len() + 16,
        "{} bytes from {}",
        info.normalized.len(),
        sql.len()
    );
    assert_eq!(parse(sql).fingerprint, info.fingerprint);
});
