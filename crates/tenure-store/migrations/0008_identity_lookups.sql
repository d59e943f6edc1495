-- Lookups a push needs without reading every identity: who holds an account name (a pushed
-- record must not take another identity's username) and which non-human identities a leaver
-- owns (they are transferred or revoked with the owner). Virtual columns over the attributes,
-- so every writer keeps them true without knowing they exist.
ALTER TABLE identities ADD COLUMN username_lc TEXT GENERATED ALWAYS AS (lower(json_extract(attrs, '$.username'))) VIRTUAL;
ALTER TABLE identities ADD COLUMN owner_id TEXT GENERATED ALWAYS AS (json_extract(attrs, '$.owner_id')) VIRTUAL;
CREATE INDEX identities_username ON identities(username_lc) WHERE username_lc IS NOT NULL;
CREATE INDEX identities_owner ON identities(owner_id) WHERE owner_id IS NOT NULL;
-- The push window: a source's batches by time.
CREATE INDEX imports_source_at ON imports(source, at);
