use serde::{Deserialize, Serialize};
use tenure_core::CorrelationState;

/// An identity a correlation rule matched an account to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrelationCandidate {
    pub identity: String,
    /// `employee_number`, `username`, `email` or `name`.
    pub rule: String,
    /// From 0 to 1.
    pub confidence: f64,
}

/// An account found in a target before Tenure managed it that the rules could not decide
/// (`tenure correlations`, `GET /api/v1/correlations`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrelationCase {
    pub id: i64,
    pub target: String,
    pub account: String,
    pub state: CorrelationState,
    /// Why no rule decided it.
    pub why: String,
    pub candidates: Vec<CorrelationCandidate>,
    /// The account's correlation id and email as read.
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    pub grants: Vec<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    /// The identity a `linked` case was decided for.
    pub identity: Option<String>,
    pub reason: Option<String>,
}

/// `POST /api/v1/correlations/{id}/decide`: exactly one of `to` (an identity id) and
/// `orphan: true`; `reason` is required for an orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CorrelateRequest {
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub orphan: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// What deciding a case did: the case as decided and the operations planned for the linked
/// identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrelationDecided {
    pub case: CorrelationCase,
    pub operations: usize,
}
