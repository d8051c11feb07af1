-- Client connections to the whole server by state (max_connections is
-- server-wide), and how many of them are to the watched database.
SELECT /* perfscope */
    coalesce(state, 'unknown') AS state,
    count(*)::bigint AS total,
    count(*) FILTER (WHERE datname = current_database())::bigint AS here
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1
