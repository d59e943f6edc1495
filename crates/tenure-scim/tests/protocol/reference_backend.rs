//! `ReferenceBackendForProtocolTests`: the protocol test harness's storage.
//!
//! An in-memory [`ScimBackend`] that does exactly what the trait's contract says and nothing
//! else: bodies kept as given, a new version on every write, compare-and-swap on `replace`
//! and `delete`, unique keys refused across resources of one type, lists in creation order.
//! It exists so that the router can be tested (here, and by the independent scim2-tester
//! suite) without Tenure's store. It is not a product backend: the production one is
//! Tenure's store, wired by the server, against which the same scim2-tester run is repeated.

use async_trait::async_trait;
use std::sync::Mutex;
use tenure_scim::{BackendError, ListQuery, ResourceKind, ScimBackend, StoredResource, UniqueKey, Write};

#[derive(Default)]
pub struct ReferenceBackendForProtocolTests {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    counter: u64,
    resources: Vec<Entry>,
}

struct Entry {
    kind: ResourceKind,
    stored: StoredResource,
    unique: Vec<UniqueKey>,
}

impl State {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn conflict(&self, kind: ResourceKind, except: Option<&str>, unique: &[UniqueKey]) -> Option<String> {
        self.resources
            .iter()
            .filter(|e| e.kind == kind && Some(e.stored.id.as_str()) != except)
            .find_map(|e| unique.iter().find(|k| e.unique.contains(k)).map(|k| k.attribute.to_string()))
    }

    fn position(&self, kind: ResourceKind, id: &str) -> Option<usize> {
        self.resources.iter().position(|e| e.kind == kind && e.stored.id == id)
    }
}

impl ReferenceBackendForProtocolTests {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, BackendError> {
        self.state.lock().map_err(|_| BackendError::Internal { detail: "poisoned lock".into() })
    }
}

#[async_trait]
impl ScimBackend for ReferenceBackendForProtocolTests {
    /// One tenant: every request is the same caller.
    type Caller = ();

    fn default_caller() -> Option<()> {
        Some(())
    }

    async fn create(&self, _: &(), kind: ResourceKind, write: Write) -> Result<StoredResource, BackendError> {
        let mut s = self.lock()?;
        if let Some(attribute) = s.conflict(kind, None, &write.unique) {
            return Err(BackendError::Conflict { attribute });
        }
        let n = s.next();
        let now = chrono::Utc::now();
        let stored = StoredResource {
            id: format!("{}-{n:06}", kind.name().to_lowercase()),
            version: n.to_string(),
            created: now,
            last_modified: now,
            body: write.body,
        };
        s.resources.push(Entry { kind, stored: stored.clone(), unique: write.unique });
        Ok(stored)
    }

    async fn get(&self, _: &(), kind: ResourceKind, id: &str) -> Result<Option<StoredResource>, BackendError> {
        let s = self.lock()?;
        Ok(s.position(kind, id).and_then(|i| s.resources.get(i)).map(|e| e.stored.clone()))
    }

    async fn replace(
        &self,
        _: &(),
        kind: ResourceKind,
        id: &str,
        expected: &str,
        write: Write,
    ) -> Result<StoredResource, BackendError> {
        let mut s = self.lock()?;
        let i = s.position(kind, id).ok_or(BackendError::NotFound)?;
        if s.resources.get(i).map(|e| e.stored.version.as_str()) != Some(expected) {
            return Err(BackendError::VersionMismatch);
        }
        if let Some(attribute) = s.conflict(kind, Some(id), &write.unique) {
            return Err(BackendError::Conflict { attribute });
        }
        let n = s.next();
        let entry = s.resources.get_mut(i).ok_or(BackendError::NotFound)?;
        entry.stored.version = n.to_string();
        entry.stored.last_modified = chrono::Utc::now();
        entry.stored.body = write.body;
        entry.unique = write.unique;
        Ok(entry.stored.clone())
    }

    async fn delete(&self, _: &(), kind: ResourceKind, id: &str, expected: &str) -> Result<(), BackendError> {
        let mut s = self.lock()?;
        let i = s.position(kind, id).ok_or(BackendError::NotFound)?;
        if s.resources.get(i).map(|e| e.stored.version.as_str()) != Some(expected) {
            return Err(BackendError::VersionMismatch);
        }
        s.resources.remove(i);
        Ok(())
    }

    async fn list(
        &self,
        _: &(),
        kind: ResourceKind,
        _query: ListQuery<'_>,
    ) -> Result<Vec<StoredResource>, BackendError> {
        // Every candidate: the protocol layer evaluates the filter exactly.
        let s = self.lock()?;
        Ok(s.resources.iter().filter(|e| e.kind == kind).map(|e| e.stored.clone()).collect())
    }
}
