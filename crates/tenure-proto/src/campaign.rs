//! Certification campaigns (issue 10): a campaign, its review items, and the request bodies of
//! the campaign and review routes.

use serde::{Deserialize, Serialize};
use tenure_core::{CampaignState, OnTimeout, ReviewDecision, ReviewOutcome};

/// A certification campaign (`tenure campaign list|show`, `GET /api/v1/campaigns`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    /// `target:NAME`, `role:ID`, `entitlement:TARGET:NAME` or `privileged`.
    pub scope: String,
    /// `manager` or `owner:NAME`.
    pub reviewer: String,
    pub due_at: String,
    pub escalate_after_secs: Option<u64>,
    pub on_timeout: OnTimeout,
    pub state: CampaignState,
    pub created_by: String,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    pub timed_out_at: Option<String>,
    pub reminded_at: Option<String>,
    pub items: u64,
    pub decided: u64,
}

/// One identity's one entitlement under review (`tenure campaign show`, `GET /api/v1/reviews`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewItem {
    pub id: i64,
    pub campaign: i64,
    pub identity: String,
    /// `TARGET:NAME`.
    pub entitlement: String,
    /// Why it is held: the roles that grant it, `request:ID`, or `unmanaged/not in policy`.
    pub why: Vec<String>,
    /// The reviewer's identity id.
    pub reviewer: String,
    pub decision: Option<ReviewDecision>,
    pub justification: Option<String>,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    /// Reassignment and escalation notes, oldest first.
    pub note: Option<String>,
    pub escalated_at: Option<String>,
    /// The revoke operation carrying out a revoke decision.
    pub operation: Option<i64>,
    /// Who planned that revocation (the reviewer's command, the schedule).
    pub applied_by: Option<String>,
    /// When the revocation was read back from the target (verified).
    pub applied_at: Option<String>,
    pub outcome: Option<ReviewOutcome>,
}

/// `POST /api/v1/campaigns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub name: String,
    /// `target:NAME`, `role:ID`, `entitlement:TARGET:NAME` or `privileged`.
    pub scope: String,
    /// `manager` or `owner:NAME`.
    pub reviewer: String,
    /// `YYYY-MM-DD` (the end of that day, UTC) or an RFC 3339 time.
    pub due: String,
    /// `N` days, or a duration such as `3d` or `12h`.
    #[serde(default)]
    pub escalate_after: Option<String>,
    /// `revoke`, `keep` (the default) or `escalate`.
    #[serde(default)]
    pub on_timeout: Option<OnTimeout>,
}

/// `POST /api/v1/reviews/{id}`: a decision, or a reassignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `keep` or `revoke`; absent with `reassign`.
    #[serde(default)]
    pub decision: Option<ReviewDecision>,
    /// Why (required with a decision).
    #[serde(default)]
    pub reason: Option<String>,
    /// Hand the item to this reviewer (identity id or username) instead of deciding.
    #[serde(default)]
    pub reassign: Option<String>,
    /// Why it is reassigned (required with `reassign`).
    #[serde(default)]
    pub note: Option<String>,
}

/// `GET /api/v1/campaigns/{id}` (and `tenure campaign show --format json`): the campaign and its
/// items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignDetail {
    pub campaign: Campaign,
    pub items: Vec<ReviewItem>,
}
