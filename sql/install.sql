-- perfscope: what the agent needs in a watched database.
--
-- Run as a superuser (or the database owner with the right to create
-- extensions), once per watched database:
--
--     psql "$DATABASE_ADMIN_URL" -f sql/install.sql
--
-- and set the role's password yourself, outside any file:
--
--     ALTER ROLE perfscope PASSWORD '...';
--
-- pg_stat_statements must also be in shared_preload_libraries (see
-- sql/README.md); CREATE EXTENSION alone is not enough.

-- Statement statistics: the slow-query list and the index advisor.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

-- Hypothetical indexes, when the server has them (Debian:
-- postgresql-<major>-hypopg): confirms index suggestions with a cost
-- estimate. Optional.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg') THEN
    CREATE EXTENSION IF NOT EXISTS hypopg;
  END IF;
END
$$;

-- The agent's own role: it logs in, and nothing more by itself.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'perfscope') THEN
    CREATE ROLE perfscope LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
END
$$;

-- pg_monitor: read every statistics view and every session's statements
-- in pg_stat_statements (through pg_read_all_stats). Required.
GRANT pg_monitor TO perfscope;

-- Optional, each for one feature; uncomment what you want.
--
-- Index advice with EXPLAIN of the slow statements needs SELECT on their
-- tables (EXPLAIN checks the privileges of the statement it plans):
--     GRANT SELECT ON ALL TABLES IN SCHEMA public TO perfscope;
--
-- Cancel and terminate (POST /api/performance/activity/{pid}/{action}):
-- signal other roles' sessions (never a superuser's):
--     GRANT pg_signal_backend TO perfscope;
--
-- Maintenance (POST /api/performance/optimize): VACUUM, ANALYZE and
-- REINDEX need the table's owner, or on PostgreSQL 17+ pg_maintain:
--     GRANT pg_maintain TO perfscope;          -- PostgreSQL 17+
--     GRANT app_owner TO perfscope;            -- before 17: membership in the tables' owner role
