-- Replication slots and the WAL each keeps the server from removing:
-- from its restart_lsn to the current (primary) or last received
-- (standby) position. An inactive slot holding WAL fills the disk.
SELECT /* perfscope */ s.slot_name::text,
       s.slot_type::text,
       coalesce(s.database::text, '') AS database,
       s.active,
       coalesce(s.wal_status, '')::text AS wal_status,
       CASE WHEN s.restart_lsn IS NULL THEN NULL
            ELSE pg_wal_lsn_diff(
                   CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                   s.restart_lsn)
       END::float8 AS retained_bytes
FROM pg_replication_slots s
ORDER BY s.slot_name
