use serde::{Deserialize, Serialize};
use tenure_core::{EventKind, OpKind, OpState};

/// One planned change to one target (`tenure plan`, `GET /api/v1/operations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operation {
    pub id: i64,
    /// The lifecycle case the operation belongs to.
    pub case_id: i64,
    /// The identity, or `orphan:TARGET:ACCOUNT` for an account nobody owns.
    pub identity: String,
    pub target: String,
    pub kind: OpKind,
    pub entitlement: Option<String>,
    pub reason: OpReason,
    /// The key that makes applying the operation twice harmless.
    pub idem_key: String,
    pub state: OpState,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub verified_at: Option<String>,
    /// The account acted on.
    pub account: Option<String>,
    pub note: Option<String>,
}

/// Why an operation was planned: the event behind it and the policy rules that want it, or the
/// reconciliation finding it fixes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpReason {
    pub event: Option<i64>,
    /// For a remediation: the finding it fixes; for a credential rotation: why it was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    pub kind: Option<EventKind>,
    /// For a revocation a certification review decided: the review item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<i64>,
    #[serde(default)]
    pub rules: Vec<String>,
}
