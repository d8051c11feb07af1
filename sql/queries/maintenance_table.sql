-- The table a maintenance request names, resolved through the catalog by
-- its exact names (no case folding: an advisor table "Orders" is never
-- orders), and whether the agent's role may maintain it: owner membership
-- or superuser, or on PostgreSQL 17+ the MAINTAIN privilege (pg_maintain,
-- or GRANT MAINTAIN ON the table). Older servers do not know the privilege
-- and refuse its name, so the CASE asks only 17+ (has_table_privilege is
-- not folded at planning: its table is a column).
-- $1: the schema, or NULL for the table visible on the search_path.
-- $2: the table's name.
SELECT /* perfscope */ n.nspname::text, c.relname::text,
       pg_has_role(current_user, c.relowner, 'MEMBER')
         OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         OR CASE WHEN current_setting('server_version_num')::int >= 170000
                 THEN has_table_privilege(current_user, c.oid, 'MAINTAIN')
                 ELSE false END AS may_maintain
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $2
  AND c.relkind IN ('r', 'm', 'p')
  AND CASE WHEN $1::text IS NULL THEN pg_table_is_visible(c.oid) ELSE n.nspname = $1 END
