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
//! Only entitlements Tenure manages are judged (`correlate::managed`: declared by the target
//! or granted by some role); a linked account's membership in any other group is counted in
//! [`TargetReport::unmanaged`] and left alone, never a finding, never revoked.
//!
//! Accounts a target had before Tenure's first import there were correlated once, by that import
//! ([`crate::correlation`]): a linked one's name is in its identity's holdings from its first plan
//! on, so here it is simply Tenure's; an account of an open or orphaned correlation case is an
//! `orphan` finding like any other account Tenure does not manage, and never fixed.
//!
//! The decisions (linking, findings, fixes, the SoD check and what the guard counts) are
//! [`correlate`]'s, without IO; this module reads the targets and the store and records them.
//! Identities with unfinished operations on a target are skipped there: their state is in
//! flight, not drifted. A target that cannot be used (no connector, see
//! [`crate::executor::Connectors`]) or read is reported in [`ReconReport::skipped`] and the
//! other targets are reconciled.

pub(crate) mod correlate;

use crate::executor::{Backend, Connectors};
use correlate::Known;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tenure_core::Entitlement;
use tenure_core::OpState;
use tenure_core::config::{Config, TargetSettings};
use tenure_policy::Policy;
use tenure_store::{OpFilter, ReconRun, Remediation, RemediationOp};

/// The report types are the wire types (`tenure-proto`); the store's `Finding` records what
/// was found, and `views::finding` converts it for the report.
pub use tenure_proto::{ReconReport, RemediationReport, SkippedTarget, TargetReport, UnmanagedGrant};

/// Reconciles every target (or `only`), audited as the `reconciler`; `remediate` plans the
/// fixes through the guard.
pub async fn reconcile(
    config: &Config,
    policy: &Policy,
    store: Arc<dyn Backend>,
    conns: &Connectors,
    only: Option<&str>,
    remediate: bool,
) -> crate::Result<ReconReport> {
    reconcile_as(config, policy, store, conns, only, remediate, "reconciler").await
}

/// [`reconcile`] audited with `actor` (the schedule's runs are `schedule:reconcile`).
pub async fn reconcile_as(
    config: &Config,
    policy: &Policy,
    store: Arc<dyn Backend>,
    conns: &Connectors,
    only: Option<&str>,
    remediate: bool,
    actor: &str,
) -> crate::Result<ReconReport> {
    let schema = &config.schema;
    let identities: HashMap<String, tenure_core::Identity> =
        store.identities(schema, None)?.into_iter().map(|i| (i.id.to_string(), i)).collect();
    let holdings = store.all_holdings()?;
    let (rotations, now) = (store.last_rotations(None)?, store.clock().now());
    let unfinished = store.operations(&OpFilter {
        states: vec![OpState::Pending, OpState::Running, OpState::Held, OpState::Done],
        ..OpFilter::default()
    })?;
    let busy: HashSet<(String, String)> = unfinished.iter().map(|o| (o.identity.clone(), o.target.clone())).collect();
    let mut report = ReconReport::default();
    let managed = correlate::managed(config, policy);
    let cases: HashMap<(String, String), (i64, tenure_core::CorrelationState)> = store
        .correlation_cases(false)?
        .into_iter()
        .filter(|c| c.state != tenure_core::CorrelationState::Linked)
        .map(|c| ((c.target, c.account), (c.id, c.state)))
        .collect();
    let known = Known { identities: &identities, holdings: &holdings, busy: &busy, managed: &managed, cases: &cases };
    let mut fixes: Vec<RemediationOp> = Vec::new();
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
        // Said by the connector while reading (and logged by it at warn), shown with the report.
        let notes = conn.take_notes();
        total_accounts += actual.len();
        let t = &target.name;
        let grants: usize = actual.iter().map(|a| a.grants.len()).sum();
        let c = correlate::correlate(target, &actual, &existing, known);
        for (id, held) in c.held {
            held_grants.entry(id).or_default().extend(held);
        }
        fixes.extend(c.fixes);
        let mut findings = c.findings;
        // Issue 10: stale credentials and owners who are not active, for NHIs with an account here.
        findings.extend(crate::nhi::findings(config, t, &identities, &holdings, &rotations, now));
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let run = ReconRun { target: t.clone(), accounts: actual.len(), grants, millis };
        let run_id = store.record_recon(&run, &findings, actor)?;
        run_ids.push(run_id);
        report.targets.push(TargetReport {
            target: t.clone(),
            run_id,
            accounts: actual.len(),
            grants,
            millis,
            findings: findings.iter().map(crate::views::finding).collect(),
            unmanaged: c
                .unmanaged
                .into_iter()
                .map(|(entitlement, accounts)| UnmanagedGrant { entitlement, accounts })
                .collect(),
            notes,
        });
    }

    let sod = correlate::sod(policy, &held_grants);
    if !sod.is_empty() {
        let run = ReconRun { target: "*".into(), accounts: 0, grants: 0, millis: 0 };
        run_ids.push(store.record_recon(&run, &sod, actor)?);
    }
    report.sod = sod.iter().map(crate::views::finding).collect();

    if remediate && !fixes.is_empty() {
        // The same limits as an import: identities losing access (accounts disabled, grants
        // revoked) against the accounts read, and identities gaining privileged access.
        let privileged = crate::guard::privileged_entitlements(policy);
        let counts = correlate::guard_counts(&fixes, &privileged, total_accounts);
        let held = counts.check(&config.guard);
        let rem = Remediation { run_ids, ops: fixes, held: held.clone(), actor: actor.into() };
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
mod tests;
