use serde::{Deserialize, Serialize};
use tenure_core::{RequestState, StageState};

/// An access request for a requestable role (`tenure requests`, `GET /api/v1/requests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Request {
    pub id: i64,
    pub role: String,
    /// The identity the role is asked for.
    pub identity: String,
    /// Who asked: a token's name, or the name the CLI was given.
    pub requester: String,
    /// How the requester was identified: `token:NAME`, `cli --as` or `cli`.
    pub via: String,
    pub reason: String,
    /// How long the grant lasts once approved; none: until revoked.
    pub duration_secs: Option<u64>,
    /// The role's entitlements, `TARGET:NAME`.
    pub entitlements: Vec<String>,
    pub state: RequestState,
    pub created_at: String,
    pub decided_at: Option<String>,
    /// When the grant is revoked (the last approval's time plus the duration).
    pub expires_at: Option<String>,
    pub ended_at: Option<String>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
    /// The approval stages in order.
    pub stages: Vec<RequestStage>,
}

/// One approval stage of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestStage {
    /// 1 for the first stage.
    pub stage: u32,
    /// `manager`, `owner:NAME`, or `sod:RULE` for the extra stage a flagged SoD conflict needs.
    pub rule: String,
    /// The identity (or name) that must decide.
    pub approver: String,
    /// The approval to decide (`tenure approve ID`), once the stage is open.
    pub approval_id: Option<i64>,
    pub state: StageState,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// How the approver was identified: `token:NAME`, `cli --as` or `cli`.
    pub via: Option<String>,
}

/// `POST /api/v1/requests`: the requester is the token's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRequestBody {
    pub role: String,
    /// The identity id the role is for.
    pub identity: String,
    pub reason: String,
    /// `2s`, `30m`, `8h`, `7d`; at most the role's `max_duration` (its default).
    pub duration: Option<String>,
}

/// `POST /api/v1/requests/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeRequestBody {
    /// Why it ends early; without one, `revoked early by NAME` is recorded (as the CLI does).
    /// A reason given must not be blank.
    #[serde(default)]
    pub reason: Option<String>,
}
