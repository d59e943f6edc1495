-- Pushed HR records (signed webhooks, the events API), journaled durably before they are
-- acknowledged and ingested afterwards. A delivery id is accepted once per source: a repeat is
-- answered with the first response and has no second effect.
CREATE TABLE push_journal (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    delivery    TEXT NOT NULL,          -- webhook-id (or a generated id for the events API)
    actor       TEXT NOT NULL,          -- who pushed: source:hr, token:NAME
    received_at TEXT NOT NULL,
    records     TEXT NOT NULL,          -- JSON array of the checked records
    response    TEXT NOT NULL,          -- JSON: what the 202 said
    state       TEXT NOT NULL,          -- pending | ingested
    import_id   INTEGER REFERENCES imports(id),
    result      TEXT,                   -- JSON: per-record outcome once ingested
    UNIQUE (source, delivery)
);
CREATE INDEX push_journal_pending ON push_journal(id) WHERE state = 'pending';
