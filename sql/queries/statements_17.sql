-- pg_stat_statements for PostgreSQL 17 and later: as statements_14.sql,
-- with the I/O timing columns renamed (blk_read_time became
-- shared_blk_read_time, and local blocks got their own), and each entry's
-- `stats_since`: when its own statistics started, so an entry reset alone
-- (pg_stat_statements_reset(userid, dbid, queryid)) is told from a reset
-- of everything.
-- $1: the most rows to read per database.
-- $2: text[] of roles all of whose statements are the agent's (e.g. its
--     planner role); `agent_role` marks the agent's login role, whose
--     statements are the agent's only when their text is (src/pg/own.rs).
SELECT /* perfscope */
    s.queryid,
    s.userid = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS agent_role,
    s.userid IN (SELECT oid FROM pg_roles WHERE rolname = ANY($2::text[])) AS own_role,
    s.calls,
    s.total_exec_time,
    s.max_exec_time,
    s.rows,
    s.shared_blks_hit,
    s.shared_blks_read,
    s.shared_blk_read_time + s.shared_blk_write_time
      + s.local_blk_read_time + s.local_blk_write_time AS io_time,
    s.dbid::bigint,
    s.userid::bigint,
    s.toplevel,
    s.stats_since,
    s.temp_blks_written
FROM (
    SELECT p.*, row_number() OVER (PARTITION BY p.dbid ORDER BY p.total_exec_time DESC) AS rank
    FROM pg_stat_statements(false) p
    WHERE p.queryid IS NOT NULL
) s
WHERE s.rank <= $1
ORDER BY s.total_exec_time DESC
