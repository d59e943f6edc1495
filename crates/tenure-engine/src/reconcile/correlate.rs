//! The decisions of reconciliation, without IO: which account read from a target is linked to
//! which identity, which findings follow from comparing it with what Tenure committed to, which
//! of them get an automatic fix, and what the guard counts of those fixes.
//!
//! Tenure judges only the entitlements it manages ([`managed`]: those a target declares and
//! those some role grants). A directory holds many groups nobody wrote a rule for (mail lists,
//! a department's share, what another tool provisions); a membership in one of them is counted in
//! [`Correlation::unmanaged`] and never a finding or a fix.
//!
//! [`super::reconcile`] reads the targets and the store, calls these, and records the result;
//! the tests drive them with data (`reconcile/tests.rs`), so every branch of the correlation
//! is pinned without a connector.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tenure_connect::AccountState;
use tenure_core::config::{Config, TargetConfig, TargetSettings};
use tenure_core::plan::Holdings;
use tenure_core::text;
use tenure_core::{Entitlement, FindingKind, Identity, OpKind, Status};
use tenure_policy::Policy;
use tenure_store::{Finding, RemediationOp};

/// What Tenure knows, read once from the store for every target.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Every identity, by id.
    pub identities: &'a HashMap<String, Identity>,
    /// The committed holdings, by identity.
    pub holdings: &'a HashMap<String, Holdings>,
    /// `(identity, target)` pairs with unfinished operations: their state there is in flight,
    /// not drifted, so they get no finding about their account and no fix.
    pub busy: &'a HashSet<(String, String)>,
    /// The entitlements Tenure manages, by target ([`managed`]).
    pub managed: &'a HashMap<String, HashSet<String>>,
    /// The correlation cases not decided for an identity, by `(target, account)`: an orphan
    /// finding about one names it, so a person finds where to decide.
    pub cases: &'a HashMap<(String, String), (i64, tenure_core::CorrelationState)>,
}

/// The entitlements Tenure manages, by target: the ones a target declares (`entitlements =
/// [...]`) and the ones some role of `policy` grants. Only these are ever revoked by
/// reconciliation; any other membership is someone else's to manage.
pub fn managed(config: &Config, policy: &Policy) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    for t in &config.targets {
        out.entry(t.name.clone()).or_default().extend(t.entitlements.iter().flatten().cloned());
    }
    for e in &policy.entitlements {
        out.entry(e.target.clone()).or_default().insert(e.name.clone());
    }
    out
}

/// One target's accounts, correlated.
#[derive(Debug, Clone, Default)]
pub struct Correlation {
    /// The accounts Tenure manages, as `(account, identity)`, in the order they were read.
    pub linked: Vec<(String, String)>,
    /// The findings: accounts first, in the order read, then the accounts Tenure expects that
    /// the target does not have, by identity.
    pub findings: Vec<Finding>,
    /// The automatic fixes, each with the detail of the finding it fixes, in the order of the
    /// findings.
    pub fixes: Vec<RemediationOp>,
    /// What the linked accounts hold, per identity: the input of the SoD check across targets.
    pub held: BTreeMap<String, BTreeSet<Entitlement>>,
    /// The memberships of linked accounts in entitlements Tenure does not manage (no role grants
    /// them, the target does not declare them, and Tenure recorded no grant of them), as the
    /// number of accounts holding each: reported, never judged.
    pub unmanaged: BTreeMap<String, usize>,
}

/// Correlates the `accounts` read from `target` (whose existing entitlements are
/// `entitlements`) with what Tenure knows.
///
/// An account is linked by the correlation id the connector stored when it names a known
/// identity, else, for an account without one, by account name (the name Tenure created the
/// account under, else the identity's current one). A name shared by several identities is
/// `ambiguous` and never linked; an account whose correlation id names no known identity is not
/// linked by name either: it says it belongs to someone else.
///
/// Only a linked account that Tenure provably manages (the one recorded in the identity's
/// holdings) is compared with the holdings and fixed; one that merely claims an identity is an
/// `orphan` finding naming it, and one that correlates to nobody is an `orphan` finding too.
pub fn correlate(
    target: &TargetConfig,
    accounts: &[AccountState],
    entitlements: &HashSet<String>,
    known: Known<'_>,
) -> Correlation {
    let Known { identities, holdings, busy, managed, cases } = known;
    let case_note = |account: &str| {
        cases.get(&(target.name.clone(), account.to_string())).map_or_else(String::new, |(id, state)| match state {
            tenure_core::CorrelationState::Open => format!(" (correlation case {id}, open: `tenure correlate {id}`)"),
            s => format!(" (correlation case {id}, {s})"),
        })
    };
    let t = &target.name;
    // Whether granting an entitlement the target lacks creates it (`create_groups` on LDAP and
    // SCIM): then a grant whose group was deleted by hand is fixed by granting it again.
    let grant_creates = match &target.settings {
        TargetSettings::Ldap(s) => s.schema().create_groups,
        TargetSettings::Scim(s) => s.create_groups,
        TargetSettings::Postgres(_) | TargetSettings::Manual(_) => false,
    };
    let managed = managed.get(t);
    let is_managed = |g: &str| managed.is_some_and(|m| m.contains(g));
    let mut out = Correlation::default();
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    // The name Tenure gave the account when it created it, else the identity's current one.
    for (id, i) in identities {
        let stored = holdings.get(id).and_then(|h| h.get(t)).and_then(|a| a.name.as_deref());
        if let Some(name) = stored.or_else(|| i.attrs.get(target.account_attribute)) {
            by_name.entry(name).or_default().push(id);
        }
    }
    let finding =
        |kind: FindingKind, account: Option<&str>, identity: Option<&str>, ent: Option<&str>, detail: String| Finding {
            kind,
            target: t.clone(),
            account: account.map(Into::into),
            identity: identity.map(Into::into),
            entitlement: ent.map(Into::into),
            detail,
        };
    let mut seen: HashSet<String> = HashSet::new();
    for acc in accounts {
        let by_id = acc.external_id.as_deref().filter(|x| identities.contains_key(*x));
        let linked: Option<String> = match (by_id, acc.external_id.as_deref()) {
            (Some(id), _) => Some(id.to_string()),
            // It names an owner Tenure does not know: not linked to whoever shares its name.
            (None, Some(_)) => None,
            (None, None) => match by_name.get(acc.account.as_str()).map(Vec::as_slice) {
                Some([one]) => Some((*one).to_string()),
                Some(many) if many.len() > 1 => {
                    let mut ids: Vec<&str> = many.to_vec();
                    ids.sort_unstable();
                    out.findings.push(finding(
                        FindingKind::Ambiguous,
                        Some(&acc.account),
                        None,
                        None,
                        format!(
                            "account `{}` matches {} identities by name ({}); not linked",
                            text::quote(&acc.account),
                            ids.len(),
                            ids.join(", ")
                        ),
                    ));
                    continue;
                }
                _ => None,
            },
        };
        let Some(id) = linked else {
            // INVARIANT: no fix is planned for an account that correlates to no known
            // identity. It may be an application's own login or someone's hand-made entry
            // carrying any correlation id it likes; a person decides, never a rule.
            let state = if acc.enabled { "enabled" } else { "disabled" };
            let holds = if acc.grants.is_empty() {
                String::new()
            } else {
                let shown: Vec<String> = acc.grants.iter().map(|g| format!("`{}`", text::quote(g))).collect();
                format!(", holds {}", shown.join(", "))
            };
            let detail = match acc.external_id.as_deref() {
                Some(x) => format!(
                    "account `{}` ({state}{holds}) names identity `{}`, which Tenure does not know; left for a person",
                    text::quote(&acc.account),
                    shown_id(x)
                ),
                None => format!(
                    "account `{}` ({state}{holds}) belongs to no known identity; left for a person",
                    text::quote(&acc.account)
                ),
            };
            let detail = format!("{detail}{}", case_note(&acc.account));
            out.findings.push(finding(FindingKind::Orphan, Some(&acc.account), None, None, detail));
            continue;
        };
        // Tenure manages an account it created for this identity (or took over for it): its
        // name is the one recorded in the holdings (a record from before names were kept: the
        // identity's current account name). An account that only claims the identity, by a
        // correlation id anyone can set or by a name that happens to match, is reported and
        // left for a person: fixing it would hand it that identity's access, or disable
        // someone's login Tenure never made.
        let recorded = holdings.get(&id).and_then(|h| h.get(t)).filter(|a| a.exists);
        let managed = recorded.is_some_and(|a| match a.name.as_deref() {
            Some(n) => n == acc.account,
            None => {
                identities.get(&id).and_then(|i| i.attrs.get(target.account_attribute)) == Some(acc.account.as_str())
            }
        });
        if !managed {
            let name = text::quote(&acc.account);
            let terminated = identities.get(&id).is_some_and(|i| i.status == Status::Terminated);
            let detail = match recorded.and_then(|a| a.name.as_deref()) {
                Some(n) => format!(
                    "account `{name}` claims identity `{id}`, but Tenure manages `{}` for it in `{t}`; not linked, left for a person",
                    text::quote(n)
                ),
                None if terminated && acc.enabled => format!(
                    "account `{name}` of terminated identity `{id}` is enabled; Tenure did not create it, so a person decides"
                ),
                None => format!(
                    "account `{name}` matches identity `{id}`, but Tenure has no account for it in `{t}`; not linked, left for a person"
                ),
            };
            let detail = format!("{detail}{}", case_note(&acc.account));
            out.findings.push(finding(FindingKind::Orphan, Some(&acc.account), Some(&id), None, detail));
            continue;
        }
        out.linked.push((acc.account.clone(), id.clone()));
        seen.insert(id.clone());
        out.held
            .entry(id.clone())
            .or_default()
            .extend(acc.grants.iter().map(|g| Entitlement { target: t.clone(), name: g.clone() }));
        let view = holdings.get(&id).and_then(|h| h.get(t)).cloned();
        let recorded_grant = |g: &str| view.as_ref().is_some_and(|v| v.grants.contains(g));
        for g in acc.grants.iter().filter(|g| !is_managed(g) && !recorded_grant(g)) {
            *out.unmanaged.entry(g.clone()).or_default() += 1;
        }
        if busy.contains(&(id.clone(), t.clone())) {
            continue;
        }
        let status = identities.get(&id).map(|i| i.status);
        let mut found = |kind: FindingKind, ent: Option<&str>, detail: String, fix: Option<OpKind>| {
            if let Some(fix) = fix {
                out.fixes.push(RemediationOp {
                    identity: id.clone(),
                    target: t.clone(),
                    kind: fix,
                    entitlement: ent.map(Into::into),
                    account: Some(acc.account.clone()),
                    detail: detail.clone(),
                });
            }
            out.findings.push(finding(kind, Some(&acc.account), Some(&id), ent, detail));
        };
        if status == Some(Status::Terminated) && acc.enabled {
            let d = format!("account `{}` of terminated identity `{id}` is enabled", text::quote(&acc.account));
            found(FindingKind::Orphan, None, d, Some(OpKind::Disable));
        }
        let view = view.unwrap_or_default();
        if !view.exists && acc.enabled && status != Some(Status::Terminated) {
            let d = format!("account `{}` of `{id}` exists but Tenure grants nothing there", text::quote(&acc.account));
            found(FindingKind::Drift, None, d, Some(OpKind::Disable));
        } else if view.exists && acc.enabled && !view.enabled && status != Some(Status::Terminated) {
            let d = format!("account `{}` is enabled but should be disabled", text::quote(&acc.account));
            found(FindingKind::Drift, None, d, Some(OpKind::Disable));
        } else if view.exists && !acc.enabled && view.enabled {
            let d = format!("account `{}` is disabled but should be enabled", text::quote(&acc.account));
            found(FindingKind::Missing, None, d, Some(OpKind::Enable));
        }
        // INVARIANT: a membership in an entitlement Tenure does not manage is never revoked; it
        // was counted in `unmanaged` above.
        for g in acc.grants.difference(&view.grants).filter(|g| is_managed(g)) {
            let d = format!("`{}` holds `{}`, which no rule grants", text::quote(&acc.account), text::quote(g));
            found(FindingKind::Drift, Some(g), d, Some(OpKind::Revoke));
        }
        for g in view.grants.difference(&acc.grants) {
            if entitlements.contains(g) {
                let d = format!("`{}` lacks `{}`", text::quote(&acc.account), text::quote(g));
                found(FindingKind::Missing, Some(g), d, Some(OpKind::Grant));
            } else if grant_creates {
                let d = format!(
                    "`{}` lacks `{}`, which does not exist in `{t}` (deleted?); granting it creates it again",
                    text::quote(&acc.account),
                    text::quote(g)
                );
                found(FindingKind::Missing, Some(g), d, Some(OpKind::Grant));
            } else {
                let d = format!(
                    "`{}` lacks `{}`: entitlement `{}` does not exist in `{t}` and Tenure does not create it there; \
                     the grant is not in place until a person creates it (then `tenure reconcile --remediate`)",
                    text::quote(&acc.account),
                    text::quote(g),
                    text::quote(g)
                );
                found(FindingKind::Missing, Some(g), d, None);
            }
        }
    }
    // Accounts Tenure expects that the target does not have, by identity so the report is
    // stable (the holdings come as a map).
    let mut missing = Vec::new();
    for (id, h) in holdings {
        let Some(view) = h.get(t) else { continue };
        if !view.exists || seen.contains(id) || busy.contains(&(id.clone(), t.clone())) {
            continue;
        }
        let name = identities.get(id).and_then(|i| i.attrs.get(target.account_attribute)).unwrap_or("?");
        if view.enabled || !view.grants.is_empty() {
            missing.push(finding(
                FindingKind::Missing,
                Some(name),
                Some(id),
                None,
                format!("account `{name}` of `{id}` is not in `{t}`"),
            ));
        }
    }
    missing.sort_by(|a, b| a.identity.cmp(&b.identity));
    out.findings.extend(missing);
    out
}

/// The SoD findings across targets: an identity whose linked accounts hold two or more of a
/// rule's conflicting entitlements, in identity order.
pub fn sod(policy: &Policy, held: &BTreeMap<String, BTreeSet<Entitlement>>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, held) in held {
        for rule in &policy.sod {
            let present: Vec<String> =
                rule.conflict.iter().filter(|e| held.contains(e)).map(ToString::to_string).collect();
            if present.len() >= 2 {
                out.push(Finding {
                    kind: FindingKind::Sod,
                    target: present.first().and_then(|e| e.split(':').next()).unwrap_or_default().to_string(),
                    account: None,
                    identity: Some(id.clone()),
                    entitlement: None,
                    detail: format!("`{id}` holds conflicting {} (sod rule `{}`)", present.join(" and "), rule.id),
                });
            }
        }
    }
    out
}

/// What the guard counts of a run's fixes, against the `accounts` read: an identity whose
/// account a fix disables counts as a leaver, one losing an account or a grant as losing
/// access, one granted a `privileged` entitlement as gaining privileged access.
pub fn guard_counts(
    fixes: &[RemediationOp],
    privileged: &HashSet<(&str, &str)>,
    accounts: usize,
) -> crate::guard::Counts {
    let mut disabled: HashSet<&str> = HashSet::new();
    let mut losing: HashSet<&str> = HashSet::new();
    let mut gaining: HashSet<&str> = HashSet::new();
    for f in fixes {
        match f.kind {
            OpKind::Disable => {
                disabled.insert(&f.identity);
                losing.insert(&f.identity);
            }
            OpKind::Revoke => {
                losing.insert(&f.identity);
            }
            OpKind::Grant if f.entitlement.as_deref().is_some_and(|g| privileged.contains(&(f.target.as_str(), g))) => {
                gaining.insert(&f.identity);
            }
            _ => {}
        }
    }
    crate::guard::Counts {
        leavers: disabled.len(),
        losses: losing.len(),
        privileged: gaining.len(),
        population: accounts,
    }
}

/// A correlation id read from a target, for a message: anyone who can write the target chose
/// it, so control characters are escaped and a long one is cut.
pub(super) fn shown_id(id: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = id
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect();
    if id.chars().count() > MAX {
        out.push('…');
    }
    out
}
