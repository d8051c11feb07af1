-- Whether the agent may call perfscope.sequence_positions() (created by
-- sql/install.sql); false when it is missing, not granted, or an earlier
-- install's (without the bounds of a descending sequence).
SELECT /* perfscope */ CASE
  WHEN to_regnamespace('perfscope') IS NULL THEN false
  -- to_regprocedure() raises in a schema the role may not use.
  WHEN NOT has_schema_privilege(to_regnamespace('perfscope'), 'USAGE') THEN false
  WHEN to_regprocedure('perfscope.sequence_positions()') IS NULL THEN false
  WHEN pg_get_function_result(to_regprocedure('perfscope.sequence_positions()')) NOT LIKE '%increment_by%' THEN false
  ELSE has_function_privilege(to_regprocedure('perfscope.sequence_positions()'), 'EXECUTE')
END
