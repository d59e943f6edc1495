//! The store's one error type. It names no database crate: a backend's own errors reach callers
//! only as their message, so a second implementation does not change a caller's `match`.

use std::fmt;
use tenure_core::error::{Code, HasCode};

/// Everything a store call can fail with. Each variant says its stable code from the registry
/// in `tenure_core::error` (through [`HasCode`]), which maps it to exit and HTTP statuses:
///
/// | variant | code | meaning |
/// | --- | --- | --- |
/// | [`Backend`](StoreError::Backend) | `store_unavailable` | the database itself failed (I/O, locked, read-only) |
/// | [`Open`](StoreError::Open) | `store_unavailable` | the store cannot be opened (missing, a symlink, not a store) |
/// | [`MigrationChanged`](StoreError::MigrationChanged) | `store_corrupt` | an applied migration was edited |
/// | [`Corrupt`](StoreError::Corrupt) | `store_corrupt` | a stored value cannot be read back |
/// | [`NotFound`](StoreError::NotFound) | `not_found` | the named record does not exist |
/// | [`Conflict`](StoreError::Conflict) | `conflict` | the write's precondition no longer holds (a race lost); run it again |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Backend(BackendError),
    #[error("cannot open store at `{path}`: {reason}")]
    Open { path: String, reason: String },
    #[error(
        "migration {version} was changed after it was applied (checksum mismatch); never edit an applied migration"
    )]
    MigrationChanged { version: i64 },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl HasCode for StoreError {
    fn code(&self) -> Code {
        match self {
            StoreError::Backend(_) | StoreError::Open { .. } => Code::StoreUnavailable,
            StoreError::MigrationChanged { .. } | StoreError::Corrupt(_) => Code::StoreCorrupt,
            StoreError::NotFound(_) => Code::NotFound,
            StoreError::Conflict(_) => Code::Conflict,
        }
    }
}

/// A failure of the database behind the store, as its message only. Built by store
/// implementations; opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendError {
    message: String,
}

impl BackendError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_code_and_keeps_the_backends_message() {
        let check = |e: StoreError, code: Code| assert_eq!(e.code(), code, "{e}");
        check(StoreError::Backend(BackendError::new("disk I/O error")), Code::StoreUnavailable);
        check(StoreError::Open { path: "p".into(), reason: "r".into() }, Code::StoreUnavailable);
        check(StoreError::MigrationChanged { version: 1 }, Code::StoreCorrupt);
        check(StoreError::Corrupt("x".into()), Code::StoreCorrupt);
        check(StoreError::NotFound("ticket 1".into()), Code::NotFound);
        check(StoreError::Conflict("c".into()), Code::Conflict);
        assert_eq!(
            StoreError::Backend(BackendError::new("disk I/O error")).to_string(),
            "database error: disk I/O error",
            "the backend's message is kept"
        );
    }
}
