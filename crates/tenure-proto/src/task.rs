use serde::{Deserialize, Serialize};
use tenure_core::TicketState;

/// A ticket for a manual target: a person does the work and closes it with evidence
/// (`tenure tasks`, `GET /api/v1/tasks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ticket {
    pub id: i64,
    pub operation_id: i64,
    pub target: String,
    /// Who works the ticket (the target's `owner`).
    pub owner: String,
    pub identity: String,
    pub summary: String,
    pub state: TicketState,
    pub created_at: String,
    pub due_at: String,
    pub done_at: Option<String>,
    pub done_by: Option<String>,
    pub evidence: Option<String>,
    /// Open and past its due time.
    pub overdue: bool,
}
