-- The table a statement names, resolved through the catalog (search_path
-- and quoting as the server sees them), with its row estimate.
-- $1: the table as written in the statement.
SELECT /* perfscope */ c.oid::bigint, n.nspname::text, c.relname::text,
       greatest(c.reltuples, 0)::bigint AS row_estimate
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'm')
