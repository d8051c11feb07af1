-- What the index impact tracker keeps of new indexes: schema, index name,
-- table name, the definition, the leading column (NULL when the index
-- leads with an expression) and the leading element as the server
-- deparses it, and whether it enforces uniqueness or a constraint (kept
-- for that whatever its speed).
-- $1: the indexes' oids (bigint[]).
SELECT /* perfscope */ i.indexrelid::bigint, n.nspname::text, ic.relname::text, t.relname::text,
       pg_get_indexdef(i.indexrelid), a.attname::text, pg_get_indexdef(i.indexrelid, 1, true),
       i.indisunique OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_attribute a
  ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] AND i.indkey[0] <> 0
WHERE i.indexrelid::bigint = ANY ($1::bigint[])
