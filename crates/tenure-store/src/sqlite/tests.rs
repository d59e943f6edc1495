//! Tests of what only the SQLite store has: its migrations, file modes, symlink refusal and
//! read-only opens. Behaviour every store shares is in `crate::conformance`.

use super::*;
use crate::{Store as _, SystemClock};

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[test]
fn an_edited_migration_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path, clock()).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1", [])
        .unwrap();
    assert!(matches!(SqliteStore::open(&path, clock()), Err(StoreError::MigrationChanged { version: 1 })));
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_store_is_private_to_its_owner() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("a/b/t.db");
    let store = SqliteStore::open(&path, clock()).unwrap();
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
    drop(SqliteStore::open(&real, clock()).unwrap());
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("t.db")).unwrap();
    std::fs::create_dir_all(dir.path().join("real/sub")).unwrap();
    drop(SqliteStore::open(&dir.path().join("real/sub/t.db"), clock()).unwrap());
    for p in [dir.path().join("link/t.db"), dir.path().join("t.db"), dir.path().join("link/sub/t.db")] {
        for read_only in [false, true] {
            let opts = StoreOptions { read_only, allow_symlink: false };
            let err = SqliteStore::open_with(&p, opts, clock()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("symbolic link"), "{}: {err}", p.display());
            assert!(SqliteStore::open_with(&p, StoreOptions { read_only, allow_symlink: true }, clock()).is_ok());
        }
    }
}

#[test]
fn a_read_only_open_never_creates_the_store_migrates_or_writes() {
    let dir = tempfile::TempDir::new().unwrap();
    let ro = StoreOptions { read_only: true, allow_symlink: false };
    let missing = dir.path().join("none/t.db");
    assert!(matches!(SqliteStore::open_with(&missing, ro, clock()), Err(StoreError::Open { .. })));
    assert!(!dir.path().join("none").exists());

    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path, clock()).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE audit_checkpoints; DELETE FROM schema_migrations WHERE version = 4")
        .unwrap();
    let store = SqliteStore::open_with(&path, ro, clock()).unwrap();
    assert!(store.checkpoints().unwrap().is_empty(), "an older store has no checkpoints");
    assert!(store.audit(&[AuditEntry::new("system", "test", "ok")]).is_err());
    assert!(store.verify_audit().unwrap().first_bad.is_none());
    drop(store);
    let n: i64 =
        Connection::open(&path).unwrap().query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    assert_eq!(n, i64::try_from(MIGRATIONS.len()).unwrap() - 1, "no migration ran");

    Connection::open(&path)
        .unwrap()
        .execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 2", [])
        .unwrap();
    assert!(matches!(SqliteStore::open_with(&path, ro, clock()), Err(StoreError::MigrationChanged { version: 2 })));
}

#[test]
fn immutable_uris_escape_the_path() {
    assert_eq!(immutable_uri(Path::new("/a b/t?#%.db")), "file:/a%20b/t%3F%23%25.db?immutable=1");
}

#[test]
fn reopening_applies_nothing_twice() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path, clock()).unwrap());
    let store = SqliteStore::open(&path, clock()).unwrap();
    let n: i64 = store.lock().query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    assert_eq!(n, i64::try_from(MIGRATIONS.len()).unwrap());
}

#[test]
fn a_read_does_not_wait_for_the_writer() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("t.db");
    let store = Arc::new(SqliteStore::open(&path, clock()).unwrap());
    store.audit(&[AuditEntry::new("system", "test", "committed")]).unwrap();
    // The writer is busy (as during an import's batch or the ingest worker's) with a transaction
    // of its own open.
    let writer = store.lock();
    writer.execute_batch("BEGIN IMMEDIATE; DELETE FROM schema_migrations WHERE version = 0").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = Arc::clone(&store);
    std::thread::spawn(move || {
        let _ = tx.send(reader.verify_audit().map(|r| r.records));
    });
    let read = rx.recv_timeout(Duration::from_secs(20)).expect("the read waited for the writer");
    assert_eq!(read.unwrap(), 1, "the reader sees the last commit");
    writer.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_pooled_reader_refuses_writes_and_the_database_file_holds_every_commit_once_closed() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path, clock()).unwrap();
    store.audit(&[AuditEntry::new("system", "test", "one")]).unwrap();
    {
        let reader = store.read().unwrap();
        assert!(matches!(&reader, readers::Reader::Pooled(_)), "a file store reads from its pool");
        assert!(reader.execute("DELETE FROM audit", []).is_err(), "a reader cannot write");
    }
    assert_eq!(store.verify_audit().unwrap().records, 1);
    drop(store);
    // Closed last, the writer folded the write-ahead log into the file: a copy of the file alone
    // has everything.
    assert!(!dir.path().join("t.db-wal").exists(), "the -wal is gone once the store is closed");
    let n: i64 = Connection::open(&path).unwrap().query_row("SELECT count(*) FROM audit", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}
