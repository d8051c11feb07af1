-- Whether the agent may call perfscope.sequence_positions() (created by
-- sql/install.sql); false when it is missing or not granted.
SELECT /* perfscope */ CASE
  WHEN to_regprocedure('perfscope.sequence_positions()') IS NULL THEN false
  ELSE has_schema_privilege('perfscope', 'USAGE')
   AND has_function_privilege(to_regprocedure('perfscope.sequence_positions()'), 'EXECUTE')
END
