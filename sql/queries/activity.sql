-- The client sessions of the current database, without the agent's own
-- (its role with its pools' application_name, or its maintenance
-- connection), with their ages and, for those waiting on a lock, the pids
-- that block them. pg_blocking_pids takes the lock manager's locks, so it
-- runs only for sessions that wait on a lock.
SELECT /* perfscope */
  a.pid,
  coalesce(a.usename::text, '') AS usename,
  coalesce(a.application_name, '') AS application_name,
  coalesce(host(a.client_addr), CASE WHEN a.client_port = -1 THEN 'local' ELSE '' END) AS client,
  coalesce(a.state, '') AS state,
  a.wait_event_type,
  a.wait_event,
  extract(epoch FROM clock_timestamp() - a.query_start)::float8 AS query_seconds,
  extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_seconds,
  extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS state_seconds,
  coalesce(a.query, '') AS query,
  a.backend_start::text AS backend_start,
  CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END AS blocked_by
FROM pg_stat_activity a
WHERE a.datname = current_database()
  AND a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND NOT (a.usename = current_user
           AND a.application_name IN (current_setting('application_name'), 'perfscope-maintenance'))
ORDER BY a.query_start NULLS LAST, a.pid
