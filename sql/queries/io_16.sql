-- pg_stat_io on PostgreSQL 16 and 17: server-wide I/O by backend type,
-- object and context. Counts are in units of op_bytes (the block size for
-- every row of these versions), so bytes are count × op_bytes. A NULL cell
-- is an operation that combination never does: read as 0. Rows with no
-- operation at all are left out; $1 caps the rest (the view has a fixed
-- set of a few dozen rows).
SELECT /* perfscope */ backend_type::text AS backend_type,
       object::text AS object,
       context::text AS context,
       coalesce(reads, 0) AS reads,
       coalesce(reads, 0)::float8 * coalesce(op_bytes, 0) AS read_bytes,
       coalesce(read_time, 0)::float8 AS read_time,
       coalesce(writes, 0) AS writes,
       coalesce(writes, 0)::float8 * coalesce(op_bytes, 0) AS write_bytes,
       coalesce(write_time, 0)::float8 AS write_time,
       coalesce(writebacks, 0) AS writebacks,
       coalesce(extends, 0) AS extends,
       coalesce(extends, 0)::float8 * coalesce(op_bytes, 0) AS extend_bytes,
       coalesce(hits, 0) AS hits,
       coalesce(evictions, 0) AS evictions,
       coalesce(reuses, 0) AS reuses,
       coalesce(fsyncs, 0) AS fsyncs
FROM pg_stat_io
WHERE coalesce(reads, 0) + coalesce(writes, 0) + coalesce(writebacks, 0)
      + coalesce(extends, 0) + coalesce(hits, 0) + coalesce(evictions, 0)
      + coalesce(reuses, 0) + coalesce(fsyncs, 0) > 0
ORDER BY backend_type, object, context
LIMIT $1
