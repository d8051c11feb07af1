-- What the I/O reader needs to know before it reads pg_stat_io: the
-- server version (the view exists on 16+, its byte columns differ on 18)
-- and whether track_io_timing fills its *_time columns (else they are 0).
SELECT /* perfscope */ current_setting('server_version_num')::int AS version,
       current_setting('track_io_timing')::bool AS timing
