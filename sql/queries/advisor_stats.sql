-- Distinct values per column from the planner's statistics (visible only
-- for columns the role may SELECT). n_distinct < 0 is a share of the rows.
-- $1: schema, $2: table.
SELECT /* perfscope */ attname::text, n_distinct::float8
FROM pg_stats
WHERE schemaname = $1 AND tablename = $2
