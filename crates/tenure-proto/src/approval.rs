use serde::{Deserialize, Serialize};
use tenure_core::{ApprovalKind, ApprovalState};

/// Something held for a person to decide: a snapshot batch past the guard, or reconciliation
/// remediation (`tenure approvals`, `GET /api/v1/approvals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    pub id: i64,
    pub kind: ApprovalKind,
    /// The held import (a batch) or the first reconciliation run (remediation).
    pub subject: i64,
    /// What is held, as recorded when it was held: `reason` (the guard limit it exceeds) and
    /// `source` always; for a batch `file` and `counts` (the import's counts), for remediation
    /// `runs`, `operations` and `cases`. It stays an object rather than a type until the
    /// governance work (requests, campaigns) settles what every kind of approval carries.
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
