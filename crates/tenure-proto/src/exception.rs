use serde::{Deserialize, Serialize};
use tenure_core::{ExceptionKind, ExceptionState};

/// A recorded deviation: control debt, such as an overdue ticket, a failed revocation, a
/// declined fix or an accepted SoD risk (`tenure exceptions`, `GET /api/v1/exceptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exception {
    pub id: i64,
    pub kind: ExceptionKind,
    /// What it is about: `operation:ID`, `ticket:ID`, `case:ID`, ...
    pub subject: String,
    pub case_id: Option<i64>,
    pub identity: Option<String>,
    pub target: Option<String>,
    pub owner: String,
    pub reason: String,
    pub state: ExceptionState,
    /// When it was opened.
    pub created_at: String,
    /// When it was resolved or accepted.
    pub resolved_at: Option<String>,
    /// By when it is to be dealt with, or when an accepted risk is looked at again.
    pub due_at: Option<String>,
    /// Who resolved or accepted it, and why.
    pub closed_by: Option<String>,
    pub close_reason: Option<String>,
    /// Seconds since it was opened (until it was closed, for a closed one).
    pub age_seconds: i64,
    /// Open (or accepted) and past its due date.
    pub overdue: bool,
}

/// `POST /api/v1/exceptions/{id}/resolve` and `/accept`: why, and for an acceptance, when to
/// look at the risk again (`YYYY-MM-DD` or RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExceptionDecision {
    pub reason: String,
    #[serde(default)]
    pub due: Option<String>,
}
