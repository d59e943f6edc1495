-- Signed checkpoints of the audit chain head (Ed25519, see tenure-core::evidence). Append-only
-- like the audit table: a checkpoint is never updated or deleted by Tenure.
CREATE TABLE audit_checkpoints (
    id        INTEGER PRIMARY KEY,
    seq       INTEGER NOT NULL,       -- the audit record it signs (its own `audit.checkpoint` record)
    head      TEXT NOT NULL,          -- that record's hash
    at        TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL           -- base64 Ed25519 over the checkpoint message
);
CREATE INDEX audit_checkpoints_seq ON audit_checkpoints(seq);
