-- Replication as this server sees it. Its standbys (of a primary, or of a
-- standby that cascades): each one's state
-- and its write/flush/replay lag (pg_stat_replication, seconds) and bytes
-- of WAL not yet replayed. On a standby: one row for itself (kind
-- 'self') with its replay lag (time since the last replayed transaction,
-- 0 when it has replayed all it received) and bytes received but not
-- replayed. pg_monitor reads pg_stat_replication in full.
SELECT /* perfscope */ 'standby'::text AS kind,
       coalesce(nullif(r.application_name, ''), host(r.client_addr), r.pid::text)::text AS name,
       coalesce(host(r.client_addr), 'local')::text AS client,
       coalesce(r.state, '')::text AS state,
       coalesce(r.sync_state, '')::text AS sync_state,
       extract(epoch FROM r.write_lag)::float8 AS write_lag,
       extract(epoch FROM r.flush_lag)::float8 AS flush_lag,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag,
       pg_wal_lsn_diff(
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
         r.replay_lsn)::float8 AS bytes_behind
FROM pg_stat_replication r
UNION ALL
SELECT 'self', 'self', '', 'recovering', '',
       NULL, NULL,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())
       END::float8,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8
WHERE pg_is_in_recovery()
ORDER BY 2
