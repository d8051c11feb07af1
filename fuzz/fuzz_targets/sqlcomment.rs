//! Any statement text through the sqlcommenter parser (texts come from
//! every app on a watched database: untrusted): no panic; only bounded,
//! printable tag values and a well-formed trace id come out; and what the
//! timed pool writes reads back as written, whatever the route or the
//! application name holds (a `'` or `*/` cannot end the comment early),
//! up to the reader's bound on a comment's length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfscope::db::sqlcomment::{
    MAX_COMMENT_BYTES, MAX_VALUE_CHARS, Written, append, parse, render,
};

fuzz_target!(|input: (&str, &str, &str)| {
    let (sql, route, application) = input;
    if let Some(tags) = parse(sql).tags() {
        for value in [
            &tags.route,
            &tags.controller,
            &tags.action,
            &tags.framework,
            &tags.db_driver,
            &tags.application,
        ]
        .into_iter()
        .flatten()
        {
            assert!(value.chars().count() <= MAX_VALUE_CHARS, "{value:?}");
            assert!(!value.chars().any(char::is_control), "{value:?}");
            assert!(!value.trim().is_empty());
        }
        if let Some(trace_id) = &tags.trace_id {
            assert_eq!(trace_id.len(), 32);
            assert!(trace_id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    let comment = render(&Written {
        route: Some(route),
        traceparent: None,
        application: Some(application),
    });
    assert_eq!(comment.matches("*/").count(), 1, "{comment}");
    if comment.len() > MAX_COMMENT_BYTES {
        // Too long to be read back: the reader's bound, by design.
        return;
    }
    let tags = parse(&append(sql, &comment)).tags().unwrap_or_default();
    let kept = |value: &str| {
        let value = value.trim();
        (!value.is_empty() && !value.chars().any(char::is_control))
            .then(|| value.chars().take(MAX_VALUE_CHARS).collect::<String>())
    };
    assert_eq!(tags.route.as_deref().map(str::to_owned), kept(route));
    assert_eq!(
        tags.application.as_deref().map(str::to_owned),
        kept(application)
    );
});
