//! Policy as code: `policy.toml` loaded, validated, compiled and evaluated.
//!
//! The policy is typed and validated at load against the config's attribute schema and targets:
//! a misspelt attribute, an unknown target or an undeclared entitlement is a load error with
//! file, line and reason, never a silent no-match (a typo must not deprovision anyone).
//!
//! Two evaluators decide which birthright roles an identity qualifies for:
//! - [`reference::matching_roles`] interprets the condition tree directly. It is obviously right
//!   and slow.
//! - [`compiled::Compiled`] interns every string the policy compares against, indexes roles by
//!   an equality condition so an identity only looks at roles that can match, and compares dates
//!   as ISO strings. It is what the engine uses; a property test checks the two always agree.
//!
//! This crate does no IO.

pub mod compiled;
pub mod parse;
pub mod reference;

use std::collections::{BTreeMap, BTreeSet};
use tenure_core::{Entitlement, Slot};

pub use compiled::Compiled;
pub use parse::parse;

/// A condition over identity attributes.
#[derive(Debug, Clone)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Attr(Slot, Test),
}

/// A test of one attribute's value. A missing value fails every test except `Present(false)`
/// (and so satisfies a `not`).
#[derive(Debug, Clone)]
pub enum Test {
    Eq(String),
    In(Vec<String>),
    Prefix(String),
    Suffix(String),
    Regex(regex::Regex),
    /// Compares a date attribute with a date (relative dates are resolved at load).
    Date(DateOp, chrono::NaiveDate),
    Present(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOp {
    Before,
    After,
    OnOrBefore,
    OnOrAfter,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    /// The birthright condition. A role without one is only granted by request and approval.
    pub when: Option<Cond>,
    pub grant: Vec<Entitlement>,
    pub privileged: bool,
    /// Whether it can be asked for with `tenure request` (`requestable = true`; privileged
    /// roles and roles granted only by approval are requestable unless they say otherwise).
    pub requestable: bool,
    /// Who approves a request for it, one stage after another in order (empty: no approval,
    /// so not requestable).
    pub approval: Vec<ApprovalStage>,
    /// Seconds a requested grant lasts at most before it is revoked.
    pub max_duration: Option<u64>,
    /// `grant` as indices into [`Policy::entitlements`], for set arithmetic without strings.
    pub grant_ids: Vec<u32>,
}

/// One approval stage of a requestable role (`approval = "manager"`, `"owner:NAME"`, or a list
/// of those, decided in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalStage {
    /// The identity's manager from HR (`manager_id`); if that manager is not active, the
    /// manager's manager.
    Manager,
    /// A named person: an identity id or username.
    Owner(String),
}

impl std::fmt::Display for ApprovalStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApprovalStage::Manager => f.write_str("manager"),
            ApprovalStage::Owner(n) => write!(f, "owner:{n}"),
        }
    }
}

/// Whether a separation-of-duties rule is enforced or only recorded (`mode = "record"`, for a
/// gradual rollout: violations are audited and reported, nothing is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SodMode {
    #[default]
    Enforce,
    Record,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SodAction {
    Block,
    Flag,
}

#[derive(Debug, Clone)]
pub struct Sod {
    pub id: String,
    pub conflict: Vec<Entitlement>,
    pub action: SodAction,
    pub mode: SodMode,
    /// Who accepts the risk of a `flag` conflict on a request (an identity id or username);
    /// without one, the identity's manager approves the extra stage.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnOwnerLeave {
    TransferToManager,
    Revoke,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub roles: Vec<Role>,
    /// Every entitlement any role grants, each once.
    pub entitlements: Vec<Entitlement>,
    pub sod: Vec<Sod>,
    /// Attributes whose change makes a mover security-significant.
    pub significant: Vec<Slot>,
    pub on_owner_leave: OnOwnerLeave,
}

/// Desired entitlements per target, with the roles that grant each one.
pub type Desired = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// What a separation-of-duties rule did to one identity's desired access.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SodHit {
    pub rule: String,
    pub action: SodAction,
    pub mode: SodMode,
    /// Entitlements refused (for `block`) — never granted.
    pub refused: Vec<String>,
    /// The conflicting entitlements the identity would hold.
    pub conflicting: Vec<String>,
}

impl Policy {
    /// The entitlements granted by `roles` (indices into `self.roles`), with their role ids.
    pub fn desired(&self, roles: &[usize]) -> Desired {
        let mut out: Desired = BTreeMap::new();
        for &r in roles {
            let Some(role) = self.roles.get(r) else {
                continue;
            };
            for e in &role.grant {
                out.entry(e.target.clone()).or_default().entry(e.name.clone()).or_default().push(role.id.clone());
            }
        }
        out
    }

    /// Applies separation-of-duties rules to `desired`. A `block` rule refuses the conflicting
    /// entitlements the identity does not already hold (held ones are kept so that the refusal
    /// never revokes existing access by surprise); a `flag` rule only reports.
    pub fn apply_sod(&self, desired: &mut Desired, held: &BTreeSet<Entitlement>) -> Vec<SodHit> {
        let mut hits = Vec::new();
        for rule in &self.sod {
            let present: Vec<&Entitlement> = rule
                .conflict
                .iter()
                .filter(|e| desired.get(&e.target).is_some_and(|m| m.contains_key(&e.name)))
                .collect();
            if present.len() < 2 {
                continue;
            }
            let conflicting: Vec<String> = present.iter().map(ToString::to_string).collect();
            let mut refused = Vec::new();
            if rule.action == SodAction::Block && rule.mode == SodMode::Enforce {
                // Keep what is held; among the rest keep the first (in rule order) only if
                // nothing is held, so at most one side of the conflict survives.
                let mut kept = present.iter().filter(|e| held.contains(*e)).count();
                for e in &present {
                    if held.contains(*e) {
                        continue;
                    }
                    if kept == 0 {
                        kept = 1;
                        continue;
                    }
                    if let Some(m) = desired.get_mut(&e.target) {
                        m.remove(&e.name);
                    }
                    refused.push(e.to_string());
                }
            }
            hits.push(SodHit { rule: rule.id.clone(), action: rule.action, mode: rule.mode, refused, conflicting });
        }
        desired.retain(|_, m| !m.is_empty());
        hits
    }

    /// The role `id`, if the policy has it.
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// Predicts what granting `requested` on top of `have` (what the identity holds and is
    /// desired to hold) would do under the SoD rules: every rule that at least one requested
    /// entitlement and at least one other entitlement of the result make conflict, in policy
    /// order. Nothing is removed: the caller decides (a `block` refuses the request, a `flag`
    /// adds an approval stage, `mode = "record"` only records).
    pub fn predict_sod(&self, have: &BTreeSet<Entitlement>, requested: &[Entitlement]) -> Vec<SodHit> {
        let mut hits = Vec::new();
        for rule in &self.sod {
            let after: Vec<&Entitlement> =
                rule.conflict.iter().filter(|e| have.contains(*e) || requested.contains(*e)).collect();
            if after.len() < 2 || !after.iter().any(|e| requested.contains(*e)) {
                continue;
            }
            let refused = if rule.action == SodAction::Block && rule.mode == SodMode::Enforce {
                after
                    .iter()
                    .filter(|e| requested.contains(**e) && !have.contains(**e))
                    .map(ToString::to_string)
                    .collect()
            } else {
                Vec::new()
            };
            hits.push(SodHit {
                rule: rule.id.clone(),
                action: rule.action,
                mode: rule.mode,
                refused,
                conflicting: after.iter().map(ToString::to_string).collect(),
            });
        }
        hits
    }
}
