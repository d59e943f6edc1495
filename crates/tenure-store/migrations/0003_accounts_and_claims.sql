-- The account name an identity's account has in a target, fixed when the account is created:
-- later operations act on it even if the identity's username changes.
ALTER TABLE accounts ADD COLUMN name TEXT;

-- Which executor process holds a running operation (`pid:start-time`), so that a second
-- executor never takes over a live one's work.
ALTER TABLE operations ADD COLUMN claimed_by TEXT;
