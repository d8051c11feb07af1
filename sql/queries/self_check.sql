-- What the agent can do in this database, and why not.
SELECT /* perfscope */
    current_setting('server_version') AS server_version,
    current_setting('server_version_num')::int AS server_version_num,
    -- shared_preload_libraries itself is readable only by superusers and
    -- pg_read_all_settings; the library's own settings exist only once it
    -- is loaded, and anyone may see them.
    EXISTS (SELECT 1 FROM pg_settings WHERE name = 'pg_stat_statements.max') AS pgss_loaded,
    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS pgss_created,
    EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg') AS hypopg_available,
    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg') AS hypopg_created,
    pg_has_role(current_user, 'pg_monitor', 'MEMBER') AS pg_monitor,
    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
    current_setting('track_io_timing')::bool AS track_io_timing,
    current_user::text AS role,
    current_database()::text AS database,
    coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS encrypted,
    -- A Unix socket (no address) or loopback does not cross a network.
    coalesce(inet_server_addr() <<= '127.0.0.0/8'::inet OR inet_server_addr() = '::1'::inet, true) AS local,
    pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS signal_backend,
    -- sql/install.sql's helper that reads every sequence's position.
    CASE
      WHEN to_regnamespace('perfscope') IS NULL THEN false
      -- to_regprocedure() raises in a schema the role may not use.
      WHEN NOT has_schema_privilege(to_regnamespace('perfscope'), 'USAGE') THEN false
      WHEN to_regprocedure('perfscope.sequence_positions()') IS NULL THEN false
      WHEN pg_get_function_result(to_regprocedure('perfscope.sequence_positions()')) NOT LIKE '%increment_by%' THEN false
      ELSE has_function_privilege(to_regprocedure('perfscope.sequence_positions()'), 'EXECUTE')
    END AS sequence_positions,
    -- Active session history: other roles' sessions in pg_stat_activity
    -- (their statements, wait events) need pg_read_all_stats.
    pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') AS read_all_stats,
    current_setting('track_activity_query_size') AS track_activity_query_size,
    coalesce(current_setting('compute_query_id', true), 'off') AS compute_query_id
