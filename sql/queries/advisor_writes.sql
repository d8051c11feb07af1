-- A table's write counters for the advisor's weighing of an index's write
-- cost (rates come from the change between two of its passes): rows
-- inserted, updated, updated HOT and deleted, the table's valid indexes,
-- the server's clock, and the seconds since the server started (pg_stat_statements' window
-- where its reset time is unknown).
-- $1: the table's oid (as bigint).
SELECT /* perfscope */ s.n_tup_ins, s.n_tup_upd, s.n_tup_hot_upd, s.n_tup_del,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid AND i.indisvalid),
       extract(epoch FROM now())::float8,
       greatest(extract(epoch FROM now() - pg_postmaster_start_time()), 1)::float8
FROM pg_stat_user_tables s
WHERE s.relid = $1::bigint::oid
