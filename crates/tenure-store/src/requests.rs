//! Access requests: what is kept about each request and its approval
//! stages, and the [`Requests`] trait every store implements.
//!
//! The engine decides everything here (who the approvers are, whether a decision is allowed,
//! what the grant or its revocation plans); the store writes those decisions, each in one
//! transaction with its audit records: a request with its first stage's approval, a stage's
//! decision with the next stage or, for the last, the grant's plan and the request's expiry
//! (the store's clock plus the duration), the end of a request with the revocation's plan.
//! A stage's decision and an end each check that the request is still as the engine saw it.

use crate::Result;
use crate::records::Batch;
use std::collections::HashMap;
use tenure_core::audit::AuditEntry;
use tenure_core::{RequestState, Schema, StageState};

/// A request to store, with its stages resolved.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub role: String,
    pub identity: String,
    /// Who asked: a token's name, or the name the CLI was given.
    pub requester: String,
    /// How the requester was identified: `token:NAME`, `cli --as`, `cli`.
    pub via: String,
    pub reason: String,
    /// How long the grant lasts once approved; `None`: until revoked.
    pub duration_secs: Option<u64>,
    /// The role's entitlements, `TARGET:NAME`.
    pub entitlements: Vec<String>,
    /// The approval stages in order; at least one.
    pub stages: Vec<NewStage>,
    /// Further records after `request.created` (SoD predictions: `sod.flagged`, `sod.recorded`).
    pub audit: Vec<AuditEntry>,
}

/// One approval stage: who must decide, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStage {
    /// `manager`, `owner:NAME` or `sod:RULE` (the extra stage a flagged conflict needs).
    pub rule: String,
    /// The identity id (or, for an owner that is no identity, the name) that must decide.
    pub approver: String,
}

/// A stored request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: i64,
    pub role: String,
    pub identity: String,
    pub requester: String,
    pub via: String,
    pub reason: String,
    pub duration_secs: Option<u64>,
    pub entitlements: Vec<String>,
    pub state: RequestState,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub expires_at: Option<String>,
    pub ended_at: Option<String>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
    pub stages: Vec<StageRecord>,
}

impl RequestRecord {
    /// The stage waiting for a decision, if any.
    pub fn current_stage(&self) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.state == StageState::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecord {
    pub stage: u32,
    pub rule: String,
    pub approver: String,
    pub approval_id: Option<i64>,
    pub state: StageState,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub via: Option<String>,
}

/// An accepted-risk exception (`accepted_sod`) to record when the last stage approves (a flagged
/// SoD conflict), due at the request's expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedRisk {
    /// Unique per kind: `request:ID:sod:RULE`.
    pub subject: String,
    pub identity: String,
    pub target: Option<String>,
    pub owner: String,
    pub reason: String,
}

/// The approval of one stage, as the engine allowed it.
#[derive(Debug, Clone)]
pub struct StageApproval {
    pub approval_id: i64,
    /// The approver's name as recorded (`decided_by`, the audit record's `approver`).
    pub by: String,
    /// How the approver was identified (`token:NAME`, `cli --as`).
    pub via: String,
    /// Set when this is the last stage: the grant's plan (one event for the identity), written
    /// in the same transaction, and the request becomes `granted` with `expires_at` the store's
    /// now plus its duration.
    pub grant: Option<Batch>,
    /// Accepted-risk exceptions opened with the grant.
    pub exceptions: Vec<AcceptedRisk>,
    /// Records about the decision (the stage approved, the grant, SoD), appended before the
    /// grant's plan.
    pub audit: Vec<AuditEntry>,
}

/// The end of a request before its identity leaves: a granted one at its expiry, a pending or
/// granted one revoked early.
#[derive(Debug, Clone)]
pub struct RequestEnd {
    pub request_id: i64,
    /// `expired` or `revoked`.
    pub state: RequestState,
    /// Who ended it, as recorded (`schedule:grant_expiry`, a person's name).
    pub by: String,
    pub reason: String,
    /// The revocation's plan for the identity (none for a request that was never granted; it
    /// may plan nothing when the grant is already gone); its open accepted-risk exceptions are
    /// resolved.
    pub batch: Option<Batch>,
    pub audit: Vec<AuditEntry>,
}

/// What one event's plan does to access requests: a role with `approval` is never granted by
/// its birthright condition alone; when the condition begins to match, a request is opened
/// (asked by the policy, `via` `birthright`), and when it stops, the request is ended.
#[derive(Debug, Clone, Default)]
pub struct RequestChanges {
    /// Requests to open, each with its first stage's approval, audited as `request.created`
    /// with the batch's actor.
    pub open: Vec<NewRequest>,
    /// Requests to end.
    pub end: Vec<EndRequest>,
}

impl RequestChanges {
    pub fn is_empty(&self) -> bool {
        self.open.is_empty() && self.end.is_empty()
    }
}

/// A request an event's plan ends: a pending one `cancelled`, a granted one `revoked` (its grant
/// is revoked by the same plan). The write fails with `Conflict` when the request is no longer
/// in state `was`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRequest {
    pub request_id: i64,
    pub was: RequestState,
    pub state: RequestState,
    pub reason: String,
}

/// A granted request as planning sees it: the entitlements it adds until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestGrant {
    pub request_id: i64,
    pub role: String,
    pub entitlements: Vec<String>,
    pub expires_at: Option<String>,
}

/// The request table. Implementations are safe to share between threads.
pub trait Requests: Send + Sync {
    /// Stores a request in `pending` with its stages and opens the first stage's approval,
    /// audited as `request.created` (with the requester and `via`) and the first
    /// `request.stage_opened`, then `r.audit`.
    fn create_request(&self, r: &NewRequest) -> Result<RequestRecord>;
    /// Every request (the open ones only: `pending` and `granted`), newest first.
    fn requests(&self, open_only: bool) -> Result<Vec<RequestRecord>>;
    /// Fails with `NotFound` when there is no such request.
    fn request(&self, id: i64) -> Result<RequestRecord>;
    /// The request whose stage approval `approval_id` is.
    fn request_by_approval(&self, approval_id: i64) -> Result<Option<RequestRecord>>;
    /// Approves the pending stage `d.approval_id` (its approval `approved`, audited as
    /// `approval.approved` with the approver and `via`), and opens the next stage or, for the
    /// last, writes the grant. Fails with `Conflict` when the stage is no longer pending.
    fn approve_stage(&self, schema: &Schema, d: &StageApproval) -> Result<RequestRecord>;
    /// `Store::reject` recording how the decider was identified (`via`: `token:NAME`, `cli
    /// --as`, `cli`; the actor is `token:NAME` through a token). A request's pending stage
    /// rejects the request (`rejected`, its later stages `cancelled`), audited as
    /// `approval.rejected` and `request.rejected`. Fails with `Conflict` when the approval is no
    /// longer pending.
    fn reject_via(&self, approval_id: i64, by: &str, via: &str, reason: &str) -> Result<()>;
    /// Ends a granted request (`expired` or `revoked`), or a pending one (`revoked`), and writes
    /// its revocation's plan. Fails with `Conflict` when it is no longer in that state.
    fn end_request(&self, schema: &Schema, e: &RequestEnd) -> Result<RequestRecord>;
    /// The granted requests (whatever their expiry: the engine compares with its clock) of the
    /// given identities, or of every identity, by identity.
    fn request_grants(&self, identities: Option<&[&str]>) -> Result<HashMap<String, Vec<RequestGrant>>>;
    /// The source an identity belongs to (where a plan for it is recorded), if it is stored.
    fn identity_source(&self, identity: &str) -> Result<Option<String>>;
}
