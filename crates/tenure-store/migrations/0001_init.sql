-- Tenure store, version 1. Never edit an applied migration: add a new numbered file.

CREATE TABLE identities (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attrs       TEXT NOT NULL,          -- JSON object: attribute name -> value
    updated_at  TEXT NOT NULL
);
CREATE INDEX identities_source ON identities(source);

CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    file        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    at          TEXT NOT NULL,
    state       TEXT NOT NULL,          -- applied | held | approved | rejected | superseded
    summary     TEXT NOT NULL           -- JSON
);

CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    import_id     INTEGER REFERENCES imports(id),
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    identity      TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    changes       TEXT NOT NULL,        -- JSON array of {attribute, from, to}
    significant   INTEGER NOT NULL,
    note          TEXT,
    after         TEXT NOT NULL,        -- JSON: the identity after the event
    state         TEXT NOT NULL         -- applied | held | rejected | superseded
);
CREATE INDEX events_identity ON events(identity);
CREATE INDEX events_import ON events(import_id);

CREATE TABLE cases (
    id          INTEGER PRIMARY KEY,
    event_id    INTEGER NOT NULL REFERENCES events(id),
    identity    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,          -- open | closed | stuck
    opened_at   TEXT NOT NULL,
    closed_at   TEXT,
    revoke_ms   INTEGER                 -- time-to-revoke for leaver cases
);
CREATE INDEX cases_state ON cases(state);
CREATE INDEX cases_identity ON cases(identity);

CREATE TABLE operations (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER NOT NULL REFERENCES cases(id),
    identity        TEXT NOT NULL,
    target          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    entitlement     TEXT,
    reason          TEXT NOT NULL,      -- JSON {event, rules}
    idem_key        TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    verified_at     TEXT
);
CREATE INDEX operations_state ON operations(state);
CREATE INDEX operations_identity ON operations(identity);
CREATE INDEX operations_case ON operations(case_id);

-- Tenure's committed view of each account: what it has planned, pending operations included.
CREATE TABLE accounts (
    identity    TEXT NOT NULL,
    target      TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    PRIMARY KEY (identity, target)
);

CREATE TABLE grants (
    identity    TEXT NOT NULL,
    target      TEXT NOT NULL,
    entitlement TEXT NOT NULL,
    PRIMARY KEY (identity, target, entitlement)
);

CREATE TABLE approvals (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,      -- batch
    subject         INTEGER NOT NULL,   -- the import id for a held batch
    summary         TEXT NOT NULL,
    state           TEXT NOT NULL,      -- pending | approved | rejected | superseded
    created_at      TEXT NOT NULL,
    decided_at      TEXT,
    decided_by      TEXT,
    decision_reason TEXT
);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    identity    TEXT,
    target      TEXT,
    entitlement TEXT,
    reason      TEXT,
    approver    TEXT,
    outcome     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_identity ON audit(identity);
