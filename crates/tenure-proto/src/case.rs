use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenure_core::{CaseState, EventKind, OpState};

/// A lifecycle case: one event's operations, closed when every one is verified or excepted
/// (`tenure cases`, `GET /api/v1/cases`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Case {
    pub id: i64,
    pub event_id: i64,
    pub identity: String,
    pub kind: EventKind,
    pub state: CaseState,
    pub opened_at: String,
    pub closed_at: Option<String>,
    /// For a closed leaver case: milliseconds from the event to the last verified revocation.
    pub revoke_ms: Option<i64>,
    /// Operation counts by state.
    pub ops: BTreeMap<OpState, i64>,
}

impl Case {
    /// Operations in the case, and those settled (verified, excepted or no longer needed).
    pub fn progress(&self) -> (i64, i64) {
        let total = self.ops.values().sum();
        let settled = self.ops.iter().filter(|(s, _)| s.is_settled()).map(|(_, n)| n).sum();
        (settled, total)
    }
}
