//! The Database page's I/O panel: the server's `pg_stat_io` from the I/O
//! reader's last pass, one row per backend type, object and context, so
//! an operator sees who reads the disk (client backends or vacuum),
//! whether client backends evict and write buffers themselves, and each
//! row's buffer hit ratio. Before PostgreSQL 16 it says the view needs
//! 16+. Its own file because the page file holds the page's other views.

use maud::{Markup, html};

use crate::pg::readers::io::{IoSnapshot, NEEDS};
use crate::ui::format;

/// The I/O section of database `name` (`io`: the reader's last pass).
pub fn section(name: &str, io: Option<&IoSnapshot>) -> Markup {
    let count = |n: i64| format::count(u64::try_from(n).unwrap_or(0));
    let bytes = |b: f64| format::bytes(Some(b.max(0.0) as u64));
    html! {
        section.io {
            h2 { (name) span.muted { " · I/O by backend type (pg_stat_io, the whole server)" } }
            @match io {
                None => { p.empty { "Not read yet." } }
                Some(io) if !io.supported() => {
                    p.empty { (NEEDS) "; this server runs PostgreSQL " (io.server_version_num / 10_000) "." }
                }
                Some(io) if io.rows.is_empty() => { p.empty { "No I/O counted since the server's statistics were reset." } }
                Some(io) => {
                    div.scroll {
                        table {
                            thead { tr { th { "Backend type" } th { "Object" } th { "Context" }
                                th.num { "Reads" } th.num { "Read" } th.num { "Hits" } th.num { "Hit ratio" }
                                th.num { "Writes" } th.num { "Written" } th.num { "Extends" } th.num { "Evictions" }
                                @if io.timing { th.num { "Read time" } th.num { "Write time" } } } }
                            tbody {
                                @for r in &io.rows {
                                    tr {
                                        td { (r.backend_type) }
                                        td { (r.object) }
                                        td { (r.context) }
                                        td.num { (count(r.reads)) }
                                        td.num { (bytes(r.read_bytes)) }
                                        td.num { (count(r.hits)) }
                                        td.num { (format::percent(r.hit_ratio())) }
                                        td.num { (count(r.writes)) }
                                        td.num { (bytes(r.write_bytes)) }
                                        td.num { (count(r.extends)) }
                                        td.num.warn[r.backend_type == "client backend" && r.evictions > 0 && r.writes > 0] { (count(r.evictions)) }
                                        @if io.timing {
                                            td.num { (format::millis(r.read_time_ms)) }
                                            td.num { (format::millis(r.write_time_ms)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.muted {
                        "Cumulative since the server's statistics reset, the same for every database of the server (pg_io_operations_total, pg_io_bytes_total). "
                        @if !io.timing { "Read and write times need track_io_timing = on. " }
                        @if io.truncated { "Only the first rows are shown. " }
                        "Client backends that evict and write buffers themselves point at shared_buffers too small or the background writer behind."
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::readers::io::IoRow;

    #[test]
    fn the_panel_shows_rows_or_why_there_are_none() {
        let old = IoSnapshot {
            server_version_num: 150_018,
            ..IoSnapshot::default()
        };
        let page = section("default", Some(&old)).into_string();
        assert!(
            page.contains("pg_stat_io needs PostgreSQL 16+; this server runs PostgreSQL 15."),
            "{page}"
        );
        assert!(
            section("default", None)
                .into_string()
                .contains("Not read yet")
        );
        let new = IoSnapshot {
            server_version_num: 180_001,
            timing: true,
            rows: vec![IoRow {
                backend_type: "client backend".into(),
                object: "relation".into(),
                context: "bulkread".into(),
                reads: 25,
                read_bytes: 204_800.0,
                read_time_ms: Some(12.5),
                hits: 75,
                ..IoRow::default()
            }],
            ..IoSnapshot::default()
        };
        let page = section("default", Some(&new)).into_string();
        for expected in [
            "client backend",
            "bulkread",
            "75 %",
            "Read time",
            format::millis(Some(12.5)).as_str(),
        ] {
            assert!(page.contains(expected), "{expected} missing from {page}");
        }
        assert!(!page.contains("needs track_io_timing"), "{page}");
    }
}
