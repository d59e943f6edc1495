//! Shapes only the REST API has: a page of a list, the request bodies of decisions, and what a
//! decision answers.

use serde::{Deserialize, Serialize};

/// One page of a list. `next_cursor` is opaque: pass it back as `?cursor=` for the next page;
/// it is absent on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/approvals/{id}/reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why: recorded with the decision and in the audit trail.
    pub reason: String,
}

/// `POST /api/v1/tasks/{id}/done`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskDoneRequest {
    /// What was done, as evidence (a ticket number, a screenshot's location).
    pub evidence: String,
}

/// What approving released: a held batch applied (its events, operations and cases), held
/// remediation released (its operations), or an access request's stage approved (the request
/// as it stands now: granted after its last stage, else waiting for the next approver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    pub approval: crate::Approval,
    pub events: usize,
    pub operations: usize,
    pub cases: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<crate::Request>,
}

/// `POST /api/v1/operations/retry`: how many failed operations were queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retried {
    pub retried: usize,
}
