-- An account may have several correlation cases over time: a decided one is kept as decided,
-- and a later refused adoption of the same account opens a new one. At most one is open.
CREATE TABLE correlation_cases_v2 (
    id           INTEGER PRIMARY KEY,
    target       TEXT NOT NULL,
    account      TEXT NOT NULL,
    external_id  TEXT,
    email        TEXT,
    enabled      INTEGER NOT NULL,
    grants       TEXT NOT NULL,
    candidates   TEXT NOT NULL,
    why          TEXT NOT NULL,
    state        TEXT NOT NULL,         -- open | linked | orphaned
    created_at   TEXT NOT NULL,
    decided_at   TEXT,
    decided_by   TEXT,
    identity     TEXT,                  -- the identity a `linked` case was decided for
    reason       TEXT
);
INSERT INTO correlation_cases_v2
    SELECT id, target, account, external_id, email, enabled, grants, candidates, why, state, created_at,
           decided_at, decided_by, identity, reason
    FROM correlation_cases;
DROP TABLE correlation_cases;
ALTER TABLE correlation_cases_v2 RENAME TO correlation_cases;
CREATE INDEX correlation_cases_open ON correlation_cases(state) WHERE state = 'open';
CREATE UNIQUE INDEX correlation_cases_one_open ON correlation_cases(target, account) WHERE state = 'open';
CREATE INDEX correlation_cases_account ON correlation_cases(target, account);
