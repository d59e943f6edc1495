use serde::{Deserialize, Serialize};
use tenure_core::{ExceptionKind, ExceptionState};

/// A recorded deviation: control debt, such as an overdue ticket or a failed operation
/// (`tenure exceptions`, `GET /api/v1/exceptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exception {
    pub id: i64,
    pub kind: ExceptionKind,
    /// What it is about: `operation:ID`, `ticket:ID`, ...
    pub subject: String,
    pub case_id: Option<i64>,
    pub identity: Option<String>,
    pub target: Option<String>,
    pub owner: String,
    pub reason: String,
    pub state: ExceptionState,
    pub created_at: String,
    pub resolved_at: Option<String>,
}
