-- Access requests (issue 10): a requestable role asked for one identity, its approval stages
-- in order, and the grant's expiry. Never edit an applied migration: add a new file.

CREATE TABLE requests (
    id            INTEGER PRIMARY KEY,
    role          TEXT NOT NULL,
    identity      TEXT NOT NULL,
    requester     TEXT NOT NULL,          -- who asked (a token's name, or the CLI's --as)
    via           TEXT NOT NULL,          -- how they were identified: `token:NAME`, `cli --as`, `cli`
    reason        TEXT NOT NULL,
    duration_secs INTEGER,                -- NULL: no expiry
    entitlements  TEXT NOT NULL,          -- JSON array of `TARGET:NAME`
    state         TEXT NOT NULL,          -- pending | granted | rejected | expired | revoked | cancelled
    created_at    TEXT NOT NULL,
    decided_at    TEXT,                   -- when the last stage approved, or one rejected
    expires_at    TEXT,                   -- decided_at + duration, once granted
    ended_at      TEXT,
    ended_by      TEXT,
    end_reason    TEXT
);
CREATE INDEX requests_by_identity ON requests (identity, state);
CREATE INDEX requests_by_expiry ON requests (state, expires_at);

-- One row per approval stage, in order. A stage is `waiting` until the one before it approves,
-- then `pending` with its approval row, then `approved` or `rejected`; the stages after a
-- rejection, or of a request that ended, are `cancelled`.
CREATE TABLE request_stages (
    request_id   INTEGER NOT NULL REFERENCES requests(id),
    stage        INTEGER NOT NULL,
    rule         TEXT NOT NULL,           -- manager | owner:NAME | sod:RULE
    approver     TEXT NOT NULL,           -- the identity id (or name) that must decide
    approval_id  INTEGER REFERENCES approvals(id),
    state        TEXT NOT NULL,
    decided_by   TEXT,
    decided_at   TEXT,
    via          TEXT,
    PRIMARY KEY (request_id, stage)
);
CREATE UNIQUE INDEX request_stages_by_approval ON request_stages (approval_id);
