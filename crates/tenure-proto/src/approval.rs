use serde::{Deserialize, Serialize};
use tenure_core::{ApprovalKind, ApprovalState};

/// Something held for a person to decide: a snapshot batch past the guard, reconciliation
/// remediation, or one stage of an access request (`tenure approvals`, `GET /api/v1/approvals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    pub id: i64,
    pub kind: ApprovalKind,
    /// The held import (a batch), the first reconciliation run (remediation) or the access
    /// request (a request's stage).
    pub subject: i64,
    /// What is held, as recorded when it was held. A batch: `reason` (the guard limit it
    /// exceeds), `source`, `file` and `counts` (the import's counts); remediation: `reason`,
    /// `source`, `runs`, `operations` and `cases`; a request's stage: `request`, `role`,
    /// `identity`, `requester`, `reason` (the requester's), `stage` (from 1) of `stages`,
    /// `rule`, `approver`, `duration_secs` and `entitlements`. It stays an object rather than a
    /// type until the governance work (campaigns) settles what every kind of approval carries.
    pub summary: serde_json::Value,
    pub state: ApprovalState,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

impl Approval {
    /// A string field of the summary (`reason`, `file`, `source`), if it has one.
    pub fn summary_str(&self, key: &str) -> Option<&str> {
        self.summary.get(key).and_then(|v| v.as_str())
    }
}
