-- The leading column of every valid index of a table.
-- $1: the table's oid (as bigint).
SELECT /* perfscope */ a.attname::text
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = $1::bigint::oid AND i.indisvalid
