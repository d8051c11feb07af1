-- Code a statement could run while it is planned, owned outside the
-- trusted set: functions it names (any overload, any schema); the code,
-- selectivity estimators, commutators and negators of operators it names
-- (and of the comparison and pattern operators keywords imply: the caller
-- adds them); casts to types it names and every implicit or assignment
-- cast; the check constraints of domains and the subtype_diff of range
-- types it names or its relations' columns use; and whatever the relations
-- it names bring in, recursively: views' rules and the relations they read,
-- partitions and inheritance children, column defaults, constraints,
-- indexes (expressions, predicates) and row-level security policies, found
-- through pg_depend and pg_inherits.
-- Trusted: built-in objects (oid below FirstNormalObjectId), members of an
-- extension owned by a superuser or a listed role, and objects owned by a
-- superuser or a listed role. Over-reading is the point: a name shared
-- with an untrusted function refuses the statement.
-- $1: names; $2: operators; $3: trusted owner roles (all text[]).
WITH RECURSIVE trusted_owner AS (
    SELECT oid FROM pg_catalog.pg_roles WHERE rolsuper OR rolname = ANY ($3::text[])
),
rel(oid) AS (
    SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = ANY ($1::text[])
    UNION
    -- One recursive term (PostgreSQL allows one): the relations what a
    -- reached relation owns refers to, and its partitions and children.
    SELECT next.oid
    FROM rel
    CROSS JOIN LATERAL (
        SELECT ref.refobjid AS oid
        FROM pg_catalog.pg_depend own
        JOIN pg_catalog.pg_depend ref ON ref.classid = own.classid AND ref.objid = own.objid
                          AND ref.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
        WHERE own.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND own.refobjid = rel.oid AND own.deptype IN ('a', 'i')
        UNION ALL
        SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = rel.oid
    ) next
),
member AS (
    SELECT d.classid, d.objid
    FROM rel
    JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.refobjid = rel.oid AND d.deptype IN ('a', 'i')
),
operator(oid) AS (
    SELECT o.oid FROM pg_catalog.pg_operator o WHERE o.oprname = ANY ($2::text[])
    UNION
    SELECT d.refobjid
    FROM member m
    JOIN pg_catalog.pg_depend d ON d.classid = m.classid AND d.objid = m.objid
                    AND d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass
    UNION
    SELECT pg_catalog.unnest(ARRAY[o.oprcom, o.oprnegate])
    FROM operator JOIN pg_catalog.pg_operator o ON o.oid = operator.oid
),
type(oid) AS (
    SELECT t.oid FROM pg_catalog.pg_type t WHERE t.typname = ANY ($1::text[])
    UNION
    SELECT a.atttypid FROM rel JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION
    -- A domain's base type, an array's element type.
    SELECT next.oid
    FROM type
    JOIN pg_catalog.pg_type t ON t.oid = type.oid
    CROSS JOIN LATERAL (VALUES (t.typbasetype), (t.typelem)) AS next(oid)
    WHERE next.oid <> 0
),
code(oid) AS (
    SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.proname = ANY ($1::text[])
    UNION
    SELECT d.refobjid
    FROM member m
    JOIN pg_catalog.pg_depend d ON d.classid = m.classid AND d.objid = m.objid
                    AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    UNION
    SELECT pg_catalog.unnest(ARRAY[o.oprcode::oid, o.oprrest::oid, o.oprjoin::oid])
    FROM operator JOIN pg_catalog.pg_operator o ON o.oid = operator.oid
    UNION
    SELECT c.castfunc
    FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
    WHERE c.castfunc <> 0 AND (c.castcontext IN ('i', 'a') OR t.typname = ANY ($1::text[]))
    UNION
    -- Domain constraints (a NULL parameter coerced to a domain is checked).
    SELECT d.refobjid
    FROM type
    JOIN pg_catalog.pg_constraint k ON k.contypid = type.oid
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
                    AND d.objid = k.oid AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    UNION
    SELECT pg_catalog.unnest(ARRAY[r.rngsubdiff::oid, r.rngcanonical::oid])
    FROM type JOIN pg_catalog.pg_range r ON r.rngtypid = type.oid
)
SELECT /* perfscope */ pg_catalog.format('function %I.%I', n.nspname, p.proname)
FROM code
JOIN pg_catalog.pg_proc p ON p.oid = code.oid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid >= 16384
  AND p.proowner NOT IN (SELECT oid FROM trusted_owner)
  AND NOT EXISTS (
      SELECT 1
      FROM pg_catalog.pg_depend e
      JOIN pg_catalog.pg_extension x ON x.oid = e.refobjid
      WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid
        AND e.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND e.deptype = 'e'
        AND x.extowner IN (SELECT oid FROM trusted_owner))
ORDER BY 1
LIMIT 5
