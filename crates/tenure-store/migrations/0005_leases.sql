-- Lease claims. A running operation is held by `claimed_by` (a token random per executor run)
-- until `claimed_until`; the executor renews the lease while it works, and the next claim takes
-- over an operation whose lease has passed. Liveness is the lease alone, so executors on several
-- hosts can share one store. A running operation without a lease (claimed before this
-- migration, by a process id) counts as expired.
ALTER TABLE operations ADD COLUMN claimed_until TEXT;
