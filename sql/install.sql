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

-- Sequence positions: pg_sequences shows last_value only to roles with
-- SELECT or USAGE on the sequence, so under pg_monitor alone the
-- "sequences near their maximum" check would see nothing. Rather than
-- SELECT on every sequence (which misses sequences created later) or
-- pg_read_all_data (which reads every table), one function in a schema of
-- its own returns each sequence's name, last value and bounds (maximum,
-- minimum, increment, start, whether it cycles), and nothing else. It runs as its owner (the superuser running this file),
-- takes no argument, pins its search_path, and only the perfscope role may
-- call it. A schema of that name made earlier by a role that is not a
-- superuser is refused: its owner could replace the function.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
             WHERE n.nspname = 'perfscope' AND NOT r.rolsuper) THEN
    RAISE EXCEPTION 'schema perfscope exists and is owned by a role that is not a superuser: drop it (or check who made it) before installing';
  END IF;
END
$$;
CREATE SCHEMA IF NOT EXISTS perfscope;
REVOKE ALL ON SCHEMA perfscope FROM PUBLIC;
GRANT USAGE ON SCHEMA perfscope TO perfscope;
-- Dropped first: an earlier install's function returned fewer columns (a
-- result type CREATE OR REPLACE cannot change).
DROP FUNCTION IF EXISTS perfscope.sequence_positions();
CREATE FUNCTION perfscope.sequence_positions()
  RETURNS TABLE (schema_name text, sequence_name text, last_value bigint, max_value bigint,
                 min_value bigint, increment_by bigint, start_value bigint, cycles boolean)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT n.nspname::text, c.relname::text, pg_sequence_last_value(c.oid), s.seqmax,
         s.seqmin, s.seqincrement, s.seqstart, s.seqcycle
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT pg_is_other_temp_schema(n.oid)
$$;
REVOKE ALL ON FUNCTION perfscope.sequence_positions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION perfscope.sequence_positions() TO perfscope;

-- The planner role: the only role that plans statements database users
-- wrote (index advice with hypopg, EXPLAIN on request). Planning is not
-- inert (the planner runs IMMUTABLE functions with constant arguments), so
-- the agent's own role never plans; this role logs in by itself, is a
-- member of no role, owns nothing and may only read the tables it is
-- given. The agent checks all of this before every planning session and
-- plans nothing if it does not hold. Set its password yourself
-- (ALTER ROLE perfscope_planner PASSWORD '...') and give it to the agent
-- as PERFSCOPE_PLANNER_USER / PERFSCOPE_PLANNER_PASSWORD, with
-- PERFSCOPE_PLAN_ROLES naming the application roles whose statements it
-- may plan.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'perfscope_planner') THEN
    CREATE ROLE perfscope_planner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
      NOINHERIT NOREPLICATION NOBYPASSRLS;
  END IF;
END
$$;
-- The advisor may plan a statement with real parameter values the host
-- app's pool sampled, bound as parameters (never in a statement's text);
-- the server must not log them beside the statements it logs. The
-- advisor plans no sample in a session where this is not 0.
ALTER ROLE perfscope_planner SET log_parameter_max_length = 0;

-- Optional, each for one feature; uncomment what you want.
--
-- Index advice and EXPLAIN need SELECT on the advised tables, for the
-- planner role only (EXPLAIN checks the privileges of the statement it
-- plans); never grant it to the agent's own role for this:
--     GRANT SELECT ON ALL TABLES IN SCHEMA public TO perfscope_planner;
--
-- Cancel and terminate (POST /api/performance/activity/{pid}/{action}):
-- signal other roles' sessions (never a superuser's):
--     GRANT pg_signal_backend TO perfscope;
--
-- Maintenance (POST /api/performance/optimize): VACUUM, ANALYZE and
-- REINDEX need the table's owner, or on PostgreSQL 17+ pg_maintain:
--     GRANT pg_maintain TO perfscope;          -- PostgreSQL 17+
--     GRANT app_owner TO perfscope;            -- before 17: membership in the tables' owner role
