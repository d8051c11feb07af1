-- The largest tables (and materialized views) with their live-row
-- estimate, heap, TOAST and index sizes, and a statistics-based bloat
-- estimate: the pages the live rows would fill (row width from pg_stats,
-- plus the tuple header and line pointer, at the table's fillfactor)
-- against the pages the table has now (pg_relation_size, not relpages,
-- which is as old as the last VACUUM or ANALYZE). Live rows are the
-- statistics collector's n_live_tup, kept current by every insert and
-- delete; reltuples (as old as relpages) only where the collector knows
-- nothing of the table (after a statistics reset). The estimate needs
-- pg_stats rows, which Postgres shows only for columns the role may read:
-- without SELECT on a table its bloat is NULL. stale_statistics: more
-- rows changed since the table's last ANALYZE (or since it was created, if
-- never analyzed) than half its rows then plus 1000: the row width from
-- pg_stats, and the planner's plans, may be off.
-- $1: how many tables.
WITH widths AS (
  SELECT /* perfscope */ s.schemaname, s.tablename,
         sum((1 - s.null_frac) * s.avg_width) AS row_width,
         count(*) AS columns
  FROM pg_stats s
  WHERE NOT s.inherited
  GROUP BY 1, 2
),
tables AS (
  SELECT c.oid, n.nspname, c.relname, c.reltuples, c.reltoastrelid,
         CASE WHEN coalesce(st.n_live_tup, 0) + coalesce(st.n_dead_tup, 0) = 0
              THEN greatest(c.reltuples, 0) ELSE st.n_live_tup END::float8 AS live,
         st.n_mod_since_analyze AS modified,
         coalesce(pg_relation_size(c.oid), 0)::float8
           / current_setting('block_size')::int AS pages,
         coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int
                   FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid
  WHERE c.relkind IN ('r', 'm', 'p')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_toast'
)
SELECT t.nspname::text AS schema,
       t.relname::text AS name,
       t.live AS rows_estimate,
       coalesce(pg_relation_size(t.oid), 0)::bigint AS heap_bytes,
       coalesce(pg_total_relation_size(nullif(t.reltoastrelid, 0)), 0)::bigint AS toast_bytes,
       coalesce(pg_indexes_size(t.oid), 0)::bigint AS index_bytes,
       coalesce(pg_total_relation_size(t.oid), 0)::bigint AS total_bytes,
       t.modified AS modified_since_analyze,
       coalesce(t.modified > greatest(t.reltuples, 0) * 0.5 + 1000, false) AS stale_statistics,
       CASE WHEN w.row_width IS NULL OR t.pages < 10 THEN NULL
            ELSE greatest(t.pages - ceil(
                   t.live * (24 + 4 + w.row_width + 8 * ceil(w.columns / 64.0))
                   / ((current_setting('block_size')::int - 24) * t.fillfactor / 100.0)
                 ), 0) * current_setting('block_size')::int
       END::float8 AS bloat_bytes
FROM tables t
LEFT JOIN widths w ON w.schemaname = t.nspname AND w.tablename = t.relname
-- A relation dropped during the read has no size (NULL): it sorts last.
ORDER BY pg_total_relation_size(t.oid) DESC NULLS LAST, t.oid
LIMIT $1
