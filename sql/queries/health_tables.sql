-- Table and database health: vacuum backlog, transaction-ID age.
-- kind, schema, name, value, limit, detail
-- vacuum_overdue / vacuum_disabled: dead tuples over 40% of the live ones
-- (and at least 1000); value is the dead-to-live ratio, limit 0.4, detail
-- the two counts. vacuum_disabled when autovacuum is off for the table
-- (reloptions autovacuum_enabled=false) or for the server.
SELECT /* perfscope */
       CASE WHEN NOT current_setting('autovacuum')::bool
              OR EXISTS (SELECT 1 FROM unnest(c.reloptions) o
                         WHERE o LIKE 'autovacuum\_enabled=%'
                           AND NOT substring(o FROM '=(.*)$')::bool)
            THEN 'vacuum_disabled' ELSE 'vacuum_overdue' END::text,
       s.schemaname::text, s.relname::text,
       s.n_dead_tup::float8 / greatest(s.n_live_tup, 1), 0.4::float8,
       s.n_dead_tup || ' dead, ' || s.n_live_tup || ' live tuples'
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
WHERE s.n_dead_tup >= 1000 AND s.n_dead_tup > 0.4 * greatest(s.n_live_tup, 1)
UNION ALL
SELECT 'wraparound', '', current_database()::text, age(datfrozenxid)::float8, 1000000000::float8,
       'of ~2.1 billion'
FROM pg_database
WHERE datname = current_database() AND age(datfrozenxid) > 1000000000
