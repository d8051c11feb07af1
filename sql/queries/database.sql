-- Per-database figures: activity counters, buffer cache, size, dead
-- tuples and the connection limit.
SELECT /* perfscope */
    d.xact_commit,
    d.xact_rollback,
    d.blks_hit,
    d.blks_read,
    d.deadlocks,
    pg_database_size(d.datid) AS size_bytes,
    current_setting('max_connections')::int AS max_connections,
    (SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_user_tables) AS dead_tuples,
    (SELECT coalesce(sum(n_live_tup), 0)::bigint FROM pg_stat_user_tables) AS live_tuples
FROM pg_stat_database d
WHERE d.datname = current_database()
