-- Table and database health: vacuum backlog, sequences near their limit,
-- transaction-ID age.
-- kind, schema, name, value, limit
SELECT /* perfscope */ 'vacuum_overdue'::text, schemaname::text, relname::text,
       n_dead_tup::float8, greatest(n_live_tup, 1)::float8
FROM pg_stat_user_tables
WHERE n_dead_tup >= 1000 AND n_dead_tup > 0.4 * greatest(n_live_tup, 1)
UNION ALL
SELECT 'sequence', schemaname::text, sequencename::text, last_value::float8, max_value::float8
FROM pg_sequences
WHERE last_value IS NOT NULL AND max_value > 0 AND last_value::float8 / max_value > 0.75
UNION ALL
SELECT 'wraparound', '', current_database()::text, age(datfrozenxid)::float8, 2147483647::float8
FROM pg_database
WHERE datname = current_database() AND age(datfrozenxid) > 1000000000
