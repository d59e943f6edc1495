-- Issue 10 (deliverables 4 and 5): the exceptions register as DESIGN §13 describes it.
-- Every exception may have a due date (when an accepted risk must be looked at again, or by
-- when an open one should be dealt with), and who closed it (resolved or accepted) and why.
-- The kinds grow in `tenure_core::ExceptionKind` (partial_removal, failed_revocation,
-- declined_fix); the column stays TEXT, so no rewrite of the table is needed.
ALTER TABLE exceptions ADD COLUMN due_at TEXT;
ALTER TABLE exceptions ADD COLUMN closed_by TEXT;
ALTER TABLE exceptions ADD COLUMN close_reason TEXT;
CREATE INDEX exceptions_open ON exceptions(state, kind, created_at);
-- The last verified credential rotation of an identity in a target is looked up per identity:
-- `rotate_credential` operations are few, so a partial index keeps the lookup cheap.
CREATE INDEX operations_rotations ON operations(identity, target, verified_at)
    WHERE kind = 'rotate_credential' AND state = 'verified';
