//! The store's side of certification campaigns (issue 10): campaigns, their review items, the
//! decisions on them, and the revocations that carry out `revoke` decisions.
//!
//! As everywhere in the store, the decisions are made above: which items a scope selects, who
//! reviews each, whether a reviewer may decide, what the guard says about a batch of
//! revocations. This trait records them, each write in one transaction with its audit records,
//! and checks the precondition it was computed under (the campaign still open, the item still
//! undecided and still the reviewer's, the access still held), failing with `conflict` when it
//! no longer holds.
//!
//! A revocation is planned like reconciliation's remediation: an event and a case of its own per
//! identity (never replaced by a later import's plan), `pending` operations or `held` ones with a
//! remediation approval that `tenure approve` releases. The grant leaves Tenure's committed
//! holdings in the same transaction (a held one when its approval releases it; declining the
//! approval resolves the review's exception and the access stays), and a `manual_override`
//! exception (subject `review:ITEM`) records the deviation from policy;
//! [`Campaigns::review_overrides`] is what every planning path excludes from the desired state
//! while that exception is not resolved and the revocation is not held.

use crate::Result;
use std::collections::{BTreeSet, HashMap};
use tenure_core::{CampaignState, Entitlement, OnTimeout, OpState, ReviewDecision};

/// A campaign to create, with its items (already selected and assigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaign {
    pub name: String,
    /// The scope as written (`target:directory`), for the record.
    pub scope: String,
    /// The reviewer rule as written (`manager`, `owner:NAME`).
    pub reviewer: String,
    pub due_at: String,
    pub escalate_after_secs: Option<u64>,
    pub on_timeout: OnTimeout,
    /// Who creates it (a person's name or a token's), recorded on the campaign.
    pub created_by: String,
    /// The audit actor (`user:NAME`, `token:NAME`).
    pub actor: String,
    pub items: Vec<NewItem>,
    /// A mover micro-review: the significant mover event it reviews (recorded as checked in
    /// the same transaction; `conflict` if it was already).
    pub mover_event: Option<i64>,
}

/// One identity's one entitlement under review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub identity: String,
    pub target: String,
    pub entitlement: String,
    /// Why it is held: role ids, `request:ID`, or `unmanaged/not in policy`.
    pub why: Vec<String>,
    /// The reviewer's identity id.
    pub reviewer: String,
    /// Why this reviewer, when the rule did not give the obvious one (a manager who is not
    /// active, no manager at all).
    pub note: Option<String>,
}

/// A campaign as stored, with its item counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRecord {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub reviewer: String,
    pub due_at: String,
    pub escalate_after_secs: Option<u64>,
    pub on_timeout: OnTimeout,
    pub state: CampaignState,
    pub created_by: String,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    /// When `on_timeout` was applied to the items left unreviewed at the due date.
    pub timed_out_at: Option<String>,
    /// When the reviewers with open items were reminded (a day before the due date).
    pub reminded_at: Option<String>,
    pub items: u64,
    pub decided: u64,
}

/// A review item as stored, with the state of the operation carrying out its revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub id: i64,
    pub campaign_id: i64,
    pub campaign_state: CampaignState,
    pub identity: String,
    pub target: String,
    pub entitlement: String,
    pub why: Vec<String>,
    pub reviewer: String,
    pub decision: Option<ReviewDecision>,
    pub justification: Option<String>,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    /// Reassignment and escalation notes, oldest first, one per line.
    pub note: Option<String>,
    pub escalated_at: Option<String>,
    pub operation_id: Option<i64>,
    /// The state of that operation, read with the item: its outcome is the operation's.
    pub operation_state: Option<OpState>,
    /// When that operation was verified (read back from the target).
    pub verified_at: Option<String>,
    pub applied_by: Option<String>,
    pub applied_at: Option<String>,
    pub not_held: bool,
}

/// Which items to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemFilter {
    pub campaign: Option<i64>,
    /// Items assigned to this reviewer (identity id).
    pub reviewer: Option<String>,
    /// Only undecided items of open campaigns.
    pub open_only: bool,
}

/// A decision on one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemDecision {
    pub item: i64,
    pub decision: ReviewDecision,
    pub justification: String,
    /// Who decided (the reviewer's identity id, or `schedule:campaigns` for a timeout).
    pub by: String,
    /// The reviewer the engine checked the decider against: the write fails with `conflict` if
    /// the item was reassigned meanwhile.
    pub reviewer: String,
    /// The audit actor (`user:NAME` from the command line, `token:NAME` through the API,
    /// `schedule:campaigns`).
    pub actor: String,
}

/// An item handed to another reviewer: by a person (`reassign`), or by the schedule (an
/// escalation to the reviewer's manager).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub item: i64,
    /// The reviewer it had when this was decided (`conflict` otherwise).
    pub from: String,
    pub to: String,
    pub note: String,
    /// An escalation (audited as `review.escalate`): the item is marked escalated, at the first
    /// one.
    pub escalation: bool,
}

/// A campaign's due date reached: its unreviewed items' decisions (`revoke` or `keep`, decided by
/// the schedule) or escalations, recorded with the campaign's `timed_out_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeout {
    pub campaign: i64,
    pub decisions: Vec<ItemDecision>,
    pub escalations: Vec<Reassignment>,
}

/// One revocation carrying out a revoke decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRevocation {
    pub item: i64,
    pub identity: String,
    pub target: String,
    pub entitlement: String,
    /// The account in the target, as the holdings name it.
    pub account: Option<String>,
    /// The roles that grant it (the operation's `rules`).
    pub rules: Vec<String>,
    /// The exception's owner: the reviewer who decided.
    pub owner: String,
    /// The exception's and the operation's reason.
    pub detail: String,
}

/// Revocations to plan in one transaction, through the guard's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRevocations {
    pub revoke: Vec<ReviewRevocation>,
    /// Revoke decisions whose access was already gone: recorded as `not_held`, nothing planned.
    pub not_held: Vec<i64>,
    /// Set when the guard holds the batch: why.
    pub held: Option<String>,
    pub actor: String,
}

/// What [`Campaigns::plan_review_revocations`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationIds {
    pub operations: usize,
    pub cases: Vec<i64>,
    pub approval_id: Option<i64>,
}

/// Campaign state. Implementations are safe to share between threads.
pub trait Campaigns: Send + Sync {
    /// Creates a campaign with its items, audited as `campaign.create` with `actor`.
    fn create_campaign(&self, c: &NewCampaign) -> Result<CampaignRecord>;
    /// Significant mover events (applied, since campaigns exist) not yet checked for a
    /// micro-review, oldest first: `(event id, identity)`.
    fn unchecked_movers(&self) -> Result<Vec<(i64, String)>>;
    /// Records significant movers as checked without a campaign (they held no requested access).
    fn movers_checked(&self, movers: &[(i64, String)]) -> Result<()>;
    /// Every campaign, oldest first.
    fn campaigns(&self) -> Result<Vec<CampaignRecord>>;
    /// One campaign; `not_found` if there is none.
    fn campaign(&self, id: i64) -> Result<CampaignRecord>;
    /// Items in id order.
    fn campaign_items(&self, filter: &ItemFilter) -> Result<Vec<ItemRecord>>;
    /// One item; `not_found` if there is none.
    fn campaign_item(&self, id: i64) -> Result<ItemRecord>;
    /// Records a decision, audited as `review.keep` or `review.revoke` with the decider as the
    /// approver. `conflict` when the campaign is closed, the item decided or reassigned.
    fn decide_item(&self, d: &ItemDecision) -> Result<ItemRecord>;
    /// Hands undecided items to other reviewers (a person's reassignment, audited as
    /// `review.reassign`; the schedule's escalations, `review.escalate`), each with its note.
    fn reassign_items(&self, r: &[Reassignment], actor: &str) -> Result<Vec<ItemRecord>>;
    /// Applies `on_timeout` to a campaign past its due date, once: `conflict` if it was applied
    /// already, the campaign is closed, or an item changed meanwhile. Audited as
    /// `campaign.timeout` and each item's decision or escalation.
    fn time_out(&self, t: &Timeout, actor: &str) -> Result<()>;
    /// Reminds each of `reviewers` (with how many open items they have) of an open campaign
    /// once, audited as one `campaign.reminder` per reviewer; `conflict` if it was reminded
    /// already or is closed.
    fn remind(&self, campaign: i64, reviewers: &[(String, usize)], actor: &str) -> Result<()>;
    /// Closes an open campaign, audited as `campaign.close` (with how many items were left
    /// unreviewed); `conflict` if it is closed already.
    fn close_campaign(&self, id: i64, by: &str, actor: &str) -> Result<CampaignRecord>;
    /// Revoke decisions not yet carried out: decided `revoke`, no operation, not `not_held`.
    fn unplanned_revocations(&self) -> Result<Vec<ItemRecord>>;
    /// Identities with a review revocation planned at or after `since`: what the guard's window
    /// adds to a new batch.
    fn recent_review_revocations(&self, since: &str) -> Result<BTreeSet<String>>;
    /// Plans the revocations (see the module doc), and records the `not_held` ones. `conflict`
    /// when an item is no longer an unplanned revoke decision or its grant is no longer held.
    fn plan_review_revocations(&self, r: &ReviewRevocations) -> Result<RevocationIds>;
    /// The entitlements reviews revoked that planning must not grant again, by identity (of the
    /// given identities, or of all): revoke decisions carried out whose
    /// `review:ITEM` exception is not resolved and whose operation the guard does not hold (a
    /// held revocation's grant stays in the holdings until its approval releases it; declining
    /// the approval resolves the exception and the access stays).
    fn review_overrides(&self, identities: Option<&[&str]>) -> Result<HashMap<String, BTreeSet<Entitlement>>>;
    /// The review items whose held revocations remediation approval `approval_id` would
    /// release, with who decided each (`(item, decided_by)`, by item id): none for an approval
    /// that holds no review revocation.
    fn held_review_deciders(&self, approval_id: i64) -> Result<Vec<(i64, String)>>;
}
