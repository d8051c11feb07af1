-- Without the helper: sequences past 75% of their range (from the start
-- towards the maximum, or the minimum for a descending one; one that
-- cycles never runs out) among those the agent may read (SELECT or USAGE,
-- as pg_sequences checks), and the number of sequences it may not read at
-- all (their last value is hidden from it).
-- readable, schema, name, last value, the bound (unreadable: one row with
-- the count as the last value). The privilege and the last value are read
-- in CASEs: the planner may test a pg_class row before its join to
-- pg_sequence, and both functions raise on what is not a sequence or not
-- readable.
WITH seqs AS (
  SELECT /* perfscope */ n.nspname, c.relname, c.oid, s.seqstart, s.seqcycle,
         CASE WHEN s.seqincrement > 0 THEN s.seqmax ELSE s.seqmin END AS bound,
         CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT,USAGE') END AS readable
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT pg_is_other_temp_schema(n.oid)
),
readable AS (
  SELECT nspname, relname, seqstart, bound,
         CASE WHEN readable THEN pg_sequence_last_value(oid) END::float8 AS last_value
  FROM seqs
  WHERE readable AND NOT seqcycle AND bound <> seqstart
  OFFSET 0
)
SELECT true, nspname::text, relname::text, last_value, bound::float8
FROM readable
WHERE (last_value - seqstart) / (bound::float8 - seqstart) > 0.75
UNION ALL
SELECT false, '', '', count(*)::float8, 0::float8
FROM seqs
WHERE NOT readable
HAVING count(*) > 0
