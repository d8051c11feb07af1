-- Code a statement could run while it is planned, owned outside the
-- trusted set: functions it names (any overload, any schema), the code of
-- operators it names (and their selectivity estimators, which the planner
-- calls), casts to types it names and every implicit or assignment cast,
-- and whatever the relations it names bring in: views' rules (and the
-- relations they read, recursively), column defaults, constraints,
-- indexes (expressions, predicates) and row-level security policies,
-- found through pg_depend. Trusted: built-in objects (oid below
-- FirstNormalObjectId), members of an extension, and objects owned by the
-- roles the operator lists. Over-reading is the point: a name shared with
-- an untrusted function refuses the statement.
-- $1: text[] names; $2: text[] operators; $3: text[] trusted owner roles.
WITH RECURSIVE rel(oid) AS (
    SELECT c.oid FROM pg_class c WHERE c.relname = ANY($1)
    UNION
    SELECT ref.refobjid
    FROM rel
    JOIN pg_depend own ON own.refclassid = 'pg_class'::regclass
                      AND own.refobjid = rel.oid AND own.deptype IN ('a', 'i')
    JOIN pg_depend ref ON ref.classid = own.classid AND ref.objid = own.objid
                      AND ref.refclassid = 'pg_class'::regclass
),
member AS (
    SELECT d.classid, d.objid
    FROM rel
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass
                    AND d.refobjid = rel.oid AND d.deptype IN ('a', 'i')
),
operator AS (
    SELECT o.oid FROM pg_operator o WHERE o.oprname = ANY($2)
    UNION
    SELECT d.refobjid
    FROM member m
    JOIN pg_depend d ON d.classid = m.classid AND d.objid = m.objid
                    AND d.refclassid = 'pg_operator'::regclass
),
code(oid) AS (
    SELECT p.oid FROM pg_proc p WHERE p.proname = ANY($1)
    UNION
    SELECT d.refobjid
    FROM member m
    JOIN pg_depend d ON d.classid = m.classid AND d.objid = m.objid
                    AND d.refclassid = 'pg_proc'::regclass
    UNION
    SELECT unnest(ARRAY[o.oprcode::oid, o.oprrest::oid, o.oprjoin::oid])
    FROM pg_operator o JOIN operator USING (oid)
    UNION
    SELECT c.castfunc
    FROM pg_cast c JOIN pg_type t ON t.oid = c.casttarget
    WHERE c.castfunc <> 0 AND (c.castcontext IN ('i', 'a') OR t.typname = ANY($1))
)
SELECT /* perfscope */ format('function %I.%I', n.nspname, p.proname)
FROM code
JOIN pg_proc p ON p.oid = code.oid
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid >= 16384
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend e
      WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
  AND NOT EXISTS (
      SELECT 1 FROM pg_roles r WHERE r.oid = p.proowner AND r.rolname = ANY($3))
ORDER BY 1
LIMIT 5
