-- The texts of the given queryids in the watched database (read only for
-- queryids the agent has not seen, so texts are not loaded on every pass).
-- pg_stat_statements keeps one entry per role: `agent_role` marks the
-- agent's login role's text, which decides whether that role's entry is
-- the agent's own (src/pg/own.rs); another role's text is the one shown.
-- $1: bigint[] of queryids.
SELECT /* perfscope */ s.queryid, s.query,
       s.userid = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS agent_role
FROM pg_stat_statements(true) s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.queryid = ANY($1)
ORDER BY agent_role DESC
