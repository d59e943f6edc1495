//! A target's correlation rules (`correlation = [...]`, `correlation_min_confidence`): how the
//! first import against a target that already has accounts decides which account is whose.
//!
//! The rules are data, tried in the order written; the evaluation itself lives in
//! `tenure_engine::correlation::rules` (pure, tested with data). Here is only what a rule is
//! called, what it is worth, and the default list per target kind, so `tenure check` and the
//! engine agree on them.

use crate::model::TargetKind;
use serde::Serialize;

/// One correlation rule. The confidence of a match is fixed per rule ([`CorrelationRule::confidence`]):
/// an id Tenure would have written itself is certain, a name or address that is equal after
/// normalisation is strong evidence, a name put together from the identity's given and family
/// names is a guess that a person confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationRule {
    /// The account's correlation id (LDAP `employeeNumber` or the profile's id attribute, SCIM
    /// `externalId`, a PostgreSQL role's `tenure:` comment) equals the identity's id. The names
    /// `employee_number` and `external_id` both mean this rule.
    EmployeeNumber,
    /// The account name equals the identity's account name (its `account_attribute`, by default
    /// `username`), compared normalised.
    Username,
    /// The account's email (LDAP `mail`, the SCIM primary email) equals the identity's `email`,
    /// compared normalised.
    Email,
    /// Fuzzy: the account name or the local part of its email, normalised and with `.`, `_`, `-`
    /// and spaces taken as one separator, is the identity's `given.family` (or `family.given`),
    /// else its initial and family name (`jsmith`).
    Name,
}

impl CorrelationRule {
    /// Every rule with the names it is written as in `tenure.toml`.
    pub const ALL: &[(&'static str, CorrelationRule)] = &[
        ("employee_number", Self::EmployeeNumber),
        ("external_id", Self::EmployeeNumber),
        ("username", Self::Username),
        ("email", Self::Email),
        ("name", Self::Name),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmployeeNumber => "employee_number",
            Self::Username => "username",
            Self::Email => "email",
            Self::Name => "name",
        }
    }

    /// How sure a match by this rule is, from 0 to 1. [`CorrelationRule::Name`] has two grades:
    /// this is the higher (`given.family`); an initial and family name is
    /// [`INITIAL_CONFIDENCE`].
    pub fn confidence(self) -> f64 {
        match self {
            Self::EmployeeNumber => 1.0,
            Self::Username => 0.95,
            Self::Email => 0.95,
            Self::Name => 0.8,
        }
    }
}

/// The confidence of a [`CorrelationRule::Name`] match by initial and family name (`jsmith`).
pub const INITIAL_CONFIDENCE: f64 = 0.6;

/// The default `correlation_min_confidence`: below it a match is a case for a person.
pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.9;

/// A target's correlation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationSettings {
    /// The rules in the order they are tried; empty turns correlation off for the target.
    pub rules: Vec<CorrelationRule>,
    /// A match below this confidence is never linked by itself: it becomes a correlation case.
    pub min_confidence: f64,
}

impl CorrelationSettings {
    /// The default per target kind: every kind with a correlation id tries it first, then the
    /// account name; the kinds that keep an email (LDAP, SCIM) then try it, then the fuzzy name
    /// rule, whose matches stay below the default threshold and so always reach a person.
    /// Manual targets have no accounts to read.
    pub fn default_for(kind: TargetKind) -> Self {
        use CorrelationRule::*;
        let rules = match kind {
            TargetKind::Ldap | TargetKind::Scim => vec![EmployeeNumber, Username, Email, Name],
            TargetKind::Postgres => vec![EmployeeNumber, Username],
            TargetKind::Manual => Vec::new(),
        };
        Self { rules, min_confidence: DEFAULT_MIN_CONFIDENCE }
    }
}
