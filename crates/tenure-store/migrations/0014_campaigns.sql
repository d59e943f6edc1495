-- Certification campaigns (issue 10): a campaign over a scope of held access, and one review item
-- per identity and entitlement in it. Never edit this file once applied: add a new one.

CREATE TABLE campaigns (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL,
    scope               TEXT NOT NULL,          -- target:NAME | role:ID | entitlement:T:NAME | privileged
    reviewer            TEXT NOT NULL,          -- manager | owner:NAME
    due_at              TEXT NOT NULL,          -- when unreviewed items take on_timeout
    escalate_after_secs INTEGER,                -- after creation, unreviewed items go to the reviewer's manager
    on_timeout          TEXT NOT NULL,          -- revoke | keep | escalate
    state               TEXT NOT NULL,          -- open | closed
    created_by          TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    closed_at           TEXT,
    closed_by           TEXT,
    timed_out_at        TEXT,                   -- when on_timeout was applied
    reminded_at         TEXT                    -- when the reviewers were reminded, a day before the due date
);

CREATE TABLE campaign_items (
    id            INTEGER PRIMARY KEY,
    campaign_id   INTEGER NOT NULL REFERENCES campaigns(id),
    identity      TEXT NOT NULL,
    target        TEXT NOT NULL,
    entitlement   TEXT NOT NULL,
    why           TEXT NOT NULL,               -- JSON array: role ids, `request:ID`, or `unmanaged/not in policy`
    reviewer      TEXT NOT NULL,               -- the reviewer's identity id
    decision      TEXT,                        -- keep | revoke
    justification TEXT,
    decided_at    TEXT,
    decided_by    TEXT,                        -- who decided: the reviewer, or `schedule:campaigns`
    note          TEXT,                        -- reassignment and escalation notes, oldest first
    escalated_at  TEXT,
    operation_id  INTEGER REFERENCES operations(id), -- the revoke that carries out a revoke decision
    applied_by    TEXT,                        -- who planned it: the reviewer's command, the schedule
    applied_at    TEXT,                        -- when it was planned
    not_held      INTEGER NOT NULL DEFAULT 0,  -- the access was gone when the decision was applied
    UNIQUE (campaign_id, identity, target, entitlement)
);
CREATE INDEX campaign_items_reviewer ON campaign_items(reviewer);
CREATE INDEX campaign_items_identity ON campaign_items(identity);
CREATE INDEX campaign_items_operation ON campaign_items(operation_id);

-- Significant movers whose requested (non-birthright) access was checked for a micro-review for
-- their new manager: once each, with the campaign it made (none when they held no requested
-- access).
CREATE TABLE mover_reviews (
    event_id    INTEGER PRIMARY KEY REFERENCES events(id),
    identity    TEXT NOT NULL,
    campaign_id INTEGER REFERENCES campaigns(id),
    checked_at  TEXT NOT NULL
);
