-- Evictions (dealloc) and the last reset of pg_stat_statements (PG 14+).
SELECT /* perfscope */ dealloc, stats_reset FROM pg_stat_statements_info
