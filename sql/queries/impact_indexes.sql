-- The valid indexes of the database's own tables (the catalog's and
-- TOAST schemas left out), newest oid first, at most $1: the set the index
-- impact tracker compares pass to pass to notice a new index, with each
-- one's schema and name (unique together: an index rebuilt under its name,
-- by REINDEX CONCURRENTLY or with its table created again, has a new oid
-- but is not new).
-- $1: how many at most (bigint).
SELECT /* perfscope */ i.indexrelid::bigint, ic.relnamespace::bigint, ic.relname::text
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE i.indisvalid AND i.indisready
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp%'
ORDER BY i.indexrelid DESC
LIMIT $1::bigint
