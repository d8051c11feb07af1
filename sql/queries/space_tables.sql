-- The largest tables (and materialized views) with their row estimate,
-- heap, TOAST and index sizes, and a statistics-based bloat estimate: the
-- pages the live rows would fill (row width from pg_stats, plus the tuple
-- header and line pointer, at the table's fillfactor) against the pages
-- the table has. The estimate needs pg_stats rows, which Postgres shows
-- only for columns the role may read: without SELECT on a table its bloat
-- is NULL. $1: how many tables.
WITH widths AS (
  SELECT /* perfscope */ s.schemaname, s.tablename,
         sum((1 - s.null_frac) * s.avg_width) AS row_width,
         count(*) AS columns
  FROM pg_stats s
  WHERE NOT s.inherited
  GROUP BY 1, 2
),
tables AS (
  SELECT c.oid, n.nspname, c.relname, c.reltuples, c.relpages, c.reltoastrelid,
         coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int
                   FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'm', 'p')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_toast'
)
SELECT t.nspname::text AS schema,
       t.relname::text AS name,
       greatest(t.reltuples, 0)::float8 AS rows_estimate,
       coalesce(pg_relation_size(t.oid), 0)::bigint AS heap_bytes,
       coalesce(pg_total_relation_size(nullif(t.reltoastrelid, 0)), 0)::bigint AS toast_bytes,
       coalesce(pg_indexes_size(t.oid), 0)::bigint AS index_bytes,
       coalesce(pg_total_relation_size(t.oid), 0)::bigint AS total_bytes,
       CASE WHEN w.row_width IS NULL OR t.relpages < 10 THEN NULL
            ELSE greatest(t.relpages::float8 - ceil(
                   greatest(t.reltuples, 0) * (24 + 4 + w.row_width + 8 * ceil(w.columns / 64.0))
                   / ((current_setting('block_size')::int - 24) * t.fillfactor / 100.0)
                 ), 0) * current_setting('block_size')::int
       END::float8 AS bloat_bytes
FROM tables t
LEFT JOIN widths w ON w.schemaname = t.nspname AND w.tablename = t.relname
-- A relation dropped during the read has no size (NULL): it sorts last.
ORDER BY pg_total_relation_size(t.oid) DESC NULLS LAST, t.oid
LIMIT $1
