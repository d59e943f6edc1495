//! Every case of `tenure_store::conformance`, each on a fresh SQLite file in a temp dir.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tenure_core::clock::Clock;
use tenure_store::conformance::{self, Subject};
use tenure_store::{Backend, SqliteStore, StoreOptions};

/// Fresh store files in one temp dir: `create` never hands out a used file.
struct Sqlite {
    dir: tempfile::TempDir,
    /// The files created so far; the last one is reopened read-only.
    created: Mutex<Vec<PathBuf>>,
}

impl Subject for Sqlite {
    fn create(&self, clock: Arc<dyn Clock>) -> tenure_store::Result<Box<dyn Backend>> {
        let mut created = self.created.lock().unwrap();
        let path = self.dir.path().join(format!("store-{}.db", created.len()));
        created.push(path.clone());
        Ok(Box::new(SqliteStore::open(&path, clock)?))
    }

    fn reopen_read_only(&self, clock: Arc<dyn Clock>) -> tenure_store::Result<Box<dyn Backend>> {
        let path = self.created.lock().unwrap().last().cloned().expect("a store was created");
        let options = StoreOptions { read_only: true, allow_symlink: false };
        Ok(Box::new(SqliteStore::open_with(&path, options, clock)?))
    }
}

fn sqlite() -> Sqlite {
    Sqlite { dir: tempfile::TempDir::new().unwrap(), created: Mutex::new(Vec::new()) }
}

#[test]
fn sqlite_passes_every_conformance_case() {
    let mut failures = Vec::new();
    for (name, case) in conformance::CASES {
        // Each case gets its own directory, so no case sees another's store.
        if let Err(f) = case(&sqlite()) {
            failures.push(format!("{name}: {f}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} case(s) failed:\n{}",
        failures.len(),
        conformance::CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn run_all_gives_every_case_a_fresh_store() {
    let subject = sqlite();
    assert_eq!(conformance::run_all(&subject), []);
    assert_eq!(subject.created.lock().unwrap().len(), conformance::CASES.len(), "one store per case");
}
