//! Reads the API serves page by page, and the readiness probe: the [`Browse`] trait.
//!
//! The lists the CLI prints read whole tables; the API pages them with an opaque cursor, so a
//! page at 100,000 identities costs what a page costs. The cursor is the last key of the page
//! before (the API encodes it); pages are in key order.

use crate::Result;

/// The latest schema version this build knows (its last migration).
pub fn schema_version() -> i64 {
    crate::sqlite::latest_migration()
}

/// Paged reads and the readiness probe. Implementations are safe to share between threads.
pub trait Browse: Send + Sync {
    /// The store's applied schema version: a cheap round trip that proves the store answers,
    /// and tells whether its migrations are the ones this build expects ([`schema_version`]).
    fn applied_schema_version(&self) -> Result<i64>;
}
