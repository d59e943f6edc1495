use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenure_core::{Kind, OpKind, Status};

/// Why one identity holds what it holds (`tenure explain ID`): the roles whose condition
/// matched, with the attribute values that made it true; the roles that did not, with the
/// condition that failed; the separation-of-duties outcomes; and per target what applying the
/// policy now would change. Computing it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explanation {
    pub id: String,
    pub kind: Kind,
    pub status: Status,
    /// The identity's latest event, whose changes the facts point at (`Fact::changed`).
    pub last_event: Option<crate::Event>,
    /// Birthright roles whose condition holds, in policy order.
    pub matched: Vec<RoleTrace>,
    /// Birthright roles whose condition does not hold, in policy order.
    pub unmatched: Vec<RoleTrace>,
    /// Desired entitlements per target, each with the roles that grant it (after SoD). Empty
    /// for a terminated identity, which desires nothing.
    pub desired: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    pub sod: Vec<SodOutcome>,
    /// Per target: what Tenure holds and what applying would change.
    pub targets: BTreeMap<String, TargetEffect>,
    /// Whether the live targets were read. When false, `targets` compares the policy with what
    /// Tenure's store holds (pending work included), not with the targets themselves.
    pub targets_read: bool,
}

/// One role and the facts about its condition: for a matched role, the tests that made it
/// true; for an unmatched one, the test (or, under `any`, the tests) that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleTrace {
    pub role: String,
    /// What the role grants, as `target:entitlement`.
    pub grants: Vec<String>,
    pub facts: Vec<Fact>,
}

/// One attribute test and how the identity's value fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fact {
    pub attribute: String,
    /// The test as the policy spells it: `eq`, `in`, `prefix`, `suffix`, `regex`, `present`,
    /// `before`, `after`, `on_or_before`, `on_or_after`.
    pub test: String,
    /// True when the test sits under an odd number of `not`s, so it counts when it fails.
    pub negated: bool,
    /// The values the test compares with (one, except for `in`).
    pub expected: Vec<String>,
    /// The identity's value; absent when it has none.
    pub actual: Option<String>,
    /// Whether the test itself held (before any `not`).
    pub held: bool,
    /// Whether the identity's latest event changed this attribute (a mover's department, say).
    pub changed: bool,
    /// The value before that event, when it changed the attribute and there was one.
    pub previous: Option<String>,
}

/// A separation-of-duties rule that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SodOutcome {
    pub rule: String,
    /// `block` or `flag`.
    pub action: String,
    pub conflicting: Vec<String>,
    /// Entitlements the rule refused.
    pub refused: Vec<String>,
}

/// One target: what Tenure holds for the identity and what applying the policy would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetEffect {
    /// The account's name in the target, when Tenure knows it.
    pub account: Option<String>,
    /// What Tenure has committed to, pending work included.
    pub held: crate::AccountView,
    /// Operations on this target not yet settled.
    pub open_operations: usize,
    /// The operations an import now would add, in execution order.
    pub changes: Vec<PlannedChange>,
    /// The account as the live target holds it, when the target was read (`--live`).
    pub live: Option<LiveAccount>,
}

/// One account read from the live target, and how it compares with the desired access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveAccount {
    /// Whether the target holds the account.
    pub found: bool,
    /// How the account was found and linked to the identity: by its name, and whether the
    /// correlation id stored in the target (SCIM `externalId`, LDAP `employeeNumber`, a role
    /// comment) names this identity, another one, or none.
    pub correlated_by: String,
    pub enabled: bool,
    pub grants: Vec<String>,
    /// Desired entitlements the target does not hold.
    pub missing: Vec<String>,
    /// Managed entitlements the target holds that the policy does not grant.
    pub extra: Vec<String>,
    /// Entitlements the policy does not manage, which Tenure leaves alone.
    pub unmanaged: Vec<String>,
    /// The mapped attributes whose live value differs from what the identity's attributes make
    /// of them (`tenure_core::attributes`): what an attribute sync would change. Empty for
    /// targets that keep no attributes (PostgreSQL) and when the account was not found.
    pub attributes: Vec<AttributeChange>,
    /// Why the target could not be read (a manual target, a connection failure); then the
    /// other fields say nothing.
    pub error: Option<String>,
}

/// One mapped attribute that would change: `attribute: live -> desired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttributeChange {
    pub attribute: String,
    /// The values the live account holds; empty when it lacks the attribute.
    pub live: Vec<String>,
    /// The value it would be given; `null` when the attribute would be removed.
    pub desired: Option<String>,
}

/// One operation applying would carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedChange {
    pub kind: OpKind,
    pub entitlement: Option<String>,
    /// For a grant, the roles that grant it.
    pub rules: Vec<String>,
}
