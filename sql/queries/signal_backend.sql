-- Cancels ($2 = 'cancel') or terminates ($2 = 'terminate') the backend $1,
-- only when it is one of the client sessions of the current database the
-- activity view lists (never the agent's own, never another database's,
-- never a background process), and when $3 is given only if it is still
-- the session that started then (a pid is reused once its backend ends).
-- No row: not such a session.
SELECT /* perfscope */
  CASE $2
    WHEN 'cancel' THEN pg_cancel_backend(a.pid)
    WHEN 'terminate' THEN pg_terminate_backend(a.pid)
  END AS signalled
FROM pg_stat_activity a
WHERE a.pid = $1
  AND a.datname = current_database()
  AND a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND ($3::text IS NULL OR a.backend_start::text = $3)
  AND NOT (a.usename = current_user
           AND a.application_name IN (current_setting('application_name'), 'perfscope-maintenance'))
