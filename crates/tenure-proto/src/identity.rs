use crate::Operation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenure_core::{EventKind, EventState, Kind, Status};

/// An identity in a list (`tenure identity list`, `GET /api/v1/identities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentitySummary {
    /// The attributes by name; absent values are left out.
    pub attributes: BTreeMap<String, String>,
    pub id: String,
    pub kind: Kind,
    pub status: Status,
}

/// One identity in full (`tenure identity show`, `GET /api/v1/identities/{id}`): its
/// attributes, its account in each target as read back and as planned, its operations, events
/// and audit timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityDetail {
    /// Per target: what was verified, what is planned, how much is still open.
    pub accounts: BTreeMap<String, AccountState>,
    pub attributes: BTreeMap<String, String>,
    pub events: Vec<Event>,
    pub id: String,
    pub kind: Kind,
    /// Every operation of the identity, in every state, oldest first.
    pub operations: Vec<Operation>,
    pub status: Status,
    /// The audit records about the identity, in chain order.
    pub timeline: Vec<AuditRecord>,
}

/// One identity's account in one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountState {
    /// Operations on this target not yet settled.
    pub open_operations: usize,
    /// What Tenure has committed to, pending work included.
    pub planned: AccountView,
    /// What the target was last read back to hold: the verified operations, folded in the
    /// order they were verified.
    pub verified: AccountView,
    /// Grants an operation verified that the target's latest reconciliation did not find (a
    /// group deleted by hand): not in `verified`, and not in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
}

/// An account as Tenure sees it. `enabled` is false for an account that does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountView {
    pub enabled: bool,
    pub exists: bool,
    /// Entitlement names, sorted.
    pub grants: Vec<String>,
}

/// A journaled lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: i64,
    pub import_id: Option<i64>,
    pub source: String,
    pub kind: EventKind,
    pub identity: String,
    pub received_at: String,
    pub changes: Vec<Change>,
    pub significant: bool,
    pub note: Option<String>,
    pub state: EventState,
}

/// A change of one attribute carried by an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    pub attribute: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A record of the audit chain, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub identity: Option<String>,
    pub target: Option<String>,
    pub entitlement: Option<String>,
    pub reason: Option<String>,
    pub approver: Option<String>,
    pub outcome: String,
    pub prev_hash: String,
    pub hash: String,
}
