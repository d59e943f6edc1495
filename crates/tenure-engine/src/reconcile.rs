//! Reconciliation: what each target actually holds, compared with what Tenure committed to.
//!
//! Accounts are correlated to identities by the correlation id the connector stored (SCIM
//! `externalId`, LDAP `employeeNumber`, a PostgreSQL role comment) when it names a known
//! identity, else, for an account without a correlation id, by account name (the name Tenure
//! created the account under, else the identity's current one). An account name shared by
//! several identities is an `ambiguous` finding: it is never linked silently. An account whose
//! correlation id names no known identity is never linked by name either: it says it belongs to
//! someone else.
//!
//! Remediation only ever changes accounts Tenure provably manages: ones correlated to a known
//! identity (which includes every account Tenure created, since it records the name and tags the
//! account with the identity's id). An account that correlates to nobody is an `orphan` finding
//! and never a disable or revoke, whatever it carries: a correlation id is just an attribute
//! anyone with write access can set (`employeeNumber: E-UNKNOWN` on a hand-made entry), not
//! proof that Tenure made the account. A person decides about orphans.
//!
//! Identities with unfinished operations on a target are skipped there: their state is in
//! flight, not drifted. A target that cannot be used (no connector, see
//! [`crate::executor::Connectors`]) or read is reported in [`ReconReport::skipped`] and the
//! other targets are reconciled.

use crate::executor::{Backend, Connectors};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tenure_core::config::{Config, TargetSettings};
use tenure_core::text;
use tenure_core::{Entitlement, FindingKind, OpKind, OpState, Status};
use tenure_policy::Policy;
use tenure_store::{Finding, OpFilter, ReconRun, Remediation, RemediationOp};

/// The report types are the wire types (`tenure-proto`); the store's `Finding` records what
/// was found, and `views::finding` converts it for the report.
pub use tenure_proto::{ReconReport, RemediationReport, SkippedTarget, TargetReport};

/// The remediation for a finding, if one is automatic.
struct Fix {
    identity: String,
    target: String,
    kind: OpKind,
    entitlement: Option<String>,
    account: Option<String>,
    detail: String,
}

/// A correlation id read from a target, for a message: anyone who can write the target chose
/// it, so control characters are escaped and a long one is cut.
fn shown_id(id: &str) -> String {
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

pub async fn reconcile(
    config: &Config,
    policy: &Policy,
    store: Arc<dyn Backend>,
    conns: &Connectors,
    only: Option<&str>,
    remediate: bool,
) -> crate::Result<ReconReport> {
    let schema = &config.schema;
    let identities: HashMap<String, tenure_core::Identity> =
        store.identities(schema, None)?.into_iter().map(|i| (i.id.to_string(), i)).collect();
    let holdings = store.all_holdings()?;
    let unfinished = store.operations(&OpFilter {
        states: vec![OpState::Pending, OpState::Running, OpState::Held, OpState::Done],
        ..OpFilter::default()
    })?;
    let busy: HashSet<(String, String)> = unfinished.iter().map(|o| (o.identity.clone(), o.target.clone())).collect();
    let mut report = ReconReport::default();
    let mut fixes: Vec<Fix> = Vec::new();
    let mut run_ids = Vec::new();
    let mut held_grants: BTreeMap<String, BTreeSet<Entitlement>> = BTreeMap::new();
    let mut total_accounts = 0usize;

    known_target(config, only)?;
    for target in &config.targets {
        if only.is_some_and(|o| o != target.name) || matches!(target.settings, TargetSettings::Manual(_)) {
            continue;
        }
        let skip = |reason: String| SkippedTarget { target: target.name.clone(), reason };
        let Some(conn) = conns.get(&target.name) else {
            let reason = conns.why_unusable(&target.name).map_or_else(
                || "no connector was set up for it".to_string(),
                |e| format!("it cannot be used: {}", e.message),
            );
            report.skipped.push(skip(reason));
            continue;
        };
        let started = std::time::Instant::now();
        let actual = match conn.list_accounts().await {
            Ok(a) => a,
            Err(e) => {
                report.skipped.push(skip(format!("reading its accounts failed: {e}")));
                continue;
            }
        };
        let existing: HashSet<String> = match conn.list_entitlements().await {
            Ok(e) => e.into_iter().collect(),
            Err(e) => {
                report.skipped.push(skip(format!("reading its entitlements failed: {e}")));
                continue;
            }
        };
        total_accounts += actual.len();
        let t = &target.name;
        let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
        // The name Tenure gave the account when it created it, else the identity's current one.
        for (id, i) in &identities {
            let stored = holdings.get(id).and_then(|h| h.get(t)).and_then(|a| a.name.as_deref());
            if let Some(name) = stored.or_else(|| i.attrs.get(target.account_attribute)) {
                by_name.entry(name).or_default().push(id);
            }
        }
        let mut findings = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut grants = 0usize;
        let finding =
            |kind: FindingKind, account: Option<&str>, identity: Option<&str>, ent: Option<&str>, detail: String| {
                Finding {
                    kind,
                    target: t.clone(),
                    account: account.map(Into::into),
                    identity: identity.map(Into::into),
                    entitlement: ent.map(Into::into),
                    detail,
                }
            };
        for acc in &actual {
            grants += acc.grants.len();
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
                        findings.push(finding(
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
                findings.push(finding(FindingKind::Orphan, Some(&acc.account), None, None, detail));
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
                    identities.get(&id).and_then(|i| i.attrs.get(target.account_attribute))
                        == Some(acc.account.as_str())
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
                findings.push(finding(FindingKind::Orphan, Some(&acc.account), Some(&id), None, detail));
                continue;
            }
            seen.insert(id.clone());
            held_grants
                .entry(id.clone())
                .or_default()
                .extend(acc.grants.iter().map(|g| Entitlement { target: t.clone(), name: g.clone() }));
            if busy.contains(&(id.clone(), t.clone())) {
                continue;
            }
            let status = identities.get(&id).map(|i| i.status);
            let view = holdings.get(&id).and_then(|h| h.get(t)).cloned();
            let acct_fix = |kind: OpKind, ent: Option<&str>, detail: &str| Fix {
                identity: id.clone(),
                target: t.clone(),
                kind,
                entitlement: ent.map(Into::into),
                account: Some(acc.account.clone()),
                detail: detail.to_string(),
            };
            if status == Some(Status::Terminated) && acc.enabled {
                let d = format!("account `{}` of terminated identity `{id}` is enabled", text::quote(&acc.account));
                findings.push(finding(FindingKind::Orphan, Some(&acc.account), Some(&id), None, d.clone()));
                fixes.push(acct_fix(OpKind::Disable, None, &d));
            }
            let view = view.unwrap_or_default();
            if !view.exists && acc.enabled && status != Some(Status::Terminated) {
                let d =
                    format!("account `{}` of `{id}` exists but Tenure grants nothing there", text::quote(&acc.account));
                findings.push(finding(FindingKind::Drift, Some(&acc.account), Some(&id), None, d.clone()));
                fixes.push(acct_fix(OpKind::Disable, None, &d));
            } else if view.exists && acc.enabled && !view.enabled && status != Some(Status::Terminated) {
                let d = format!("account `{}` is enabled but should be disabled", text::quote(&acc.account));
                findings.push(finding(FindingKind::Drift, Some(&acc.account), Some(&id), None, d.clone()));
                fixes.push(acct_fix(OpKind::Disable, None, &d));
            } else if view.exists && !acc.enabled && view.enabled {
                let d = format!("account `{}` is disabled but should be enabled", text::quote(&acc.account));
                findings.push(finding(FindingKind::Missing, Some(&acc.account), Some(&id), None, d.clone()));
                fixes.push(acct_fix(OpKind::Enable, None, &d));
            }
            for g in acc.grants.difference(&view.grants) {
                let d = format!("`{}` holds `{}`, which no rule grants", text::quote(&acc.account), text::quote(g));
                findings.push(finding(FindingKind::Drift, Some(&acc.account), Some(&id), Some(g), d.clone()));
                fixes.push(acct_fix(OpKind::Revoke, Some(g), &d));
            }
            for g in view.grants.difference(&acc.grants) {
                if existing.contains(g) {
                    let d = format!("`{}` lacks `{}`", text::quote(&acc.account), text::quote(g));
                    findings.push(finding(FindingKind::Missing, Some(&acc.account), Some(&id), Some(g), d.clone()));
                    fixes.push(acct_fix(OpKind::Grant, Some(g), &d));
                } else {
                    findings.push(finding(
                        FindingKind::Missing,
                        Some(&acc.account),
                        Some(&id),
                        Some(g),
                        format!("entitlement `{}` does not exist in `{t}`", text::quote(g)),
                    ));
                }
            }
        }
        for (id, h) in &holdings {
            let Some(view) = h.get(t) else { continue };
            if !view.exists || seen.contains(id) || busy.contains(&(id.clone(), t.clone())) {
                continue;
            }
            let name = identities.get(id).and_then(|i| i.attrs.get(target.account_attribute)).unwrap_or("?");
            if view.enabled || !view.grants.is_empty() {
                findings.push(finding(
                    FindingKind::Missing,
                    Some(name),
                    Some(id),
                    None,
                    format!("account `{name}` of `{id}` is not in `{t}`"),
                ));
            }
        }
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let run = ReconRun { target: t.clone(), accounts: actual.len(), grants, millis };
        let run_id = store.record_recon(&run, &findings)?;
        run_ids.push(run_id);
        report.targets.push(TargetReport {
            target: t.clone(),
            run_id,
            accounts: actual.len(),
            grants,
            millis,
            findings: findings.iter().map(crate::views::finding).collect(),
        });
    }

    let mut sod = Vec::new();
    for (id, held) in &held_grants {
        for rule in &policy.sod {
            let present: Vec<String> =
                rule.conflict.iter().filter(|e| held.contains(e)).map(ToString::to_string).collect();
            if present.len() >= 2 {
                sod.push(Finding {
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
    if !sod.is_empty() {
        let run = ReconRun { target: "*".into(), accounts: 0, grants: 0, millis: 0 };
        run_ids.push(store.record_recon(&run, &sod)?);
    }
    report.sod = sod.iter().map(crate::views::finding).collect();

    if remediate && !fixes.is_empty() {
        // The same limits as an import: identities losing access (accounts disabled, grants
        // revoked) against the accounts read, and identities gaining privileged access.
        let privileged = crate::guard::privileged_entitlements(policy);
        let mut disabled: HashSet<&str> = HashSet::new();
        let mut losing: HashSet<&str> = HashSet::new();
        let mut gaining: HashSet<&str> = HashSet::new();
        for f in &fixes {
            match f.kind {
                OpKind::Disable => {
                    disabled.insert(&f.identity);
                    losing.insert(&f.identity);
                }
                OpKind::Revoke => {
                    losing.insert(&f.identity);
                }
                OpKind::Grant
                    if f.entitlement.as_deref().is_some_and(|g| privileged.contains(&(f.target.as_str(), g))) =>
                {
                    gaining.insert(&f.identity);
                }
                _ => {}
            }
        }
        // An identity whose account a fix disables counts like a leaver.
        let counts = crate::guard::Counts {
            leavers: disabled.len(),
            losses: losing.len(),
            privileged: gaining.len(),
            population: total_accounts,
        };
        let held = counts.check(&config.guard);
        let rem = Remediation {
            run_ids,
            ops: fixes
                .into_iter()
                .map(|f| RemediationOp {
                    identity: f.identity,
                    target: f.target,
                    kind: f.kind,
                    entitlement: f.entitlement,
                    account: f.account,
                    detail: f.detail,
                })
                .collect(),
            held: held.clone(),
            actor: "reconciler".into(),
        };
        let (n, approval_id) = store.commit_remediation(&rem)?;
        report.remediation = Some(RemediationReport { operations: n, held, approval_id });
    }
    Ok(report)
}

/// `unknown_target` unless `only` is none or a configured target.
pub fn known_target(config: &Config, only: Option<&str>) -> crate::Result<()> {
    match only {
        Some(o) if config.target(o).is_none() => {
            Err(crate::EngineError::UnknownTarget(o.to_string(), target_names(config)))
        }
        _ => Ok(()),
    }
}

/// The configured target names, for messages.
pub fn target_names(config: &Config) -> String {
    config.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::shown_id;

    #[test]
    fn correlation_ids_from_a_target_are_shown_escaped_and_capped() {
        assert_eq!(shown_id("E-UNKNOWN"), "E-UNKNOWN");
        assert_eq!(shown_id("E1\n\u{1b}[31m"), "E1\\n\\u{1b}[31m");
        assert_eq!(shown_id(&"x".repeat(100)), format!("{}…", "x".repeat(64)));
    }
}
