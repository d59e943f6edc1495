//! The wire types: the JSON shapes `tenure --format json` prints and the REST API will serve.
//!
//! These are their own types, apart from the store's records (`tenure_store::OpRecord`, ...),
//! so the database schema can change without changing what scripts and API clients read, and a
//! column added for the store's own use never leaks out. The engine converts records into these
//! types (`tenure_engine::views`) and computes the reports (`tenure_engine::reports`); the
//! binary and the server only print or serve them. This crate holds serde types and nothing
//! else: no store, no IO, and of `tenure-core` only the kinds, states and the error body.
//!
//! Field order is the order in which fields are printed. The types that replaced objects the
//! binary used to build with `serde_json::json!` (which sorts keys) declare their fields in
//! sorted order, so the printed bytes did not change.
//!
//! Report types the engine already owned and printed as they are (`ImportReport`,
//! `Simulation`, the evidence reports) stay in the engine for now; they move here when the
//! import code they sit in is next reshaped.

mod api;
mod approval;
mod campaign;
mod case;
mod correlation;
mod exception;
mod explain;
mod identity;
mod nhi;
mod operation;
mod reconcile;
mod report;
mod request;
mod schedule;
mod task;
mod token;

pub use api::{Decision, Page, RejectRequest, Retried, TaskDoneRequest};
pub use approval::Approval;
pub use campaign::{Campaign, CampaignDetail, CreateCampaign, ReviewItem, ReviewRequest};
pub use case::Case;
pub use correlation::{CorrelateRequest, CorrelationCandidate, CorrelationCase, CorrelationDecided};
pub use exception::{Exception, ExceptionDecision};
pub use explain::{
    AttributeChange, Explanation, Fact, LiveAccount, PlannedChange, RoleTrace, SodOutcome, TargetEffect,
};
pub use identity::{AccountState, AccountView, AuditRecord, Change, Event, IdentityDetail, IdentitySummary};
pub use nhi::Rotation;
pub use operation::{OpReason, Operation};
pub use reconcile::{Finding, ReconReport, RemediationReport, SkippedTarget, TargetReport, UnmanagedGrant};
pub use report::{ApplyReport, CheckReport, CheckSummary, ClassCoverage, Coverage, ExecReport, Problem, RevokeTimes};
pub use request::{NewRequestBody, Request, RequestStage, RevokeRequestBody};
pub use schedule::{JobReport, ScheduleRun};
pub use task::Ticket;
pub use token::{CreatedToken, Token};

/// The error body of every failed request and of every `--format json` failure.
pub use tenure_core::error::{Code, ErrorBody};
/// The kinds, states and outcomes the wire types carry, as the strings they print as.
pub use tenure_core::{
    ApprovalKind, ApprovalState, CampaignState, CaseState, CorrelationState, EventKind, EventState, ExceptionKind,
    ExceptionState, FindingKind, JobOutcome, Kind, OnTimeout, OpKind, OpState, ReviewDecision, ReviewOutcome, Scope,
    Status, TicketState,
};

#[cfg(test)]
mod tests;
