-- A column compared with LIKE: its type, whether its effective collation is
-- C (then a plain B-tree serves a prefix; otherwise only a *_pattern_ops
-- operator class does), and whether a valid B-tree index already leads with
-- it in a way a prefix can use (a *_pattern_ops class, or the C collation).
-- $1: the table's oid (as bigint); $2: the column.
WITH db AS (
  SELECT datcollate::text AS db_collate FROM pg_database WHERE datname = current_database()
)
SELECT /* perfscope */ t.typname::text,
       coalesce(CASE WHEN co.collname = 'default' THEN (SELECT db_collate FROM db)
                     ELSE co.collcollate::text END IN ('C', 'POSIX'), false) AS c_collation,
       EXISTS (
         SELECT 1
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
         JOIN pg_opclass opc ON opc.oid = i.indclass[0]
         LEFT JOIN pg_collation ico ON ico.oid = i.indcollation[0]
         WHERE i.indrelid = a.attrelid AND i.indisvalid AND i.indkey[0] = a.attnum
           AND (opc.opcname::text LIKE '%\_pattern\_ops'
                OR coalesce(CASE WHEN ico.collname = 'default' THEN (SELECT db_collate FROM db)
                                 ELSE ico.collcollate::text END IN ('C', 'POSIX'), false))
       ) AS indexed
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = $1::bigint::oid AND a.attname = $2::text AND a.attnum > 0 AND NOT a.attisdropped
