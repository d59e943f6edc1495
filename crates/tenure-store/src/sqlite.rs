//! The embedded store: SQLite in WAL mode, one writer at a time.

use crate::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use tenure_core::audit::{self, GENESIS, Verifier};
use tenure_core::evidence::Checkpoint;
use tenure_core::plan::{AccountView, Queued};
use tenure_core::{Attrs, CaseState, Kind, Status};

/// Embedded, numbered, append-only migrations. Never edit one that has been released.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "execution", include_str!("../migrations/0002_execution.sql")),
    (3, "accounts_and_claims", include_str!("../migrations/0003_accounts_and_claims.sql")),
    (4, "audit_checkpoints", include_str!("../migrations/0004_audit_checkpoints.sql")),
];

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// The current time as RFC 3339 UTC with microseconds; sortable as text.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

pub(crate) fn parse_enum<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T> {
    s.parse().map_err(corrupt)
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

fn open_error(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Open { path: path.display().to_string(), reason: reason.into() }
}

/// The directory a store file lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Refuses a symlinked database file or directory: a link planted there would redirect the
/// evidence (or the writes) to a file of someone else's choosing.
fn refuse_symlinks(path: &Path) -> Result<()> {
    let is_link = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    let hint = "set `allow_symlink = true` in [store] to accept one";
    if is_link(path) {
        return Err(open_error(path, format!("it is a symbolic link; {hint}")));
    }
    let dir = parent_dir(path);
    if is_link(dir) {
        return Err(open_error(path, format!("its directory `{}` is a symbolic link; {hint}", dir.display())));
    }
    Ok(())
}

/// Creates the store's directory (0700) and file (0600) before SQLite opens it, so the
/// database and its `-wal` and `-shm` files (which SQLite gives the database's mode) are never
/// readable by other users. Existing files keep their modes.
fn create_private(path: &Path) -> Result<()> {
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

pub(crate) fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    let n: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| r.get(0))?;
    Ok(n > 0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// A symlinked path is refused; see [`SqliteStore::open_with`].
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens the database at `path` as `options` say.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Self> {
        if !options.allow_symlink {
            refuse_symlinks(path)?;
        }
        if options.read_only {
            return Self::open_read_only(path);
        }
        create_private(path)?;
        let conn = Connection::open(path).map_err(|e| open_error(path, e.to_string()))?;
        Self::init(conn)
    }

    /// A read-only connection. SQLite reads a WAL database through its `-shm` file, which it
    /// creates beside the database if it can; when it cannot (a read-only directory), the file
    /// is opened `immutable`, which is only sound without a pending write-ahead log.
    fn open_read_only(path: &Path) -> Result<Self> {
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
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
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
                    return Err(StoreError::MigrationChanged { version });
                }
            }
        }
        Ok(Self { conn: Mutex::new(conn) })
    }

    /// An in-memory store, for tests and simulations.
    pub fn memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )?;
        let store = Self { conn: Mutex::new(conn) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (version, name, sql) in MIGRATIONS {
            let applied: Option<String> = tx
                .query_row("SELECT checksum FROM schema_migrations WHERE version = ?1", [version], |r| r.get(0))
                .optional()?;
            match applied {
                Some(sum) if sum == checksum(sql) => {}
                Some(_) => return Err(StoreError::MigrationChanged { version: *version }),
                None => {
                    tx.execute_batch(sql)?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
                        params![version, name, checksum(sql), now()],
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

    /// Runs `f` with the raw connection. For migrations of the future and for tests that
    /// tamper with the database on purpose.
    pub fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        f(&self.lock())
    }
}

fn identity_json(schema: &Schema, i: &Identity) -> String {
    serde_json::json!({
        "id": &*i.id, "kind": i.kind, "status": i.status, "attrs": i.attrs.to_json(schema),
    })
    .to_string()
}

fn identity_from(schema: &Schema, id: &str, kind: &str, status: &str, attrs: &str) -> Result<Identity> {
    let v: serde_json::Value = serde_json::from_str(attrs).map_err(|e| corrupt(format!("attrs of `{id}`: {e}")))?;
    let kind: Kind = parse_enum(kind)?;
    let status: Status = parse_enum(status)?;
    Ok(Identity::new(id, kind, status, Attrs::from_json(schema, &v)))
}

/// Appends entries to the chain inside `tx`.
pub(crate) fn append(tx: &Transaction<'_>, entries: &[AuditEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev): (i64, String) = tx
        .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_string()));
    let at = now();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO audit (seq, at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for e in entries {
        seq += 1;
        let hash = audit::hash(seq, &at, e, &prev);
        stmt.execute(params![
            seq,
            at,
            e.actor,
            e.action,
            e.identity,
            e.target,
            e.entitlement,
            e.reason,
            e.approver,
            e.outcome,
            prev,
            hash
        ])?;
        prev = hash;
    }
    Ok(())
}

fn idem_key(event_id: i64, identity: &str, op: &OpIn) -> String {
    let mut h = Sha256::new();
    for part in [&event_id.to_string(), identity, &op.target, op.kind.as_str(), op.entitlement.as_deref().unwrap_or("")]
    {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize()).chars().take(32).collect()
}

/// Inserts an event row and returns its id.
fn insert_event(
    tx: &Transaction<'_>,
    schema: &Schema,
    import_id: i64,
    source: &str,
    ev: &EventIn,
    at: &str,
    state: &str,
) -> Result<i64> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (import_id, source, kind, identity, received_at, changes, significant, note, after, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    stmt.execute(params![
        import_id,
        source,
        ev.kind.as_str(),
        &*ev.identity.id,
        at,
        serde_json::to_string(&ev.changes).unwrap_or_default(),
        ev.significant,
        ev.note,
        identity_json(schema, &ev.identity),
        state,
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Which queued operations may still be replaced: never attempted (no attempt, no error) and
/// not claimed, or done as far as the executor goes but waiting on a manual ticket nobody has
/// carried out.
const REPLACEABLE: &str = "((o.state = 'pending' AND o.attempts = 0 AND o.last_error IS NULL)
     OR (o.state = 'done' AND EXISTS (SELECT 1 FROM tickets t WHERE t.operation_id = o.id AND t.state = 'open')))";

/// Cancels queued operations that event `event_id` supersedes, withdrawing their open tickets.
fn cancel_superseded(
    tx: &Transaction<'_>,
    event_id: i64,
    identity: &str,
    ops: &[i64],
    at: &str,
    audit_out: &mut Vec<AuditEntry>,
) -> Result<()> {
    let mut cases = std::collections::BTreeSet::new();
    for &op in ops {
        let row: Option<(i64, String, String, Option<String>)> = tx
            .query_row(
                &format!(
                    "SELECT o.case_id, o.target, o.kind, o.entitlement FROM operations o
                     WHERE o.id = ?1 AND o.identity = ?2 AND {REPLACEABLE}"
                ),
                params![op, identity],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((case_id, target, kind, entitlement)) = row else {
            return Err(StoreError::Conflict(format!(
                "operation {op} of `{identity}` started while this change was being prepared; run it again"
            )));
        };
        tx.execute(
            "UPDATE operations SET state = 'cancelled', note = ?2, updated_at = ?3, next_attempt_at = NULL WHERE id = ?1",
            params![op, format!("superseded by event {event_id}: no longer needed"), at],
        )?;
        let withdrawn = tx.execute(
            "UPDATE tickets SET state = 'withdrawn', done_at = ?2, evidence = ?3 WHERE operation_id = ?1 AND state = 'open'",
            params![op, at, format!("withdrawn: event {event_id} no longer needs it")],
        )?;
        tx.execute(
            "UPDATE exceptions SET state = 'resolved', resolved_at = ?2
             WHERE state = 'open' AND subject IN (SELECT 'ticket:' || id FROM tickets WHERE operation_id = ?1)",
            params![op, at],
        )?;
        let mut why =
            format!("event {event_id} supersedes operation {op} ({kind}): the new desired state no longer needs it");
        if withdrawn > 0 {
            why.push_str("; its manual ticket is withdrawn");
        }
        audit_out.push(
            AuditEntry::new("planner", &format!("plan.{kind}"), "cancelled")
                .identity(identity)
                .target(&target)
                .entitlement(entitlement.as_deref())
                .reason(why),
        );
        cases.insert(case_id);
    }
    for case_id in cases {
        crate::queue::refresh_case(tx, case_id, at, audit_out)?;
    }
    Ok(())
}

fn summary_text(s: &serde_json::Value) -> String {
    s.to_string()
}

impl Store for SqliteStore {
    fn identities(&self, schema: &Schema, source: Option<&str>) -> Result<Vec<Identity>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, kind, status, attrs FROM identities WHERE ?1 IS NULL OR source = ?1 ORDER BY id",
        )?;
        let mut rows = stmt.query([source])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (id, kind, status, attrs): (String, String, String, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            out.push(identity_from(schema, &id, &kind, &status, &attrs)?);
        }
        Ok(out)
    }

    fn identity(&self, schema: &Schema, id: &str) -> Result<Option<Identity>> {
        let conn = self.lock();
        let row: Option<(String, String, String)> = conn
            .query_row("SELECT kind, status, attrs FROM identities WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(k, s, a)| identity_from(schema, id, &k, &s, &a)).transpose()
    }

    fn holdings(&self, identity: &str) -> Result<Holdings> {
        let conn = self.lock();
        let mut h = Holdings::new();
        let mut stmt = conn.prepare_cached("SELECT target, enabled, name FROM accounts WHERE identity = ?1")?;
        let mut rows = stmt.query([identity])?;
        while let Some(r) = rows.next()? {
            h.insert(
                r.get(0)?,
                AccountView { exists: true, enabled: r.get(1)?, grants: Default::default(), name: r.get(2)? },
            );
        }
        let mut stmt = conn.prepare_cached("SELECT target, entitlement FROM grants WHERE identity = ?1")?;
        let mut rows = stmt.query([identity])?;
        while let Some(r) = rows.next()? {
            let t: String = r.get(0)?;
            h.entry(t).or_default().grants.insert(r.get(1)?);
        }
        Ok(h)
    }

    fn all_holdings(&self) -> Result<HashMap<String, Holdings>> {
        let conn = self.lock();
        let mut out: HashMap<String, Holdings> = HashMap::new();
        let mut stmt = conn.prepare_cached("SELECT identity, target, enabled, name FROM accounts")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            out.entry(r.get(0)?).or_default().insert(
                r.get(1)?,
                AccountView { exists: true, enabled: r.get(2)?, grants: Default::default(), name: r.get(3)? },
            );
        }
        let mut stmt = conn.prepare_cached("SELECT identity, target, entitlement FROM grants")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (i, t): (String, String) = (r.get(0)?, r.get(1)?);
            out.entry(i).or_default().entry(t).or_default().grants.insert(r.get(2)?);
        }
        Ok(out)
    }

    fn queued(&self, identities: Option<&[&str]>) -> Result<HashMap<String, Vec<Queued>>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT o.id, o.identity, o.target, o.kind, o.entitlement FROM operations o
             JOIN cases c ON c.id = o.case_id JOIN events e ON e.id = c.event_id
             WHERE e.import_id IS NOT NULL AND {REPLACEABLE} AND (?1 IS NULL OR o.identity = ?1) ORDER BY o.id"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut out: HashMap<String, Vec<Queued>> = HashMap::new();
        let mut read = |who: Option<&str>| -> Result<()> {
            let mut rows = stmt.query([who])?;
            while let Some(r) = rows.next()? {
                let kind: String = r.get(3)?;
                out.entry(r.get(1)?).or_default().push(Queued {
                    id: r.get(0)?,
                    target: r.get(2)?,
                    kind: parse_enum(&kind)?,
                    entitlement: r.get(4)?,
                    attempted: false,
                });
            }
            Ok(())
        };
        match identities {
            None => read(None)?,
            Some(ids) => {
                for id in ids {
                    read(Some(id))?;
                }
            }
        }
        Ok(out)
    }

    fn foreign_identities(&self, source: &str) -> Result<HashMap<String, String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT id, source FROM identities WHERE source <> ?1")?;
        let rows = stmt.query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn last_import(&self, source: &str) -> Result<Option<i64>> {
        let conn = self.lock();
        Ok(conn.query_row(LAST_IMPORT, [source], |r| r.get(0))?)
    }

    fn commit_batch(&self, schema: &Schema, batch: &Batch) -> Result<BatchIds> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if !matches!(batch.state, BatchState::Approved { .. }) {
            let last: Option<i64> = tx.query_row(LAST_IMPORT, [&batch.source], |r| r.get(0))?;
            if last != batch.base_import {
                return Err(StoreError::Conflict(format!(
                    "another import of `{}` was applied while this one was being prepared; run it again",
                    batch.source
                )));
            }
        }
        let at = now();
        let mut ids = BatchIds::default();
        let mut audit_out: Vec<AuditEntry> = Vec::new();

        let import_id = match &batch.state {
            BatchState::Applied | BatchState::Held { .. } => {
                // A newer snapshot from the same source supersedes any batch still held.
                let held: Vec<(i64, i64)> = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT a.id, i.id FROM approvals a JOIN imports i ON a.subject = i.id
                         WHERE a.kind = 'batch' AND a.state = 'pending' AND i.source = ?1",
                    )?;
                    stmt.query_map([&batch.source], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
                };
                for (approval, import) in held {
                    tx.execute(
                        "UPDATE approvals SET state = 'superseded', decided_at = ?2 WHERE id = ?1",
                        params![approval, at],
                    )?;
                    tx.execute("UPDATE imports SET state = 'superseded' WHERE id = ?1", [import])?;
                    tx.execute("UPDATE events SET state = 'superseded' WHERE import_id = ?1", [import])?;
                    audit_out.push(AuditEntry::new(&batch.actor, "approval.superseded", "superseded").reason(format!(
                        "approval {approval} (import {import}) superseded by a newer snapshot of `{}`",
                        batch.source
                    )));
                }
                let state = if matches!(batch.state, BatchState::Held { .. }) { "held" } else { "applied" };
                tx.execute(
                    "INSERT INTO imports (source, file, sha256, at, state, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![batch.source, batch.file, batch.sha256, at, state, summary_text(&batch.summary)],
                )?;
                let import_id = tx.last_insert_rowid();
                let mut e = AuditEntry::new(&batch.actor, "import", state).reason(format!(
                    "import {import_id} of `{}` (sha256 {}): {}",
                    batch.file, batch.sha256, batch.summary
                ));
                if let BatchState::Held { reason } = &batch.state {
                    e.action = "import.held".into();
                    e.reason = Some(format!("import {import_id} of `{}` held: {reason}", batch.file));
                }
                audit_out.push(e);
                import_id
            }
            BatchState::Approved { import_id, approval_id, approver } => {
                let n = tx.execute(
                    "UPDATE approvals SET state = 'approved', decided_at = ?2, decided_by = ?3 WHERE id = ?1 AND state = 'pending'",
                    params![approval_id, at, approver],
                )?;
                if n != 1 {
                    return Err(StoreError::Conflict(format!("approval {approval_id} is not pending")));
                }
                tx.execute("UPDATE imports SET state = 'approved' WHERE id = ?1", [import_id])?;
                audit_out.push(
                    AuditEntry::new(&batch.actor, "approval.approved", "approved")
                        .approver(approver)
                        .reason(format!("approval {approval_id}: held import {import_id} released")),
                );
                *import_id
            }
        };
        ids.import_id = import_id;
        audit_out.extend(batch.audit.iter().cloned());

        if let BatchState::Held { reason } = &batch.state {
            for ev in &batch.events {
                insert_event(&tx, schema, import_id, &batch.source, ev, &at, "held")?;
                ids.events += 1;
            }
            let summary = serde_json::json!({ "source": batch.source, "file": batch.file, "reason": reason, "counts": batch.summary });
            tx.execute(
                "INSERT INTO approvals (kind, subject, summary, state, created_at) VALUES ('batch', ?1, ?2, 'pending', ?3)",
                params![import_id, summary.to_string(), at],
            )?;
            ids.approval_id = Some(tx.last_insert_rowid());
            append(&tx, &audit_out)?;
            tx.commit()?;
            return Ok(ids);
        }

        {
            // An identity belongs to the source that created it: a row from another source never
            // rewrites it (the engine rejects such rows; this keeps the store honest regardless).
            let mut upsert = tx.prepare_cached(
                "INSERT INTO identities (id, source, kind, status, attrs, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, status = excluded.status,
                 attrs = excluded.attrs, updated_at = excluded.updated_at WHERE identities.source = excluded.source",
            )?;
            for i in &batch.identities {
                let n = upsert.execute(params![
                    &*i.id,
                    batch.source,
                    i.kind.as_str(),
                    i.status.as_str(),
                    i.attrs.to_json(schema).to_string(),
                    at
                ])?;
                if n != 1 {
                    return Err(StoreError::Conflict(format!(
                        "identity `{}` belongs to another source; `{}` cannot change it",
                        i.id, batch.source
                    )));
                }
            }
        }
        let mut upd_event = tx.prepare_cached("UPDATE events SET state = 'applied' WHERE id = ?1")?;
        let mut ins_case = tx.prepare_cached(
            "INSERT INTO cases (event_id, identity, kind, state, opened_at, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut ins_op = tx.prepare_cached(
            "INSERT INTO operations (case_id, identity, target, kind, entitlement, reason, idem_key, state, created_at,
                                     updated_at, account)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?9)",
        )?;
        let mut del_acct = tx.prepare_cached("DELETE FROM accounts WHERE identity = ?1")?;
        let mut del_grants = tx.prepare_cached("DELETE FROM grants WHERE identity = ?1")?;
        let mut ins_acct =
            tx.prepare_cached("INSERT INTO accounts (identity, target, enabled, name) VALUES (?1, ?2, ?3, ?4)")?;
        let mut ins_grant =
            tx.prepare_cached("INSERT INTO grants (identity, target, entitlement) VALUES (?1, ?2, ?3)")?;
        for ev in &batch.events {
            let id: &str = &ev.identity.id;
            let event_id = match ev.existing_id {
                Some(eid) => {
                    upd_event.execute([eid])?;
                    eid
                }
                None => insert_event(&tx, schema, import_id, &batch.source, ev, &at, "applied")?,
            };
            ids.events += 1;
            cancel_superseded(&tx, event_id, id, &ev.cancel, &at, &mut audit_out)?;
            let changes: Vec<String> = ev
                .changes
                .iter()
                .map(|c| {
                    // Values are HR data: escaped and cut, so the chain never stores a terminal
                    // escape or a multi-megabyte copy.
                    let v = |v: Option<&str>| v.map_or_else(|| "∅".to_string(), tenure_core::text::quote);
                    format!("{}: {} -> {}", c.attribute, v(c.from.as_deref()), v(c.to.as_deref()))
                })
                .collect();
            let mut reason = format!("event {event_id}");
            if !changes.is_empty() {
                reason.push_str(&format!("; {}", changes.join(", ")));
            }
            if ev.significant {
                reason.push_str("; security-significant");
            }
            if let Some(n) = &ev.note {
                reason.push_str(&format!("; {n}"));
            }
            audit_out.push(
                AuditEntry::new(&batch.actor, &format!("event.{}", ev.kind), "recorded").identity(id).reason(reason),
            );
            for extra in &ev.audit {
                let mut e = extra.clone();
                e.identity.get_or_insert_with(|| id.to_string());
                e.reason = Some(format!("event {event_id}; {}", e.reason.unwrap_or_default()));
                audit_out.push(e);
            }
            let state = if ev.ops.is_empty() { CaseState::Closed } else { CaseState::Open };
            let closed_at = ev.ops.is_empty().then(|| at.clone());
            ins_case.execute(params![event_id, id, ev.kind.as_str(), state.as_str(), at, closed_at])?;
            let case_id = tx.last_insert_rowid();
            ids.cases += 1;
            for op in &ev.ops {
                let reason = serde_json::json!({ "event": event_id, "kind": ev.kind, "rules": op.rules });
                ins_op.execute(params![
                    case_id,
                    id,
                    op.target,
                    op.kind.as_str(),
                    op.entitlement,
                    reason.to_string(),
                    idem_key(event_id, id, op),
                    at,
                    op.account
                ])?;
                ids.operations += 1;
                let mut why = format!("event {event_id} ({})", ev.kind);
                if !op.rules.is_empty() {
                    why.push_str(&format!("; rules {}", op.rules.join(", ")));
                }
                audit_out.push(
                    AuditEntry::new("planner", &format!("plan.{}", op.kind), "pending")
                        .identity(id)
                        .target(&op.target)
                        .entitlement(op.entitlement.as_deref())
                        .reason(why),
                );
            }
            if let Some(h) = &ev.holdings {
                del_acct.execute([id])?;
                del_grants.execute([id])?;
                for (target, acct) in h {
                    if acct.exists {
                        ins_acct.execute(params![id, target, acct.enabled, acct.name])?;
                    }
                    for g in &acct.grants {
                        ins_grant.execute(params![id, target, g])?;
                    }
                }
            }
        }
        drop((upd_event, ins_case, ins_op, del_acct, del_grants, ins_acct, ins_grant));
        append(&tx, &audit_out)?;
        tx.commit()?;
        Ok(ids)
    }

    fn approvals(&self, pending_only: bool) -> Result<Vec<ApprovalRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, kind, subject, summary, state, created_at, decided_at, decided_by, decision_reason
             FROM approvals WHERE (?1 = 0 OR state = 'pending') ORDER BY id",
        )?;
        let rows = stmt.query_map([pending_only], approval_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn approval(&self, id: i64) -> Result<ApprovalRecord> {
        let conn = self.lock();
        conn.query_row(
            "SELECT id, kind, subject, summary, state, created_at, decided_at, decided_by, decision_reason FROM approvals WHERE id = ?1",
            [id],
            approval_row,
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("approval {id}")))
    }

    fn held_events(&self, schema: &Schema, import_id: i64) -> Result<Vec<HeldEvent>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached(&format!("{EVENT_SELECT} WHERE import_id = ?1 AND state = 'held' ORDER BY id"))?;
        let mut rows = stmt.query([import_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let record = event_row(r)?;
            let after: String = r.get(10)?;
            let v: serde_json::Value = serde_json::from_str(&after).map_err(|e| corrupt(e.to_string()))?;
            let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("employee");
            let status = v.get("status").and_then(|k| k.as_str()).unwrap_or("active");
            let attrs = v.get("attrs").cloned().unwrap_or_default();
            let identity = Identity::new(
                &record.identity,
                parse_enum(kind)?,
                parse_enum(status)?,
                Attrs::from_json(schema, &attrs),
            );
            out.push(HeldEvent { record, identity });
        }
        Ok(out)
    }

    fn reject(&self, id: i64, by: &str, reason: &str) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (subject, kind, summary): (i64, String, String) = tx
            .query_row("SELECT subject, kind, summary FROM approvals WHERE id = ?1 AND state = 'pending'", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?
            .ok_or_else(|| StoreError::Conflict(format!("approval {id} is not pending")))?;
        let at = now();
        tx.execute(
            "UPDATE approvals SET state = 'rejected', decided_at = ?2, decided_by = ?3, decision_reason = ?4 WHERE id = ?1",
            params![id, at, by, reason],
        )?;
        if kind == "remediation" {
            // Declining a fix accepts the deviation: the held operations become exceptions.
            let v: serde_json::Value = serde_json::from_str(&summary).unwrap_or_default();
            let cases: Vec<i64> = v
                .get("cases")
                .and_then(|c| c.as_array())
                .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
                .unwrap_or_default();
            for c in cases {
                tx.execute(
                    "INSERT OR IGNORE INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at)
                     SELECT 'manual_override', 'operation:' || id, case_id, identity, target, ?2, ?3, 'open', ?4
                     FROM operations WHERE case_id = ?1 AND state = 'held'",
                    params![c, by, format!("remediation declined: {reason}"), at],
                )?;
                tx.execute(
                    "UPDATE operations SET state = 'excepted', note = ?2, updated_at = ?3 WHERE case_id = ?1 AND state = 'held'",
                    params![c, format!("remediation declined by {by}: {reason}"), at],
                )?;
                tx.execute("UPDATE cases SET state = 'closed', closed_at = ?2 WHERE id = ?1", params![c, at])?;
            }
        } else {
            tx.execute("UPDATE imports SET state = 'rejected' WHERE id = ?1", [subject])?;
            tx.execute("UPDATE events SET state = 'rejected' WHERE import_id = ?1", [subject])?;
        }
        append(
            &tx,
            &[AuditEntry::new(&format!("user:{by}"), "approval.rejected", "rejected")
                .approver(by)
                .reason(format!("approval {id} (import {subject}) rejected: {reason}"))],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn operations(&self, filter: &OpFilter) -> Result<Vec<OpRecord>> {
        let conn = self.lock();
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let states_json = serde_json::to_string(&states).unwrap_or_default();
        let mut stmt = conn.prepare_cached(
            "SELECT id, case_id, identity, target, kind, entitlement, reason, idem_key, state, attempts, next_attempt_at,
                    last_error, created_at, updated_at, verified_at, account, note
             FROM operations
             WHERE (?1 IS NULL OR identity = ?1)
               AND (?2 = '[]' OR state IN (SELECT value FROM json_each(?2)))
               AND (?3 IS NULL OR case_id = ?3)
             ORDER BY id",
        )?;
        let mut rows = stmt.query(params![filter.identity, states_json, filter.case_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(op_row(r)?);
        }
        Ok(out)
    }

    fn cases(&self, open_only: bool) -> Result<Vec<CaseRecord>> {
        let conn = self.lock();
        let mut counts: HashMap<i64, BTreeMap<String, i64>> = HashMap::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT o.case_id, o.state, count(*) FROM operations o JOIN cases c ON c.id = o.case_id
                 WHERE (?1 = 0 OR c.state != 'closed') GROUP BY o.case_id, o.state",
            )?;
            let mut rows = stmt.query([open_only])?;
            while let Some(r) = rows.next()? {
                counts.entry(r.get(0)?).or_default().insert(r.get(1)?, r.get(2)?);
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT id, event_id, identity, kind, state, opened_at, closed_at, revoke_ms FROM cases
             WHERE (?1 = 0 OR state != 'closed') ORDER BY id",
        )?;
        let mut rows = stmt.query([open_only])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let kind: String = r.get(3)?;
            let state: String = r.get(4)?;
            out.push(CaseRecord {
                id,
                event_id: r.get(1)?,
                identity: r.get(2)?,
                kind: parse_enum(&kind)?,
                state: parse_enum(&state)?,
                opened_at: r.get(5)?,
                closed_at: r.get(6)?,
                revoke_ms: r.get(7)?,
                ops: counts.remove(&id).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    fn events(&self, identity: &str) -> Result<Vec<EventRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!("{EVENT_SELECT} WHERE identity = ?1 ORDER BY id"))?;
        let mut rows = stmt.query([identity])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(event_row(r)?);
        }
        Ok(out)
    }

    fn audit(&self, entries: &[AuditEntry]) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        append(&tx, entries)?;
        tx.commit()?;
        Ok(())
    }

    fn scan_audit(&self, filter: &AuditFilter, visit: &mut dyn FnMut(AuditRecord) -> bool) -> Result<()> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash
             FROM audit WHERE (?1 IS NULL OR identity = ?1) AND (?2 IS NULL OR at >= ?2) ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![filter.identity, filter.since])?;
        while let Some(r) = rows.next()? {
            if !visit(audit_row(r)?) {
                break;
            }
        }
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let conn = self.lock();
        // A store older than migration 4 (opened read-only, so not migrated) has none.
        if !has_table(&conn, "audit_checkpoints")? {
            return Ok(Vec::new());
        }
        let mut stmt =
            conn.prepare_cached("SELECT seq, head, at, key_id, signature FROM audit_checkpoints ORDER BY seq, id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Checkpoint { seq: r.get(0)?, head: r.get(1)?, at: r.get(2)?, key_id: r.get(3)?, signature: r.get(4)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn append_checkpoint(&self, entry: &AuditEntry, sign: &dyn Fn(&AuditRecord) -> Checkpoint) -> Result<Checkpoint> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        append(&tx, std::slice::from_ref(entry))?;
        let head = tx.query_row(
            "SELECT seq, at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash
             FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok(audit_row(r)),
        )??;
        let c = sign(&head);
        if c.seq != head.seq || c.head != head.hash {
            return Err(StoreError::Conflict(format!(
                "checkpoint of seq {} does not sign the head {}",
                c.seq, head.seq
            )));
        }
        tx.execute(
            "INSERT INTO audit_checkpoints (seq, head, at, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.seq, c.head, c.at, c.key_id, c.signature],
        )?;
        tx.commit()?;
        Ok(c)
    }

    fn verify_audit(&self) -> Result<VerifyReport> {
        let mut v = Verifier::default();
        let mut first_bad = None;
        let mut head = None;
        self.scan_audit(&AuditFilter::default(), &mut |r| match v.push(&r) {
            Ok(()) => {
                head = Some((r.seq, r.hash));
                true
            }
            Err(b) => {
                first_bad = Some(b);
                false
            }
        })?;
        Ok(VerifyReport { records: v.count, first_bad, head })
    }
}

/// Columns in the order [`op_row`] reads them.
pub(crate) const OP_COLUMNS: &str = "id, case_id, identity, target, kind, entitlement, reason, idem_key, state, attempts, \
     next_attempt_at, last_error, created_at, updated_at, verified_at, account, note";

pub(crate) fn op_row(r: &rusqlite::Row<'_>) -> Result<OpRecord> {
    let kind: String = r.get(4)?;
    let state: String = r.get(8)?;
    let reason: String = r.get(6)?;
    Ok(OpRecord {
        id: r.get(0)?,
        case_id: r.get(1)?,
        identity: r.get(2)?,
        target: r.get(3)?,
        kind: parse_enum(&kind)?,
        entitlement: r.get(5)?,
        reason: serde_json::from_str(&reason).unwrap_or_default(),
        idem_key: r.get(7)?,
        state: parse_enum(&state)?,
        attempts: r.get(9)?,
        next_attempt_at: r.get(10)?,
        last_error: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        verified_at: r.get(14)?,
        account: r.get(15)?,
        note: r.get(16)?,
    })
}

const LAST_IMPORT: &str = "SELECT max(id) FROM imports WHERE source = ?1 AND state IN ('applied', 'approved')";

const EVENT_SELECT: &str =
    "SELECT id, import_id, source, kind, identity, received_at, changes, significant, note, state, after FROM events";

fn event_row(r: &rusqlite::Row<'_>) -> Result<EventRecord> {
    let kind: String = r.get(3)?;
    let changes: String = r.get(6)?;
    Ok(EventRecord {
        id: r.get(0)?,
        import_id: r.get(1)?,
        source: r.get(2)?,
        kind: parse_enum(&kind)?,
        identity: r.get(4)?,
        received_at: r.get(5)?,
        changes: serde_json::from_str(&changes).unwrap_or_default(),
        significant: r.get(7)?,
        note: r.get(8)?,
        state: r.get(9)?,
    })
}

fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRecord> {
    let summary: String = r.get(3)?;
    Ok(ApprovalRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        summary: serde_json::from_str(&summary).unwrap_or_default(),
        state: r.get(4)?,
        created_at: r.get(5)?,
        decided_at: r.get(6)?,
        decided_by: r.get(7)?,
        decision_reason: r.get(8)?,
    })
}

fn audit_row(r: &rusqlite::Row<'_>) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        at: r.get(1)?,
        entry: AuditEntry {
            actor: r.get(2)?,
            action: r.get(3)?,
            identity: r.get(4)?,
            target: r.get(5)?,
            entitlement: r.get(6)?,
            reason: r.get(7)?,
            approver: r.get(8)?,
            outcome: r.get(9)?,
        },
        prev_hash: r.get(10)?,
        hash: r.get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_migration_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("t.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1", [])
            .unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(StoreError::MigrationChanged { version: 1 })));
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_store_is_private_to_its_owner() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("a/b/t.db");
        let store = SqliteStore::open(&path).unwrap();
        store.audit(&[AuditEntry::new("system", "test", "ok")]).unwrap();
        assert_eq!((mode(&dir.path().join("a")), mode(&dir.path().join("a/b"))), (0o700, 0o700));
        assert_eq!(mode(&path), 0o600);
        let wal = dir.path().join("a/b/t.db-wal");
        assert!(wal.exists());
        assert_eq!(mode(&wal), 0o600, "SQLite gives the -wal the database's mode");
    }

    #[test]
    fn a_symlinked_store_file_or_directory_is_refused_unless_allowed() {
        let dir = tempfile::TempDir::new().unwrap();
        let real = dir.path().join("real/t.db");
        drop(SqliteStore::open(&real).unwrap());
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("t.db")).unwrap();
        for p in [dir.path().join("link/t.db"), dir.path().join("t.db")] {
            for read_only in [false, true] {
                let opts = StoreOptions { read_only, allow_symlink: false };
                let err = SqliteStore::open_with(&p, opts).err().map(|e| e.to_string()).unwrap_or_default();
                assert!(err.contains("symbolic link"), "{}: {err}", p.display());
                assert!(SqliteStore::open_with(&p, StoreOptions { read_only, allow_symlink: true }).is_ok());
            }
        }
    }

    #[test]
    fn a_read_only_open_never_creates_the_store_migrates_or_writes() {
        let dir = tempfile::TempDir::new().unwrap();
        let ro = StoreOptions { read_only: true, allow_symlink: false };
        let missing = dir.path().join("none/t.db");
        assert!(matches!(SqliteStore::open_with(&missing, ro), Err(StoreError::Open { .. })));
        assert!(!dir.path().join("none").exists());

        let path = dir.path().join("t.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("DROP TABLE audit_checkpoints; DELETE FROM schema_migrations WHERE version = 4")
            .unwrap();
        let store = SqliteStore::open_with(&path, ro).unwrap();
        assert!(store.checkpoints().unwrap().is_empty(), "an older store has no checkpoints");
        assert!(store.audit(&[AuditEntry::new("system", "test", "ok")]).is_err());
        assert!(store.verify_audit().unwrap().first_bad.is_none());
        drop(store);
        let n: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3, "no migration ran");

        Connection::open(&path)
            .unwrap()
            .execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 2", [])
            .unwrap();
        assert!(matches!(SqliteStore::open_with(&path, ro), Err(StoreError::MigrationChanged { version: 2 })));
    }

    #[test]
    fn immutable_uris_escape_the_path() {
        assert_eq!(immutable_uri(Path::new("/a b/t?#%.db")), "file:/a%20b/t%3F%23%25.db?immutable=1");
    }

    #[test]
    fn reopening_applies_nothing_twice() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("t.db");
        drop(SqliteStore::open(&path).unwrap());
        let store = SqliteStore::open(&path).unwrap();
        let n: i64 =
            store.with_connection(|c| c.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))).unwrap();
        assert_eq!(n, i64::try_from(MIGRATIONS.len()).unwrap());
    }
}
