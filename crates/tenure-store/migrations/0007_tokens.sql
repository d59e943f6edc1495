-- API tokens for `tenure serve` (DESIGN §10). Only the SHA-256 of a token is kept: the token
-- itself is shown once, when it is created, and never stored. A revoked token stays as a record
-- (who had access, and until when); a new token may then take its name.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the token text
    scope        TEXT NOT NULL,          -- admin | operator | approver | auditor | source
    source       TEXT,                   -- the one source a `source` token may push for
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    revoked_by   TEXT
);
-- One live token per name.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
