-- The table a statement names, resolved from the parser's parts (never by
-- parsing a name, so no name can raise an error): a qualified name in its
-- schema, an unqualified one along the search_path of the statement's role
-- (pg_catalog, the role's own schema, public), with its row estimate: the
-- last ANALYZE's, or for a table never analyzed (reltuples -1) its size at
-- about 100 bytes a row, as the planner too falls back on the size.
-- $1: schema or NULL; $2: table; $3: the statement's role or NULL.
SELECT /* perfscope */ c.oid::bigint, n.nspname::text, c.relname::text,
       CASE WHEN c.reltuples < 0 THEN pg_relation_size(c.oid) / 100
            ELSE c.reltuples::bigint END AS row_estimate
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $2::text
  AND c.relkind IN ('r', 'p', 'm')
  AND CASE WHEN $1::text IS NOT NULL THEN n.nspname = $1::text
           ELSE n.nspname = ANY (ARRAY['pg_catalog', $3::text, 'public']) END
ORDER BY array_position(ARRAY['pg_catalog', $3::text, 'public'], n.nspname::text)
LIMIT 1
