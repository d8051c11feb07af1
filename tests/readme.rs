//! The README's Rust snippets are compiled: each ```rust block of
//! README.md must appear verbatim in `examples/readme.rs`, which cargo
//! builds with the examples. Compared line by line after stripping each
//! side's common leading indentation (the example nests the snippets in
//! functions), so a README edit without the same edit there — or an API
//! change that breaks the copy there — fails. Reads files only: no
//! database, nothing built.

use std::path::Path;

/// One ```rust block: the README line of its opening fence and its lines.
struct Block {
    line: usize,
    lines: Vec<String>,
}

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every ```rust block of `markdown`, in order.
fn rust_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in markdown.lines().enumerate() {
        match open.as_mut() {
            None if line.trim_start().starts_with("```rust") => {
                open = Some(Block {
                    line: n + 1,
                    lines: Vec::new(),
                });
            }
            None => {}
            Some(_) if line.trim_start().starts_with("```") => {
                blocks.extend(open.take());
            }
            Some(block) => block.lines.push(line.to_owned()),
        }
    }
    assert!(open.is_none(), "README.md ends inside a ```rust block");
    blocks
}

/// `lines` without their common leading indentation and trailing blanks
/// (blank lines do not count towards the indentation).
fn dedent<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    let indent = lines
        .iter()
        .map(AsRef::as_ref)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| {
            let l = l.as_ref().trim_end();
            l.get(indent..).unwrap_or("").to_owned()
        })
        .collect()
}

/// Whether `snippet` appears as consecutive lines of `source`, each side
/// dedented on its own.
fn mirrored(snippet: &[String], source: &[&str]) -> bool {
    let wanted = dedent(snippet);
    !wanted.is_empty()
        && source
            .windows(wanted.len())
            .any(|window| dedent(window) == wanted)
}

#[test]
fn every_readme_rust_block_is_in_the_compiled_example() {
    let readme = read("README.md");
    let example = read("examples/readme.rs");
    let source: Vec<&str> = example.lines().collect();
    let blocks = rust_blocks(&readme);
    assert!(
        blocks.len() >= 10,
        "found only {} ```rust blocks in README.md",
        blocks.len()
    );
    let missing: Vec<String> = blocks
        .iter()
        .filter(|b| !mirrored(&b.lines, &source))
        .map(|b| {
            format!(
                "README.md:{}: this ```rust block has no verbatim copy in examples/readme.rs:\n{}",
                b.line,
                b.lines.join("\n")
            )
        })
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n\n"));
}

#[test]
fn a_changed_snippet_line_has_no_mirror() {
    let readme = read("README.md");
    let example = read("examples/readme.rs");
    let source: Vec<&str> = example.lines().collect();
    let blocks = rust_blocks(&readme);
    let block = blocks.first().expect("a ```rust block");
    assert!(mirrored(&block.lines, &source));

    let mut changed = block.lines.clone();
    let last = changed.len() - 1;
    changed[last].push_str(" // edited");
    assert!(!mirrored(&changed, &source), "an edited line still matched");

    // Re-indenting one line relative to the others is a change too.
    let mut shifted = block.lines.clone();
    shifted[0].insert_str(0, "    ");
    assert!(
        !mirrored(&shifted, &source),
        "a re-indented line still matched"
    );
}

#[test]
fn blocks_are_read_with_their_fence_line() {
    let markdown = "text\n```rust\nlet a = 1;\n```\n```sh\nls\n```\n```rust\n  fn f() {}\n```\n";
    let blocks = rust_blocks(markdown);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        (blocks[0].line, blocks[0].lines.as_slice()),
        (2, &["let a = 1;".to_owned()][..])
    );
    assert_eq!(blocks[1].line, 8);
    assert!(mirrored(
        &blocks[1].lines,
        &["mod m {", "      fn f() {}", "}"]
    ));
}
