-- The texts of the given queryids in the watched database (read only for
-- queryids the agent has not seen, so texts are not loaded on every pass).
-- $1: bigint[] of queryids.
SELECT /* perfscope */ s.queryid, s.query
FROM pg_stat_statements(true) s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.queryid = ANY($1)
