//! Reads the API serves page by page, and the readiness probe: the [`Browse`] trait.
//!
//! The lists the CLI prints read whole tables; the API pages them with an opaque cursor, so a
//! page at 100,000 identities costs what a page costs. The cursor is the last key of the page
//! before (the API encodes it); pages are in key order.

use crate::Result;
use crate::{AuditFilter, Finding};
use tenure_core::audit::AuditRecord;
use tenure_core::{Identity, Kind, OpState, Schema, Status};

/// How many operations of one target are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCount {
    pub target: String,
    pub state: OpState,
    pub count: i64,
}

/// Which identities a page holds. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityQuery {
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    /// The `department` attribute, exactly.
    pub department: Option<String>,
    /// Text found, case-insensitively, in the id or any attribute value.
    pub text: Option<String>,
    /// Only identities whose id sorts after this one (the cursor).
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// The latest schema version this build knows (its last migration).
pub fn schema_version() -> i64 {
    crate::sqlite::latest_migration()
}

/// Paged reads and the readiness probe. Implementations are safe to share between threads.
pub trait Browse: Send + Sync {
    /// The store's applied schema version: a cheap round trip that proves the store answers,
    /// and tells whether its migrations are the ones this build expects ([`schema_version`]).
    fn applied_schema_version(&self) -> Result<i64>;
    /// Identities matching `query`, in id order, at most `query.limit`.
    fn identity_page(&self, schema: &Schema, query: &IdentityQuery) -> Result<Vec<Identity>>;
    /// The findings of each target's latest reconciliation run, by target then as recorded.
    fn latest_findings(&self) -> Result<Vec<Finding>>;
    /// The findings about identity `identity` among [`Browse::latest_findings`], in the same
    /// order, without reading the others.
    fn latest_findings_of(&self, identity: &str) -> Result<Vec<Finding>> {
        Ok(self.latest_findings()?.into_iter().filter(|f| f.identity.as_deref() == Some(identity)).collect())
    }
    /// Operation counts by target and state; with `leavers_only`, of leaver cases only.
    fn operation_counts(&self, leavers_only: bool) -> Result<Vec<TargetCount>>;
    /// Audit records `filter` selects with `seq` after `after_seq`, in `seq` order, at most
    /// `limit`: a long export is read in pieces, so no reader holds the store for its length.
    fn audit_page(&self, filter: &AuditFilter, after_seq: i64, limit: usize) -> Result<Vec<AuditRecord>>;
    /// The time-to-revoke (milliseconds) of every closed case that has one.
    fn revoke_times(&self) -> Result<Vec<i64>>;
}
