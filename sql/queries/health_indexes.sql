-- Index health: invalid indexes, unused ones above a size floor, and
-- indexes whose columns lead another index of the same table (redundant).
-- $1: the size floor in bytes for unused indexes.
-- kind, schema, table, index, the index that covers it (redundant only), bytes
SELECT /* perfscope */ 'invalid'::text, n.nspname::text, t.relname::text, c.relname::text,
       NULL::text, coalesce(pg_relation_size(c.oid), 0)::float8
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'unused', s.schemaname::text, s.relname::text, s.indexrelname::text,
       NULL::text, coalesce(pg_relation_size(s.indexrelid), 0)::float8
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary
  AND pg_relation_size(s.indexrelid) >= $1
UNION ALL
SELECT 'redundant', n.nspname::text, t.relname::text, ca.relname::text, cb.relname::text,
       coalesce(pg_relation_size(ca.oid), 0)::float8
FROM pg_index a
JOIN pg_index b ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid
JOIN pg_class ca ON ca.oid = a.indexrelid
JOIN pg_class cb ON cb.oid = b.indexrelid
JOIN pg_class t ON t.oid = a.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE a.indisvalid AND b.indisvalid AND NOT a.indisunique
  AND a.indpred IS NULL AND b.indpred IS NULL AND a.indexprs IS NULL AND b.indexprs IS NULL
  AND ca.relam = cb.relam
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (b.indkey::text LIKE a.indkey::text || ' %'
       OR (b.indkey::text = a.indkey::text AND a.indexrelid > b.indexrelid))
