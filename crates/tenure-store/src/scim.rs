//! SCIM resources pushed by `kind = "scim"` sources: [`ScimStore`] and what goes
//! in and comes out of it.
//!
//! The server keeps each SCIM resource's normalized body, as the client wrote it, next to the
//! identity key it maps to, so attributes Tenure does not map read back exactly as written.
//! Everything is scoped to one source: every method takes the source's name, and no call ever
//! sees another source's rows.
//!
//! **One transaction.** A User write is also a source record for the lifecycle engine. The
//! engine prepares the [`Batch`] that record makes (diff, guard, plan), and
//! [`ScimStore::scim_write`] writes the resource row and commits that batch in one transaction,
//! so a 2xx never describes a write the engine did not journal, and a batch never commits for a
//! resource write that failed its precondition.
//!
//! **What the store checks, in that transaction.** The precondition the write was computed
//! under: the resource's version for a replace or a delete (compare-and-swap), the batch's own
//! (the source's last import); and the uniqueness, per source, of the case-folded `userName`
//! and of the mapped identity key. Those outcomes are answers a client caused, not failures, so
//! they come back as [`ScimOutcome`] values; a failed batch precondition is the batch's
//! [`StoreError::Conflict`](crate::StoreError::Conflict), and the caller prepares it again.

use crate::Result;
use crate::records::{Batch, BatchIds};
use tenure_core::Schema;
use tenure_core::audit::AuditEntry;

/// A SCIM resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimKind {
    User,
    Group,
}

impl ScimKind {
    /// The resource type's name, as stored and as SCIM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimKind::User => "User",
            ScimKind::Group => "Group",
        }
    }
}

impl std::str::FromStr for ScimKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "User" => Ok(ScimKind::User),
            "Group" => Ok(ScimKind::Group),
            other => Err(format!("unknown SCIM resource type `{other}`")),
        }
    }
}

/// A stored resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimResource {
    pub source: String,
    pub kind: ScimKind,
    pub id: String,
    /// Bumped by every write, starting at 1.
    pub version: i64,
    /// Store timestamps (`tenure_core::clock::stamp`), from the store's clock.
    pub created_at: String,
    pub modified_at: String,
    /// The normalized body (a JSON object), as written.
    pub body: String,
    /// The case-folded `userName`.
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    /// The identity key the resource maps to.
    pub identity_key: Option<String>,
}

/// What a list is narrowed by (the lookups IdPs make before every write), answered from an
/// index. The values are compared exactly: a `userName` is given case-folded, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimLookup<'a> {
    UserName(&'a str),
    ExternalId(&'a str),
    IdentityKey(&'a str),
}

/// The body of a create or a replace, with the values the store indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimBody {
    /// The normalized body, a JSON object.
    pub body: String,
    /// The case-folded `userName` (unique per source and type).
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    /// The identity key it maps to (unique per source).
    pub identity_key: Option<String>,
}

/// What a write does to the resource `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimChange {
    /// A new resource with the id the caller chose (random, never reused).
    Create(ScimBody),
    /// A new body, if the resource is still at version `expected`.
    Replace { expected: i64, body: ScimBody },
    /// Removal, if the resource is still at version `expected`.
    Delete { expected: i64 },
}

/// One resource write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimWrite {
    pub source: String,
    pub kind: ScimKind,
    pub id: String,
    pub change: ScimChange,
    /// Audit records describing the write, appended in its transaction.
    pub audit: Vec<AuditEntry>,
}

/// Which unique value another resource of the source already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimTaken {
    /// The case-folded `userName`.
    UserName,
    /// The mapped identity key.
    IdentityKey,
}

/// How a write ended. Only [`ScimOutcome::Written`] changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimOutcome {
    /// The write and the batch (if one was given) committed. `resource` is the new state
    /// (`None` after a delete).
    Written { resource: Option<Box<ScimResource>>, batch: Option<BatchIds> },
    /// No resource of that type has that id in the source (a replace or a delete).
    NotFound,
    /// The resource is no longer at the expected version.
    VersionMismatch,
    /// Another resource of the source holds a unique value of this one.
    Taken(ScimTaken),
    /// A create whose id another resource of the source already has.
    IdTaken,
}

/// SCIM resources, per source. Implementations are safe to share between threads.
pub trait ScimStore: Send + Sync {
    /// The resource, or `None`.
    fn scim_get(&self, source: &str, kind: ScimKind, id: &str) -> Result<Option<ScimResource>>;
    /// The source's resources of `kind` (narrowed by `lookup`, if given), in id order.
    fn scim_list(&self, source: &str, kind: ScimKind, lookup: Option<ScimLookup<'_>>) -> Result<Vec<ScimResource>>;
    /// Writes `write` and commits `batch` (the lifecycle batch the write makes, if any) in one
    /// transaction, after checking the write's preconditions (see the module doc). A batch
    /// that fails its own precondition fails the call with its error and writes nothing.
    fn scim_write(&self, schema: &Schema, write: &ScimWrite, batch: Option<&Batch>) -> Result<ScimOutcome>;
}
