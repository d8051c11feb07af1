-- The table a maintenance request names, resolved through the catalog,
-- and whether the agent's role may maintain it (owner membership or
-- superuser; PostgreSQL 17's pg_maintain is checked separately).
-- $1: the table name as given (validated as [schema.]identifier first).
SELECT /* perfscope */ n.nspname::text, c.relname::text,
       pg_has_role(current_user, c.relowner, 'MEMBER')
         OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS may_maintain
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'm', 'p')
