//! The embedded store: SQLite in WAL mode, one writer at a time and readers beside it.
//!
//! `mod.rs` opens the file (private modes, no symlinks, read-only and `immutable` opens) and
//! applies the embedded migrations; [`lifecycle`] holds identities, batches, approvals, cases and
//! events, [`queue`] the operation queue with its leases, tickets, exceptions, findings and
//! retention, [`audit`] the hash chain and its checkpoints. The trait impls at the bottom of
//! this file are the boundary: inside, code works with [`Error`] (which wraps `rusqlite`'s);
//! out of it come only [`StoreError`]s, carrying the database's message and no SQLite type.

mod audit;
mod browse;
mod campaigns;
mod correlation;
mod credentials;
mod exceptions;
mod lifecycle;
mod push;
mod queue;
mod readers;
mod requests;
mod schedule;
mod scim;
mod tokens;

use crate::records::*;
use crate::scim::{ScimKind, ScimLookup, ScimOutcome, ScimResource, ScimWrite};
use crate::{BackendError, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tenure_core::audit::{AuditEntry, AuditRecord};
use tenure_core::clock::{Clock, stamp};
use tenure_core::evidence::Checkpoint;
use tenure_core::plan::{Holdings, Queued};
use tenure_core::{Identity, OpState, Schema};

/// Embedded, numbered, append-only migrations. Never edit one that has been released.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (2, "execution", include_str!("../../migrations/0002_execution.sql")),
    (3, "accounts_and_claims", include_str!("../../migrations/0003_accounts_and_claims.sql")),
    (4, "audit_checkpoints", include_str!("../../migrations/0004_audit_checkpoints.sql")),
    (5, "leases", include_str!("../../migrations/0005_leases.sql")),
    (6, "lean_indexes", include_str!("../../migrations/0006_lean_indexes.sql")),
    (7, "tokens", include_str!("../../migrations/0007_tokens.sql")),
    (8, "identity_lookups", include_str!("../../migrations/0008_identity_lookups.sql")),
    (9, "push_journal", include_str!("../../migrations/0009_push_journal.sql")),
    (10, "schedule", include_str!("../../migrations/0010_schedule.sql")),
    (11, "scim", include_str!("../../migrations/0011_scim.sql")),
    (12, "correlation", include_str!("../../migrations/0012_correlation.sql")),
    (13, "requests", include_str!("../../migrations/0013_requests.sql")),
    (14, "campaigns", include_str!("../../migrations/0014_campaigns.sql")),
    (15, "exceptions_nhi", include_str!("../../migrations/0015_exceptions_nhi.sql")),
    (16, "correlation_case_history", include_str!("../../migrations/0016_correlation_case_history.sql")),
];

/// The version of the last embedded migration.
pub(crate) fn latest_migration() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// An error inside the SQLite store: SQLite's own, or one of the store's. Never leaves this
/// module: the trait impls turn it into a [`StoreError`].
#[derive(Debug)]
pub(crate) enum Error {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sql(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Sql(e) => StoreError::Backend(BackendError::new(e.to_string())),
            Error::Store(e) => e,
        }
    }
}

pub(crate) type R<T> = std::result::Result<T, Error>;

pub(crate) fn conflict(why: impl Into<String>) -> Error {
    Error::Store(StoreError::Conflict(why.into()))
}

pub(crate) fn corrupt(what: impl Into<String>) -> Error {
    Error::Store(StoreError::Corrupt(what.into()))
}

pub(crate) fn not_found(what: impl Into<String>) -> Error {
    Error::Store(StoreError::NotFound(what.into()))
}

pub(crate) fn parse_enum<T: std::str::FromStr<Err = String>>(s: &str) -> R<T> {
    s.parse().map_err(corrupt)
}

/// A column holding one of a `string_enum!`'s names.
pub(crate) fn enum_col<T: std::str::FromStr<Err = String>>(r: &rusqlite::Row<'_>, i: usize) -> R<T> {
    let s: String = r.get(i)?;
    parse_enum(&s)
}

/// How a count from SQL (never negative) is held in Rust.
/// The rows of `all` (no parameters) when `identities` is `None`, else of `one` run once per
/// identity (its `?1`), each passed to `row`: the shape of the per-identity lookups planning
/// makes over the whole population or over the identities of one batch.
pub(crate) fn rows_for_identities(
    all: &mut rusqlite::CachedStatement<'_>,
    one: &mut rusqlite::CachedStatement<'_>,
    identities: Option<&[&str]>,
    mut row: impl FnMut(&rusqlite::Row<'_>) -> R<()>,
) -> R<()> {
    let mut read = |mut rows: rusqlite::Rows<'_>| -> R<()> {
        while let Some(r) = rows.next()? {
            row(r)?;
        }
        Ok(())
    };
    match identities {
        None => read(all.query([])?),
        Some(ids) => ids.iter().try_for_each(|id| read(one.query([id])?)),
    }
}

pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn sql_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub struct SqliteStore {
    /// Read-only connections for stand-alone reads, beside the writer; `None` for in-memory
    /// and read-only stores.
    // INVARIANT: declared before `conn`, so the readers close first. The last connection to
    // close checkpoints the write-ahead log into the database file and removes it, and only the
    // writer may: closed after it, the readers would leave every change in `-wal`, and a copy of
    // the database file alone would miss them.
    readers: Option<readers::Readers>,
    /// The one writer (and the reader where there is no pool).
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("clock", &self.clock).finish_non_exhaustive()
    }
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// How to open a store file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Read only: nothing is created and no migration runs, so a read-only copy of the database
    /// owned by someone else can be verified and exported. Writes fail.
    pub read_only: bool,
    /// Accept a database file or directory that is a symbolic link (`[store] allow_symlink`).
    pub allow_symlink: bool,
}

fn open_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Store(StoreError::Open { path: path.display().to_string(), reason: reason.into() })
}

/// The directory a store file lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Refuses a symlinked database file or directory: a link planted there would redirect the
/// evidence (or the writes) to a file of someone else's choosing.
fn refuse_symlinks(path: &Path) -> R<()> {
    let is_link = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    let hint = "set `allow_symlink = true` in [store] to accept one";
    if is_link(path) {
        return Err(open_error(path, format!("it is a symbolic link; {hint}")));
    }
    // Every directory on the way, not only the last: `link/sub/t.db` is redirected by `link`.
    for dir in path.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
        if is_link(dir) {
            return Err(open_error(
                path,
                format!("its path passes through `{}`, a symbolic link; {hint}", dir.display()),
            ));
        }
    }
    Ok(())
}

/// Creates the store's directory (0700) and file (0600) before SQLite opens it, so the
/// database and its `-wal` and `-shm` files (which SQLite gives the database's mode) are never
/// readable by other users. Existing files keep their modes.
fn create_private(path: &Path) -> R<()> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let dir = parent_dir(path);
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| open_error(path, e.to_string()))?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(open_error(path, e.to_string())),
    }
}

/// `file:` URI of `path` with `immutable=1`, percent-encoding everything but unreserved bytes.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

fn probe(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
}

pub(crate) fn has_table(conn: &Connection, name: &str) -> R<bool> {
    let n: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| r.get(0))?;
    Ok(n > 0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// A symlinked path is refused; see [`SqliteStore::open_with`].
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> crate::Result<Self> {
        Self::open_with(path, StoreOptions::default(), clock)
    }

    /// Opens the database at `path` as `options` say; every timestamp comes from `clock`.
    pub fn open_with(path: &Path, options: StoreOptions, clock: Arc<dyn Clock>) -> crate::Result<Self> {
        Ok(Self::open_inner(path, options, clock)?)
    }

    fn open_inner(path: &Path, options: StoreOptions, clock: Arc<dyn Clock>) -> R<Self> {
        if !options.allow_symlink {
            refuse_symlinks(path)?;
        }
        if options.read_only {
            return Self::open_read_only(path, clock);
        }
        create_private(path)?;
        let conn = Connection::open(path).map_err(|e| open_error(path, e.to_string()))?;
        let mut store = Self::init(conn, clock)?;
        store.readers = Some(readers::Readers::new(path, readers::MAX_READERS));
        Ok(store)
    }

    /// A read-only connection. SQLite reads a WAL database through its `-shm` file, which it
    /// creates beside the database if it can; when it cannot (a read-only directory), the file
    /// is opened `immutable`, which is only sound without a pending write-ahead log.
    fn open_read_only(path: &Path, clock: Arc<dyn Clock>) -> R<Self> {
        use rusqlite::OpenFlags;
        if !path.exists() {
            return Err(open_error(path, "no such file (nothing has been stored yet)"));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e.to_string()))?;
        let conn = match probe(&conn) {
            Ok(_) => conn,
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
                ) =>
            {
                drop(conn);
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                    return Err(open_error(
                        path,
                        format!(
                            "its directory is not writable and `{}` holds changes SQLite cannot read without it; make a clean copy with `sqlite3 DB \".backup COPY\"`",
                            Path::new(&wal).display()
                        ),
                    ));
                }
                let conn = Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
                    .map_err(|e| open_error(path, e.to_string()))?;
                probe(&conn).map_err(|e| open_error(path, e.to_string()))?;
                conn
            }
            Err(e) => return Err(open_error(path, e.to_string())),
        };
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "query_only", "ON")?;
        if !has_table(&conn, "schema_migrations")? {
            return Err(open_error(path, "not a Tenure store (it has no schema_migrations table)"));
        }
        {
            let mut stmt = conn.prepare("SELECT version, checksum FROM schema_migrations")?;
            let applied = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in applied {
                let (version, sum) = row?;
                if MIGRATIONS.iter().any(|(v, _, sql)| *v == version && checksum(sql) != sum) {
                    return Err(Error::Store(StoreError::MigrationChanged { version }));
                }
            }
        }
        Ok(Self { readers: None, conn: Mutex::new(conn), clock })
    }

    /// An in-memory store, for tests and simulations.
    pub fn memory(clock: Arc<dyn Clock>) -> crate::Result<Self> {
        let conn = Connection::open_in_memory().map_err(Error::from)?;
        Ok(Self::init(conn, clock)?)
    }

    fn init(conn: Connection, clock: Arc<dyn Clock>) -> R<Self> {
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )?;
        let store = Self { readers: None, conn: Mutex::new(conn), clock };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> R<()> {
        let at = self.now();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (version, name, sql) in MIGRATIONS {
            let applied: Option<String> = tx
                .query_row("SELECT checksum FROM schema_migrations WHERE version = ?1", [version], |r| r.get(0))
                .optional()?;
            match applied {
                Some(sum) if sum == checksum(sql) => {}
                Some(_) => return Err(Error::Store(StoreError::MigrationChanged { version: *version })),
                None => {
                    tx.execute_batch(sql)?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
                        params![version, name, checksum(sql), at],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A poisoned lock only means another thread panicked mid-call; SQLite rolled back its
        // transaction, so the connection itself is still consistent.
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection for a read that stands alone (no write before it in the same call): a pooled
    /// reader, which sees the last commit and waits for no writer; the writer where there is no
    /// pool.
    pub(crate) fn read(&self) -> R<readers::Reader<'_>> {
        match &self.readers {
            Some(pool) => Ok(readers::Reader::Pooled(pool.get()?)),
            None => Ok(readers::Reader::Writer(self.lock())),
        }
    }

    /// The store clock's current time, as stored.
    pub(crate) fn now(&self) -> String {
        stamp(self.clock.now())
    }

    /// The store clock's time `by` from now, as stored.
    pub(crate) fn after(&self, by: Duration) -> String {
        stamp(self.clock.now() + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX))
    }
}

// The boundary: each method runs its SQLite implementation and converts the error.

impl crate::Store for SqliteStore {
    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn identities(&self, schema: &Schema, source: Option<&str>) -> crate::Result<Vec<Identity>> {
        Ok(lifecycle::identities(&*self.read()?, schema, source)?)
    }

    fn identity(&self, schema: &Schema, id: &str) -> crate::Result<Option<Identity>> {
        Ok(lifecycle::identity(&*self.read()?, schema, id)?)
    }

    fn holdings(&self, identity: &str) -> crate::Result<Holdings> {
        Ok(lifecycle::holdings(&*self.read()?, identity)?)
    }

    fn all_holdings(&self) -> crate::Result<HashMap<String, Holdings>> {
        Ok(lifecycle::all_holdings(&*self.read()?)?)
    }

    fn queued(&self, identities: Option<&[&str]>) -> crate::Result<HashMap<String, Vec<Queued>>> {
        Ok(lifecycle::queued(&*self.read()?, identities)?)
    }

    fn foreign_identities(&self, source: &str) -> crate::Result<HashMap<String, String>> {
        Ok(lifecycle::foreign_identities(&*self.read()?, source)?)
    }

    fn last_import(&self, source: &str) -> crate::Result<Option<i64>> {
        Ok(lifecycle::last_import(&*self.read()?, source)?)
    }

    fn held_batches(&self) -> crate::Result<Vec<HeldBatch>> {
        Ok(lifecycle::held_batches(&*self.read()?)?)
    }

    fn commit_batch(&self, schema: &Schema, batch: &Batch) -> crate::Result<BatchIds> {
        let mut events = batch.events.iter().map(std::borrow::Cow::Borrowed);
        Ok(lifecycle::commit_batch(self, schema, batch, &mut events)?)
    }

    fn commit_stream(
        &self,
        schema: &Schema,
        batch: &Batch,
        events: &mut dyn Iterator<Item = EventIn>,
    ) -> crate::Result<BatchIds> {
        let mut events = events.map(std::borrow::Cow::Owned);
        Ok(lifecycle::commit_batch(self, schema, batch, &mut events)?)
    }

    fn approvals(&self, pending_only: bool) -> crate::Result<Vec<ApprovalRecord>> {
        Ok(lifecycle::approvals(&*self.read()?, pending_only)?)
    }

    fn approval(&self, id: i64) -> crate::Result<ApprovalRecord> {
        Ok(lifecycle::approval(&*self.read()?, id)?)
    }

    fn held_events(&self, schema: &Schema, import_id: i64) -> crate::Result<Vec<HeldEvent>> {
        Ok(lifecycle::held_events(&*self.read()?, schema, import_id)?)
    }

    fn reject(&self, id: i64, by: &str, reason: &str) -> crate::Result<()> {
        Ok(lifecycle::reject(self, id, by, None, reason)?)
    }

    fn operations(&self, filter: &OpFilter) -> crate::Result<Vec<OpRecord>> {
        Ok(lifecycle::operations(&*self.read()?, filter)?)
    }

    fn cases(&self, open_only: bool) -> crate::Result<Vec<CaseRecord>> {
        Ok(lifecycle::cases(&*self.read()?, open_only)?)
    }

    fn events(&self, identity: &str) -> crate::Result<Vec<EventRecord>> {
        Ok(lifecycle::events(&*self.read()?, identity)?)
    }

    fn audit(&self, entries: &[AuditEntry]) -> crate::Result<()> {
        Ok(audit::append_now(self, entries)?)
    }

    fn scan_audit(&self, filter: &AuditFilter, visit: &mut dyn FnMut(AuditRecord) -> bool) -> crate::Result<()> {
        Ok(audit::scan(&*self.read()?, filter, visit)?)
    }

    fn verify_audit(&self) -> crate::Result<VerifyReport> {
        Ok(audit::verify(&*self.read()?)?)
    }

    fn checkpoints(&self) -> crate::Result<Vec<Checkpoint>> {
        Ok(audit::checkpoints(&*self.read()?)?)
    }

    fn append_checkpoint(
        &self,
        entry: &AuditEntry,
        sign: &dyn Fn(&AuditRecord) -> Checkpoint,
    ) -> crate::Result<Checkpoint> {
        Ok(audit::append_checkpoint(self, entry, sign)?)
    }
}

impl crate::Queue for SqliteStore {
    fn claim(&self, owner: &str, lease: Duration, limit: usize) -> crate::Result<Vec<OpRecord>> {
        Ok(queue::claim(self, owner, lease, limit)?)
    }

    fn renew(&self, owner: &str, ops: &[i64], lease: Duration) -> crate::Result<usize> {
        Ok(queue::renew(self, owner, ops, lease)?)
    }

    fn finish_many(&self, done: &[Finished], release: &[i64], owner: &str) -> crate::Result<usize> {
        Ok(queue::finish_many(self, done, release, owner)?)
    }

    fn retry_failed(&self, by: &str) -> crate::Result<usize> {
        Ok(queue::retry_failed(self, by)?)
    }

    fn queue_counts(&self) -> crate::Result<BTreeMap<OpState, i64>> {
        Ok(queue::queue_counts(&*self.read()?)?)
    }

    fn next_wake_at(&self) -> crate::Result<Option<String>> {
        Ok(queue::next_wake_at(&*self.read()?)?)
    }

    fn open_ticket(
        &self,
        op: &OpRecord,
        ticket_owner: &str,
        summary: &str,
        due_at: &str,
        owner: &str,
    ) -> crate::Result<i64> {
        Ok(queue::open_ticket(self, op, ticket_owner, summary, due_at, owner)?)
    }

    fn tickets(&self, open_only: bool) -> crate::Result<Vec<TicketRecord>> {
        Ok(queue::tickets(self, open_only)?)
    }

    fn complete_ticket(&self, id: i64, by: &str, evidence: &str) -> crate::Result<TicketRecord> {
        Ok(queue::complete_ticket(self, id, by, evidence)?)
    }

    fn flag_overdue(&self, actor: &str) -> crate::Result<Vec<ExceptionRecord>> {
        Ok(queue::flag_overdue(self, actor)?)
    }

    fn exceptions(&self, open_only: bool) -> crate::Result<Vec<ExceptionRecord>> {
        Ok(queue::exceptions(&*self.read()?, open_only)?)
    }

    fn record_recon(&self, run: &ReconRun, findings: &[Finding], actor: &str) -> crate::Result<i64> {
        Ok(queue::record_recon(self, run, findings, actor)?)
    }

    fn findings(&self, run_id: i64) -> crate::Result<Vec<Finding>> {
        Ok(queue::findings(&*self.read()?, run_id)?)
    }

    fn commit_remediation(&self, r: &Remediation) -> crate::Result<(usize, Option<i64>)> {
        Ok(queue::commit_remediation(self, r)?)
    }

    fn release_remediation_as(&self, approval_id: i64, approver: &str, actor: &str) -> crate::Result<usize> {
        Ok(queue::release_remediation(self, approval_id, approver, actor)?)
    }

    fn retention_candidates(&self, target: &str) -> crate::Result<Vec<RetentionCandidate>> {
        Ok(queue::retention_candidates(&*self.read()?, target)?)
    }

    fn plan_retention(
        &self,
        target: &str,
        due: &[RetentionCandidate],
        cutoff: &str,
        actor: &str,
    ) -> crate::Result<usize> {
        Ok(queue::plan_retention(self, target, due, cutoff, actor)?)
    }
}

impl crate::Schedules for SqliteStore {
    fn lead(&self, owner: &str, lease: Duration) -> crate::Result<crate::Lead> {
        Ok(schedule::lead(self, owner, lease)?)
    }

    fn release_lead(&self, owner: &str) -> crate::Result<()> {
        Ok(schedule::release_lead(self, owner)?)
    }

    fn date_candidates(
        &self,
        schema: &Schema,
        source: &str,
        ends_before: &str,
        starts_by: &str,
    ) -> crate::Result<Vec<Identity>> {
        Ok(schedule::date_candidates(&*self.read()?, schema, source, ends_before, starts_by)?)
    }

    fn job_runs(&self) -> crate::Result<Vec<crate::JobRun>> {
        Ok(schedule::job_runs(&*self.read()?)?)
    }

    fn record_job(&self, owner: &str, done: &crate::JobDone) -> crate::Result<()> {
        Ok(schedule::record_job(self, owner, done)?)
    }

    fn recheck_candidates(&self, closed_before: &str) -> crate::Result<Vec<crate::RecheckCandidate>> {
        Ok(schedule::recheck_candidates(&*self.read()?, closed_before)?)
    }

    fn record_rechecks(
        &self,
        rechecks: &[crate::Recheck],
        held: Option<&str>,
        actor: &str,
    ) -> crate::Result<crate::RecheckIds> {
        Ok(schedule::record_rechecks(self, rechecks, held, actor)?)
    }
}

impl crate::ScimStore for SqliteStore {
    fn scim_get(&self, source: &str, kind: ScimKind, id: &str) -> crate::Result<Option<ScimResource>> {
        Ok(scim::get(&*self.read()?, source, kind, id)?)
    }

    fn scim_list(
        &self,
        source: &str,
        kind: ScimKind,
        lookup: Option<ScimLookup<'_>>,
    ) -> crate::Result<Vec<ScimResource>> {
        Ok(scim::list(&*self.read()?, source, kind, lookup)?)
    }

    fn scim_write(&self, schema: &Schema, write: &ScimWrite, batch: Option<&Batch>) -> crate::Result<ScimOutcome> {
        Ok(scim::write(self, schema, write, batch)?)
    }
}

#[cfg(test)]
mod tests;

impl crate::Credentials for SqliteStore {
    fn plan_rotations(&self, r: &crate::Rotations) -> crate::Result<Vec<crate::Planned>> {
        Ok(credentials::plan(self, r)?)
    }

    fn last_rotations(
        &self,
        identities: Option<&[&str]>,
    ) -> crate::Result<std::collections::HashMap<(String, String), String>> {
        Ok(credentials::last(&*self.read()?, identities)?)
    }
}

impl crate::Exceptions for SqliteStore {
    fn open_exception(&self, x: &crate::NewException<'_>, actor: &str) -> crate::Result<ExceptionRecord> {
        Ok(exceptions::open(self, x, actor)?)
    }

    fn exception(&self, id: i64) -> crate::Result<Option<ExceptionRecord>> {
        Ok(exceptions::get(&*self.read()?, id)?)
    }

    fn close_exception(&self, c: &crate::CloseException<'_>) -> crate::Result<ExceptionRecord> {
        Ok(exceptions::close(self, c)?)
    }

    fn exception_counts(&self) -> crate::Result<Vec<crate::OpenByKind>> {
        Ok(exceptions::counts(&*self.read()?)?)
    }
}

impl crate::Tokens for SqliteStore {
    fn create_token(&self, token: &crate::NewToken<'_>) -> crate::Result<crate::TokenRecord> {
        Ok(tokens::create(self, token)?)
    }

    fn tokens(&self, include_revoked: bool) -> crate::Result<Vec<crate::TokenRecord>> {
        Ok(tokens::list(&*self.read()?, include_revoked)?)
    }

    fn token_by_hash(&self, hash: &str) -> crate::Result<Option<crate::TokenRecord>> {
        Ok(tokens::by_hash(&*self.read()?, hash)?)
    }

    fn touch_token(&self, id: i64) -> crate::Result<()> {
        Ok(tokens::touch(self, id)?)
    }

    fn revoke_token(&self, name: &str, by: &str) -> crate::Result<crate::TokenRecord> {
        Ok(tokens::revoke(self, name, by)?)
    }
}

impl crate::Correlations for SqliteStore {
    fn baselines(&self) -> crate::Result<Vec<(String, String)>> {
        Ok(correlation::baselines(&*self.read()?)?)
    }

    fn record_baseline(&self, baseline: &crate::Baseline<'_>) -> crate::Result<Vec<i64>> {
        Ok(correlation::record_baseline(self, baseline)?)
    }

    fn unmatched_accounts(&self) -> crate::Result<Vec<(String, crate::Unmatched)>> {
        Ok(correlation::unmatched(&*self.read()?)?)
    }

    fn record_late_matches(&self, matches: &crate::LateMatches<'_>) -> crate::Result<Vec<i64>> {
        Ok(correlation::record_late(self, matches)?)
    }

    fn correlation_links(&self, target: Option<&str>) -> crate::Result<Vec<crate::LinkRecord>> {
        Ok(correlation::links(&*self.read()?, target)?)
    }

    fn correlation_cases(&self, open_only: bool) -> crate::Result<Vec<crate::CorrelationCase>> {
        Ok(correlation::cases(&*self.read()?, open_only)?)
    }

    fn correlation_case(&self, id: i64) -> crate::Result<crate::CorrelationCase> {
        Ok(correlation::case(&*self.read()?, id)?)
    }

    fn decide_correlation(&self, decision: &crate::Decision<'_>) -> crate::Result<crate::CorrelationCase> {
        Ok(correlation::decide(self, decision)?)
    }

    fn refuse_adoption(&self, refused: &crate::RefusedAdoption<'_>) -> crate::Result<Option<i64>> {
        Ok(correlation::refuse_adoption(self, refused)?)
    }
}

impl crate::Browse for SqliteStore {
    fn applied_schema_version(&self) -> crate::Result<i64> {
        Ok(browse::applied_schema_version(&*self.read()?)?)
    }

    fn identity_page(&self, schema: &Schema, query: &crate::IdentityQuery) -> crate::Result<Vec<Identity>> {
        Ok(browse::identity_page(&*self.read()?, schema, query)?)
    }

    fn latest_findings(&self) -> crate::Result<Vec<Finding>> {
        Ok(browse::latest_findings(&*self.read()?, None)?)
    }

    fn latest_findings_of(&self, identity: &str) -> crate::Result<Vec<Finding>> {
        Ok(browse::latest_findings(&*self.read()?, Some(identity))?)
    }

    fn operation_counts(&self, leavers_only: bool) -> crate::Result<Vec<crate::TargetCount>> {
        Ok(browse::operation_counts(&*self.read()?, leavers_only)?)
    }

    fn audit_page(&self, filter: &AuditFilter, after_seq: i64, limit: usize) -> crate::Result<Vec<AuditRecord>> {
        Ok(browse::audit_page(&*self.read()?, filter, after_seq, limit)?)
    }

    fn revoke_times(&self) -> crate::Result<Vec<i64>> {
        Ok(browse::revoke_times(&*self.read()?)?)
    }
}

// Access requests (issue 10).
impl crate::requests::Requests for SqliteStore {
    fn create_request(&self, r: &crate::requests::NewRequest) -> crate::Result<crate::requests::RequestRecord> {
        Ok(requests::create(self, r)?)
    }

    fn requests(&self, open_only: bool) -> crate::Result<Vec<crate::requests::RequestRecord>> {
        Ok(requests::list(&*self.read()?, open_only)?)
    }

    fn request(&self, id: i64) -> crate::Result<crate::requests::RequestRecord> {
        Ok(requests::get(&*self.read()?, id)?)
    }

    fn request_by_approval(&self, approval_id: i64) -> crate::Result<Option<crate::requests::RequestRecord>> {
        Ok(requests::by_approval(&*self.read()?, approval_id)?)
    }

    fn approve_stage(
        &self,
        schema: &Schema,
        d: &crate::requests::StageApproval,
    ) -> crate::Result<crate::requests::RequestRecord> {
        Ok(requests::approve(self, schema, d)?)
    }

    fn reject_via(&self, approval_id: i64, by: &str, via: &str, reason: &str) -> crate::Result<()> {
        Ok(lifecycle::reject(self, approval_id, by, Some(via), reason)?)
    }

    fn end_request(
        &self,
        schema: &Schema,
        e: &crate::requests::RequestEnd,
    ) -> crate::Result<crate::requests::RequestRecord> {
        Ok(requests::end(self, schema, e)?)
    }

    fn request_grants(
        &self,
        identities: Option<&[&str]>,
    ) -> crate::Result<HashMap<String, Vec<crate::requests::RequestGrant>>> {
        Ok(requests::grants(&*self.read()?, identities)?)
    }

    fn identity_source(&self, identity: &str) -> crate::Result<Option<String>> {
        let conn = self.lock();
        let run = || -> R<Option<String>> {
            Ok(conn.query_row("SELECT source FROM identities WHERE id = ?1", [identity], |r| r.get(0)).optional()?)
        };
        Ok(run()?)
    }
}

// Certification campaigns (issue 10).
impl crate::Campaigns for SqliteStore {
    fn create_campaign(&self, c: &crate::campaigns::NewCampaign) -> crate::Result<crate::campaigns::CampaignRecord> {
        Ok(campaigns::create(self, c)?)
    }

    fn unchecked_movers(&self) -> crate::Result<Vec<(i64, String)>> {
        Ok(campaigns::unchecked_movers(&*self.read()?)?)
    }

    fn movers_checked(&self, movers: &[(i64, String)]) -> crate::Result<()> {
        Ok(campaigns::movers_checked(self, movers)?)
    }

    fn campaigns(&self) -> crate::Result<Vec<crate::campaigns::CampaignRecord>> {
        Ok(campaigns::campaigns(&*self.read()?)?)
    }

    fn campaign(&self, id: i64) -> crate::Result<crate::campaigns::CampaignRecord> {
        Ok(campaigns::campaign(&*self.read()?, id)?)
    }

    fn campaign_items(
        &self,
        filter: &crate::campaigns::ItemFilter,
    ) -> crate::Result<Vec<crate::campaigns::ItemRecord>> {
        Ok(campaigns::items(&*self.read()?, filter)?)
    }

    fn campaign_item(&self, id: i64) -> crate::Result<crate::campaigns::ItemRecord> {
        Ok(campaigns::item(&*self.read()?, id)?)
    }

    fn decide_item(&self, d: &crate::campaigns::ItemDecision) -> crate::Result<crate::campaigns::ItemRecord> {
        Ok(campaigns::decide(self, d)?)
    }

    fn reassign_items(
        &self,
        r: &[crate::campaigns::Reassignment],
        actor: &str,
    ) -> crate::Result<Vec<crate::campaigns::ItemRecord>> {
        Ok(campaigns::reassign(self, r, actor)?)
    }

    fn time_out(&self, t: &crate::campaigns::Timeout, actor: &str) -> crate::Result<()> {
        Ok(campaigns::time_out(self, t, actor)?)
    }

    fn remind(&self, campaign: i64, reviewers: &[(String, usize)], actor: &str) -> crate::Result<()> {
        Ok(campaigns::remind(self, campaign, reviewers, actor)?)
    }

    fn close_campaign(&self, id: i64, by: &str, actor: &str) -> crate::Result<crate::campaigns::CampaignRecord> {
        Ok(campaigns::close(self, id, by, actor)?)
    }

    fn unplanned_revocations(&self) -> crate::Result<Vec<crate::campaigns::ItemRecord>> {
        Ok(campaigns::unplanned(&*self.read()?)?)
    }

    fn recent_review_revocations(&self, since: &str) -> crate::Result<std::collections::BTreeSet<String>> {
        Ok(campaigns::recent(&*self.read()?, since)?)
    }

    fn plan_review_revocations(
        &self,
        r: &crate::campaigns::ReviewRevocations,
    ) -> crate::Result<crate::campaigns::RevocationIds> {
        Ok(campaigns::plan(self, r)?)
    }

    fn review_overrides(
        &self,
        identities: Option<&[&str]>,
    ) -> crate::Result<HashMap<String, std::collections::BTreeSet<tenure_core::Entitlement>>> {
        Ok(campaigns::overrides(&*self.read()?, identities)?)
    }

    fn held_review_deciders(&self, approval_id: i64) -> crate::Result<Vec<(i64, String)>> {
        Ok(campaigns::held_deciders(&*self.read()?, approval_id)?)
    }
}
