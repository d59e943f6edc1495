-- Brownfield correlation (issue 9, point 5): which accounts found in a target before Tenure
-- managed it belong to whom. Never edit an applied migration: add a new file.

-- One row per target whose existing accounts were correlated (the first import that could read
-- it): later imports do not read it again for correlation.
CREATE TABLE correlation_baselines (
    target    TEXT PRIMARY KEY,
    at        TEXT NOT NULL,
    accounts  INTEGER NOT NULL,
    actor     TEXT NOT NULL
);

-- An account Tenure did not create that is linked to an identity, by a rule or by a person's
-- decision of a case. `enabled` and `grants` (JSON array) are the account as read, the state
-- Tenure's first plan for the identity on the target starts from.
CREATE TABLE correlation_links (
    target      TEXT NOT NULL,
    account     TEXT NOT NULL,
    identity    TEXT NOT NULL,
    rule        TEXT NOT NULL,          -- employee_number | username | email | name | person
    confidence  REAL NOT NULL,
    enabled     INTEGER NOT NULL,
    grants      TEXT NOT NULL,
    case_id     INTEGER,                -- the case a person decided, if any
    linked_by   TEXT NOT NULL,
    linked_at   TEXT NOT NULL,
    PRIMARY KEY (target, account)
);
CREATE UNIQUE INDEX correlation_links_identity ON correlation_links(target, identity);

-- An account the rules could not decide: two or more candidates, a match below the target's
-- `correlation_min_confidence`, one identity claimed by two accounts, or conflicting evidence.
-- `candidates` is a JSON array of {identity, rule, confidence}.
CREATE TABLE correlation_cases (
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
    reason       TEXT,
    UNIQUE (target, account)
);
CREATE INDEX correlation_cases_open ON correlation_cases(state) WHERE state = 'open';

-- The accounts the baseline read that no rule matched to anyone: an identity that arrives later
-- is correlated against them (its hand-made login is linked, not duplicated). A row leaves when
-- a rule matches it (then it is a link or a case).
CREATE TABLE correlation_unmatched (
    target       TEXT NOT NULL,
    account      TEXT NOT NULL,
    external_id  TEXT,
    email        TEXT,
    enabled      INTEGER NOT NULL,
    grants       TEXT NOT NULL,
    PRIMARY KEY (target, account)
);
