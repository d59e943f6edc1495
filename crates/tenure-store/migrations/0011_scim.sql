-- SCIM resources pushed by `kind = "scim"` sources (DESIGN §12): one row per resource, its
-- normalized body exactly as the client wrote it (so unmapped attributes read back as
-- written), next to the identity key the body maps to. Every row belongs to one source; one
-- source never reads or writes another's.
CREATE TABLE scim_resources (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    -- A per-resource counter, bumped by every write; the ETag is `W/"<version>"`.
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The case-folded `userName`, unique per source and type.
    user_name TEXT,
    external_id TEXT,
    -- The identity key the resource maps to, unique per source: two Users never map to one
    -- identity.
    identity_key TEXT,
    PRIMARY KEY (source, kind, id)
);
CREATE UNIQUE INDEX scim_resources_user_name ON scim_resources (source, kind, user_name) WHERE user_name IS NOT NULL;
CREATE UNIQUE INDEX scim_resources_identity_key ON scim_resources (source, identity_key) WHERE identity_key IS NOT NULL;
CREATE INDEX scim_resources_external_id ON scim_resources (source, kind, external_id) WHERE external_id IS NOT NULL;
