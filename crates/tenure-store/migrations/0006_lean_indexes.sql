-- `operations_identity` duplicates the prefix of `operations_group (identity, target, id)`: every
-- query by identity can use the latter, and each index costs an insert per operation (the
-- day-one import writes hundreds of thousands).
DROP INDEX IF EXISTS operations_identity;
