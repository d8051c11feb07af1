-- Sequences past 75% of their maximum, through the helper sql/install.sql
-- creates (perfscope.sequence_positions(): every sequence, whatever the
-- agent's own privileges on it).
-- schema, name, last value, maximum
SELECT /* perfscope */ schema_name, sequence_name, last_value::float8, max_value::float8
FROM perfscope.sequence_positions()
WHERE last_value IS NOT NULL AND max_value > 0 AND last_value::float8 / max_value > 0.75
