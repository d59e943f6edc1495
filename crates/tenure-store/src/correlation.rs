//! Brownfield correlation: the accounts found in a target before Tenure managed it, linked to
//! identities by a rule or left as *correlation cases* for a person ([`Correlations`],
//! migration 0012).
//!
//! The engine decides (`tenure_engine::correlation`); the store writes the decision with its
//! audit records in one transaction and checks the precondition it was made under: a target is
//! correlated once (its baseline), a case is decided once, and an account or an identity is
//! linked at most once per target.

use crate::Result;
use serde::{Deserialize, Serialize};
use tenure_core::CorrelationState;

/// An identity a rule matched an account to, with how sure the match is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub identity: String,
    /// The rule's name (`employee_number`, `username`, `email`, `name`).
    pub rule: String,
    pub confidence: f64,
}

/// An account linked to an identity by a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkIn {
    pub account: String,
    pub identity: String,
    pub rule: String,
    pub confidence: f64,
    /// The account as read: the state the identity's first plan on the target starts from.
    pub enabled: bool,
    pub grants: Vec<String>,
}

/// An account the rules could not decide, for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseIn {
    pub account: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    pub grants: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// Why no rule decided it, in a sentence.
    pub why: String,
}

/// An account no rule matched, kept so an identity that arrives later is correlated with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmatched {
    pub account: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    pub grants: Vec<String>,
}

/// One target's correlation: its links, cases and unmatched accounts, recorded once.
#[derive(Debug, Clone)]
pub struct Baseline<'a> {
    pub target: &'a str,
    /// How many accounts were read.
    pub accounts: usize,
    pub links: &'a [LinkIn],
    pub cases: &'a [CaseIn],
    pub unmatched: &'a [Unmatched],
    /// Who ran it (the import's actor), for the audit trail.
    pub actor: &'a str,
}

/// Unmatched accounts of a correlated target that a rule matched to identities that arrived
/// since: each becomes a link or a case and leaves the unmatched accounts.
#[derive(Debug, Clone)]
pub struct LateMatches<'a> {
    pub target: &'a str,
    pub links: &'a [LinkIn],
    pub cases: &'a [CaseIn],
    pub actor: &'a str,
}

/// One target's correlation carried in a batch ([`crate::Batch::correlation`]) and written in
/// its transaction, by the batch's actor: a baseline (`accounts` read) or late matches (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationIn {
    pub target: String,
    /// How many accounts were read, for a baseline; `None` for late matches.
    pub baseline: Option<usize>,
    pub links: Vec<LinkIn>,
    pub cases: Vec<CaseIn>,
    pub unmatched: Vec<Unmatched>,
}

/// A stored link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRecord {
    pub target: String,
    pub account: String,
    pub identity: String,
    /// The rule that linked it, or `person` for a decided case.
    pub rule: String,
    pub confidence: f64,
    pub enabled: bool,
    pub grants: Vec<String>,
    pub case_id: Option<i64>,
    pub linked_by: String,
    pub linked_at: String,
}

/// A stored correlation case.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationCase {
    pub id: i64,
    pub target: String,
    pub account: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    pub grants: Vec<String>,
    pub candidates: Vec<Candidate>,
    pub why: String,
    pub state: CorrelationState,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    /// The identity a `linked` case was decided for.
    pub identity: Option<String>,
    pub reason: Option<String>,
}

/// What a person decided about a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The account is this identity's.
    Link { identity: String },
    /// The account is nobody's Tenure knows, for good.
    Orphan,
}

/// A decision to record.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub case_id: i64,
    pub verdict: Verdict,
    pub reason: &'a str,
    /// Who decided (`alice`, or a token's name), recorded as `decided_by` and the approver.
    pub by: &'a str,
    /// The audit actor and `linked_by`: `user:alice` from the CLI, `token:NAME` through the API.
    pub actor: &'a str,
    /// The audit record's reason, written by the engine: who was chosen, which candidates were
    /// refused and why.
    pub detail: String,
}

/// A `create_account` that met an account of the identity's name carrying no correlation id of
/// its (made by hand, after the target's baseline): it is never adopted, it becomes a case.
#[derive(Debug, Clone)]
pub struct RefusedAdoption<'a> {
    /// The create operation, still claimed by `owner`.
    pub op: i64,
    pub owner: &'a str,
    pub identity: &'a str,
    pub target: &'a str,
    /// The account as read, with the identity as its candidate.
    pub case: CaseIn,
    /// The note the create and the identity's other queued operations on the target are
    /// cancelled with.
    pub note: String,
    /// The create's audit record (`apply.create_account`, outcome `cancelled`).
    pub audit: tenure_core::audit::AuditEntry,
}

/// The correlation tables. Implementations are safe to share between threads.
pub trait Correlations: Send + Sync {
    /// The targets already correlated, by name, with when.
    fn baselines(&self) -> Result<Vec<(String, String)>>;
    /// Records one target's correlation: the baseline, each link (audited `correlation.linked`
    /// with its rule and confidence) and each case (audited `correlation.case_opened` with its
    /// candidates), in one transaction. Returns the new cases' ids in the order given. Fails
    /// with `Conflict`, changing nothing, when the target was correlated already or a link's
    /// account or identity is linked there already.
    fn record_baseline(&self, baseline: &Baseline<'_>) -> Result<Vec<i64>>;
    /// The unmatched accounts of every correlated target, by target and account.
    fn unmatched_accounts(&self) -> Result<Vec<(String, Unmatched)>>;
    /// Records what rules matched among a target's unmatched accounts (links and cases, audited
    /// as at the baseline) and removes those accounts from the unmatched ones, in one
    /// transaction. Returns the new cases' ids. Fails with `Conflict`, changing nothing, when an
    /// account is no longer unmatched or an account or identity is linked there already.
    fn record_late_matches(&self, matches: &LateMatches<'_>) -> Result<Vec<i64>>;
    /// Every link, or one target's.
    fn correlation_links(&self, target: Option<&str>) -> Result<Vec<LinkRecord>>;
    /// The cases by id, open ones only or all.
    fn correlation_cases(&self, open_only: bool) -> Result<Vec<CorrelationCase>>;
    /// One case; `NotFound` if there is none with that id.
    fn correlation_case(&self, id: i64) -> Result<CorrelationCase>;
    /// Decides an open case, audited `correlation.decided` as `user:BY`: a link also stores the
    /// account as the identity's (rule `person`, confidence 1). Fails with `NotFound` for an
    /// unknown case and `Conflict` for a decided one or when the identity already has a linked
    /// account in the target, changing nothing.
    fn decide_correlation(&self, decision: &Decision<'_>) -> Result<CorrelationCase>;
    /// Records a refused adoption, in one transaction: the create is cancelled (only while
    /// `owner` still holds its claim), and so is every other operation of the identity on the
    /// target that is pending or claimed by `owner`; the identity's account and grants there leave
    /// its holdings (the account is not its own until a person decides); and a correlation case
    /// is opened for the account (or the account's open case is reused), audited
    /// `correlation.case_opened` with the identity. Returns the case's id, or `None` when the
    /// claim was lost (then nothing changed). A person's `decide_correlation` of the case then
    /// links the account, or leaves it an orphan.
    fn refuse_adoption(&self, refused: &RefusedAdoption<'_>) -> Result<Option<i64>>;
}
