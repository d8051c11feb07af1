-- pg_stat_statements for PostgreSQL 14 to 16: every statement of every
-- database of the server, with its database's oid, without query texts
-- (fetched for new queryids only), and without an entry's own reset time
-- (`stats_since` is 17+). pg_stat_statements scans its whole
-- shared hash whatever the filter, so it is read once per server and
-- interval and each watched database takes its rows (src/pg/readers/server.rs).
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
    s.blk_read_time + s.blk_write_time AS io_time,
    s.dbid::bigint,
    s.userid::bigint,
    s.toplevel,
    NULL::timestamptz AS stats_since,
    s.temp_blks_written
FROM (
    SELECT p.*, row_number() OVER (PARTITION BY p.dbid ORDER BY p.total_exec_time DESC) AS rank
    FROM pg_stat_statements(false) p
    WHERE p.queryid IS NOT NULL
) s
WHERE s.rank <= $1
ORDER BY s.total_exec_time DESC
