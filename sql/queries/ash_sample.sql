-- One sample of the active session history of a server: every active
-- client session of every database (pg_stat_activity is cluster-wide),
-- without the agent's own (its role with its pools' application_name, or
-- its maintenance connection, or a role only the agent uses: $1), of the
-- databases watched ($2). ASH counts active sessions only: a session idle
-- in a transaction holds locks but spends no database time, and the
-- activity view already flags it.
--
-- The first columns are the server's connection slots as the budget reads
-- them (SESSION_SETUP): the sampler keeps its connection only while the
-- server keeps PERFSCOPE_DB_CONNECTION_HEADROOM free. A row with a NULL
-- pid is that reading alone (no active session).
--
-- pg_blocking_pids takes the lock manager's locks, so it runs only for
-- sessions waiting on a lock, and only its first pid is read: the
-- blocker's statement comes from the same sample (a blocker idle in its
-- transaction shows the last statement it ran). query_id exists from
-- PostgreSQL 14, the oldest supported: one version band.
WITH a AS MATERIALIZED (
  SELECT pid, datname, usename, application_name, state, wait_event_type,
         wait_event, query_id, query
  FROM pg_stat_activity
  WHERE backend_type = 'client backend'
),
r AS (
  SELECT current_setting('max_connections')::int AS max_connections,
         current_setting('superuser_reserved_connections')::int
           + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved,
         (SELECT count(*)::int FROM a) AS in_use
)
SELECT /* perfscope */
  r.max_connections, r.reserved, r.in_use,
  s.pid, s.datname, s.wait_event_type, s.wait_event, s.query_id, s.query,
  s.usename, s.application_name, s.blocker_query
FROM r
LEFT JOIN LATERAL (
  SELECT a.pid,
         a.datname::text AS datname,
         a.wait_event_type,
         a.wait_event,
         a.query_id,
         coalesce(a.query, '') AS query,
         coalesce(a.usename::text, '') AS usename,
         coalesce(a.application_name, '') AS application_name,
         CASE WHEN a.wait_event_type = 'Lock' THEN
           (SELECT b.query FROM a b WHERE b.pid = (pg_blocking_pids(a.pid))[1])
         END AS blocker_query
  FROM a
  WHERE a.state = 'active'
    AND a.pid <> pg_backend_pid()
    AND a.datname::text = ANY($2::text[])
    AND NOT (coalesce(a.usename::text, '') = current_user
             AND coalesce(a.application_name, '') IN (current_setting('application_name'), 'perfscope-maintenance'))
    AND NOT (coalesce(a.usename::text, '') = ANY($1::text[]))
) s ON true
