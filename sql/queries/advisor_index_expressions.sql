-- The leading expression of every valid index of a table that leads with an
-- expression (indkey[0] = 0), as the server deparses it.
-- $1: the table's oid (as bigint).
SELECT /* perfscope */ pg_get_indexdef(i.indexrelid, 1, true)
FROM pg_index i
WHERE i.indrelid = $1::bigint::oid AND i.indisvalid AND i.indkey[0] = 0
