-- Execution: manual tickets, exceptions (control debt), reconciliation findings.

-- The account name an operation acts on when it is not derived from an identity (orphans).
ALTER TABLE operations ADD COLUMN account TEXT;
-- A short note on how the operation ended (`already done`, `ticket 4 opened`).
ALTER TABLE operations ADD COLUMN note TEXT;

CREATE TABLE tickets (
    id           INTEGER PRIMARY KEY,
    operation_id INTEGER NOT NULL UNIQUE REFERENCES operations(id),
    target       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    identity     TEXT NOT NULL,
    summary      TEXT NOT NULL,
    state        TEXT NOT NULL,          -- open | done
    created_at   TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    done_at      TEXT,
    done_by      TEXT,
    evidence     TEXT
);
CREATE INDEX tickets_state ON tickets(state);

CREATE TABLE exceptions (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,           -- overdue_ticket | failed_operation | accepted_sod | manual_override
    subject     TEXT NOT NULL,           -- e.g. `ticket:4`, `operation:17`
    case_id     INTEGER,
    identity    TEXT,
    target      TEXT,
    owner       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    state       TEXT NOT NULL,           -- open | resolved
    created_at  TEXT NOT NULL,
    resolved_at TEXT,
    UNIQUE (kind, subject)
);

CREATE TABLE recon_runs (
    id        INTEGER PRIMARY KEY,
    target    TEXT NOT NULL,
    at        TEXT NOT NULL,
    accounts  INTEGER NOT NULL,
    grants    INTEGER NOT NULL,
    findings  INTEGER NOT NULL,
    millis    INTEGER NOT NULL
);

CREATE TABLE findings (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES recon_runs(id),
    kind        TEXT NOT NULL,           -- orphan | drift | missing | sod | ambiguous
    target      TEXT NOT NULL,
    account     TEXT,
    identity    TEXT,
    entitlement TEXT,
    detail      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX findings_run ON findings(run_id);

-- Claiming looks for earlier unfinished operations of the same identity and target.
CREATE INDEX operations_group ON operations(identity, target, id);
