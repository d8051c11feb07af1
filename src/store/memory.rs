//! SQLite's memory, bounded. SQLite allocates through the C allocator,
//! outside jemalloc and its statistics, and by default each connection
//! keeps a page cache of up to 2,000 KiB, a sort spills to disk only past
//! that, and nothing caps the sum: under load with a month in the file
//! the agent was measured at about 70 MiB resident (BENCHMARKS.md, "Agent
//! memory"). Here every connection's cache is sized explicitly and the
//! process's SQLite heap has a soft limit: past it SQLite gives back cache
//! pages and sorts spill to disk before it grows (bundled SQLite is built
//! with `SQLITE_ENABLE_MEMORY_MANAGEMENT`). A cache miss is a read from
//! the OS's file cache, so small caches cost little on a file this size.

use std::sync::Once;

use rusqlite::Connection;

/// The writer's page cache, KiB (its inserts touch the newest pages and
/// the series index).
pub const WRITER_CACHE_KIB: i64 = 1_024;
/// Each read connection's page cache, KiB.
pub const READER_CACHE_KIB: i64 = 512;
/// The soft limit on all of SQLite's heap in the process, bytes.
pub const SOFT_HEAP_LIMIT: i64 = 8 << 20;

/// Sets `conn`'s page cache to `kib` KiB and, once per process, SQLite's
/// soft heap limit.
pub fn bound(conn: &Connection, kib: i64) -> Result<(), rusqlite::Error> {
    static LIMIT: Once = Once::new();
    LIMIT.call_once(|| {
        // SAFETY: sqlite3_soft_heap_limit64 only stores the limit (under
        // SQLite's own mutex); it takes no pointer.
        let _ = unsafe { rusqlite::ffi::sqlite3_soft_heap_limit64(SOFT_HEAP_LIMIT) };
    });
    // A negative cache_size is KiB rather than pages.
    conn.pragma_update(None, "cache_size", -kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_gets_its_cache_and_the_process_its_limit() {
        let conn = Connection::open_in_memory().expect("open");
        bound(&conn, READER_CACHE_KIB).expect("bound");
        let cache: i64 = conn
            .query_row("PRAGMA cache_size", [], |row| row.get(0))
            .expect("cache_size");
        assert_eq!(cache, -READER_CACHE_KIB);
        let limit: i64 = conn
            .query_row("PRAGMA soft_heap_limit", [], |row| row.get(0))
            .expect("soft_heap_limit");
        assert_eq!(limit, SOFT_HEAP_LIMIT);
    }
}
