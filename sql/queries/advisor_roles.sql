-- For each given queryid of the watched database, a role that ran it
-- among the roles whose statements may be planned (PERFSCOPE_PLAN_ROLES).
-- $1: bigint[] queryids; $2: text[] role names.
SELECT DISTINCT ON (s.queryid) /* perfscope */ s.queryid, r.rolname::text
FROM pg_stat_statements(false) s
JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.queryid = ANY ($1)
  AND r.rolname = ANY ($2)
ORDER BY s.queryid, array_position($2, r.rolname::text)
