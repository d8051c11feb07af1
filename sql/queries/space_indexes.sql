-- The largest indexes with their table, scans, and for B-trees a
-- statistics-based bloat estimate: the leaf pages the entries would fill
-- (key width from pg_stats plus the index tuple header and line pointer,
-- at the default fillfactor of 90) against the pages the index has. NULL
-- where pg_stats has no row for a key column (expressions, or no SELECT
-- on the table). $1: how many indexes.
WITH keys AS (
  SELECT i.indexrelid,
         sum((1 - s.null_frac) * s.avg_width) AS key_width,
         count(s.attname) = count(*) AS complete
  FROM pg_index i
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  CROSS JOIN LATERAL unnest(i.indkey) AS k(attnum)
  LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = t.relname
                      AND s.attname = a.attname AND NOT s.inherited
  GROUP BY i.indexrelid
)
SELECT /* perfscope */ n.nspname::text AS schema,
       c.relname::text AS name,
       t.relname::text AS table_name,
       am.amname::text AS method,
       coalesce(pg_relation_size(c.oid), 0)::bigint AS bytes,
       coalesce(st.idx_scan, 0)::bigint AS scans,
       CASE WHEN am.amname <> 'btree' OR NOT coalesce(k.complete, false) OR c.relpages < 10 THEN NULL
            ELSE greatest(c.relpages::float8 - 1 - ceil(
                   greatest(c.reltuples, 0) * (8 + 4 + ceil(k.key_width / 8.0) * 8)
                   / ((current_setting('block_size')::int - 24 - 16) * 0.9)
                 ), 0) * current_setting('block_size')::int
       END::float8 AS bloat_bytes
FROM pg_class c
JOIN pg_index i ON i.indexrelid = c.oid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_stat_user_indexes st ON st.indexrelid = c.oid
LEFT JOIN keys k ON k.indexrelid = c.oid
WHERE c.relkind = 'i'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'
ORDER BY pg_relation_size(c.oid) DESC NULLS LAST, c.oid
LIMIT $1
