-- The planner session's backend pid and start (what a later terminate
-- must match), and why its role may not plan (NULL when it may): the
-- planner role must be a plain login role, a member of no other role (no
-- pg_monitor, no pg_signal_backend, no owner role) and with no member
-- (no other role can act as it or set its defaults), owning nothing in this
-- database (relations, functions, schemas, types, operators, extensions,
-- large objects, the database itself), and not the agent's own login role.
-- $1: the agent's login role (text, may be NULL).
SELECT /* perfscope */ pg_catalog.pg_backend_pid(),
    CASE
        WHEN r.rolname = $1::text
            THEN 'it is the agent''s own role'
        WHEN r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls
            THEN 'it has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS'
        WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid)
            THEN 'it is a member of ' || (
                SELECT pg_catalog.string_agg(pg_catalog.quote_ident(g.rolname), ', ' ORDER BY g.rolname)
                FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
                WHERE m.member = r.oid)
        WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.roleid = r.oid)
            THEN 'other roles are members of it: ' || (
                SELECT pg_catalog.string_agg(pg_catalog.quote_ident(g.rolname), ', ' ORDER BY g.rolname)
                FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.member
                WHERE m.roleid = r.oid)
        WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relowner = r.oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proowner = r.oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspowner = r.oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_type WHERE typowner = r.oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator WHERE oprowner = r.oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extowner = r.oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata WHERE lomowner = r.oid)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datdba = r.oid)
            THEN 'it owns objects in this database (or the database itself)'
    END,
    (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a WHERE a.pid = pg_catalog.pg_backend_pid())
FROM pg_catalog.pg_roles r
WHERE r.rolname = current_user
