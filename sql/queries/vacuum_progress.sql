-- Progress of a running VACUUM. $1: the backend's pid.
SELECT /* perfscope */ phase::text, heap_blks_total::bigint, heap_blks_scanned::bigint
FROM pg_stat_progress_vacuum
WHERE pid = $1
