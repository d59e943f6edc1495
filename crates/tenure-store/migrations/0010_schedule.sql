-- Schedules (issue 8): the single-scheduler lease, the last run of each scheduled job, and the
-- post-offboarding re-check's bookkeeping. Never edit an applied migration: add a new file.

-- One row per lease name ('scheduler'): only the process holding it runs the schedules when
-- several share a store. Liveness is the lease alone, as for operation claims.
CREATE TABLE schedule_lease (
    name   TEXT PRIMARY KEY,
    owner  TEXT NOT NULL,
    until  TEXT NOT NULL,
    since  TEXT NOT NULL
);

-- The last run of each job (`reconcile`, `checkpoint`, ...), so a restart does not run
-- everything again and an interval counts from the last run of any process.
CREATE TABLE schedule_runs (
    job      TEXT PRIMARY KEY,
    last_at  TEXT NOT NULL,
    outcome  TEXT NOT NULL,          -- ok | failed
    detail   TEXT NOT NULL,
    runs     INTEGER NOT NULL
);

-- Each leaver case close that the re-check has read the targets again for. A case reopened by
-- the re-check and closed again has a new `closed_at`, and is re-checked again after as long.
CREATE TABLE schedule_rechecks (
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    closed_at   TEXT NOT NULL,
    identity    TEXT NOT NULL,
    checked_at  TEXT NOT NULL,
    findings    INTEGER NOT NULL,
    PRIMARY KEY (case_id, closed_at)
);

-- The re-check looks for closed leaver cases by their close time.
CREATE INDEX cases_kind_closed ON cases(kind, state, closed_at);

-- The date jobs look, every tick, for identities whose end or start date has come, without
-- reading every identity: by the dates inside `attrs`, of those the date can still change.
CREATE INDEX identities_end_date ON identities(json_extract(attrs, '$.end_date')) WHERE status <> 'terminated';
CREATE INDEX identities_start_date ON identities(json_extract(attrs, '$.start_date')) WHERE status = 'prehire';
