-- The table a maintenance request names, resolved through the catalog by
-- its exact names (no case folding: an advisor table "Orders" is never
-- orders), and whether the agent's role may maintain it (owner membership
-- or superuser; PostgreSQL 17's pg_maintain is checked separately).
-- $1: the schema, or NULL for the table visible on the search_path.
-- $2: the table's name.
SELECT /* perfscope */ n.nspname::text, c.relname::text,
       pg_has_role(current_user, c.relowner, 'MEMBER')
         OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS may_maintain
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $2
  AND c.relkind IN ('r', 'm', 'p')
  AND CASE WHEN $1::text IS NULL THEN pg_table_is_visible(c.oid) ELSE n.nspname = $1 END
