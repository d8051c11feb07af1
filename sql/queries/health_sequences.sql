-- Sequences past 75% of their range, through the helper sql/install.sql
-- creates (perfscope.sequence_positions(): every sequence, whatever the
-- agent's own privileges on it). The share used is from the start towards
-- the bound the sequence runs to: its maximum, or its minimum for a
-- descending one; a sequence that cycles never runs out.
-- schema, name, last value, the bound
SELECT /* perfscope */ schema_name, sequence_name, last_value::float8, bound::float8
FROM (
  SELECT schema_name, sequence_name, last_value, start_value, cycles,
         CASE WHEN increment_by > 0 THEN max_value ELSE min_value END AS bound
  FROM perfscope.sequence_positions()
) s
WHERE last_value IS NOT NULL AND NOT cycles AND bound <> start_value
  AND (last_value::float8 - start_value) / (bound::float8 - start_value) > 0.75
