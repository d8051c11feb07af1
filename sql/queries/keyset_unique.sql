-- Keyset pagination's check: whether the table ($1, quoted) exists, which
-- of the key columns ($2) it lacks, and whether the key orders its rows
-- uniquely: a valid, non-partial unique index (or primary key) whose
-- columns are all in the key and all NOT NULL (expression columns do not
-- count).
WITH t AS (SELECT to_regclass($1) AS oid)
SELECT /* perfscope */
    (SELECT oid FROM t) IS NOT NULL AS table_exists,
    ARRAY(
        SELECT k FROM unnest($2::text[]) AS k
        WHERE NOT EXISTS (
            SELECT 1 FROM pg_attribute a
            WHERE a.attrelid = (SELECT oid FROM t) AND a.attname = k
              AND a.attnum > 0 AND NOT a.attisdropped
        )
    ) AS missing,
    EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = (SELECT oid FROM t)
          AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM unnest(i.indkey::int2[]) AS c(attnum)
              LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = c.attnum
              WHERE c.attnum = 0 OR a.attname IS NULL
                 OR NOT (a.attname = ANY ($2::text[])) OR NOT a.attnotnull
          )
    ) AS unique_key
