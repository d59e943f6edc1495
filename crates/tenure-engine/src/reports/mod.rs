//! The reports the CLI prints and the server serves, computed once here: revocation coverage
//! with time-to-revoke, one identity in full, and the config and policy check. Each returns a
//! wire type (`tenure-proto`); nothing here prints.

use crate::app::{AppError, Loaded};
use crate::views;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use tenure_core::audit::AuditRecord;
use tenure_core::config::Config;
use tenure_core::plan::{self, Holdings};
use tenure_core::{EventKind, OpState, TargetKind};
use tenure_policy::Policy;
use tenure_proto as proto;
use tenure_store::{AuditFilter, OpFilter, OpRecord, Store};

/// Leaver revocations per target class: how many are verified (or excepted), how many are still
/// open, and how long leaver cases took to close.
pub fn coverage(config: &Config, store: &dyn Store) -> crate::Result<proto::Coverage> {
    let cases = store.cases(false)?;
    let leaver_cases: HashSet<i64> = cases.iter().filter(|c| c.kind == EventKind::Leaver).map(|c| c.id).collect();
    let ops = store.operations(&OpFilter::default())?;
    let mut by_class: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    // A cancelled operation was never needed: it is neither covered nor open.
    for o in ops.iter().filter(|o| leaver_cases.contains(&o.case_id) && o.state != OpState::Cancelled) {
        let class = config.target(&o.target).map_or_else(|| "unknown".to_string(), |t| t.class.to_string());
        let row = by_class.entry(class).or_default();
        row[0] += 1;
        match o.state {
            OpState::Verified => row[1] += 1,
            OpState::Excepted => row[2] += 1,
            OpState::Failed => row[3] += 1,
            _ => {}
        }
    }
    let classes = by_class
        .into_iter()
        .map(|(class, [operations, verified, excepted, failed])| proto::ClassCoverage {
            class,
            coverage: if operations > 0 { (verified + excepted) as f64 / operations as f64 } else { 1.0 },
            excepted,
            failed,
            open: operations - verified - excepted - failed,
            operations,
            verified,
        })
        .collect();
    let mut times: Vec<i64> = cases.iter().filter_map(|c| c.revoke_ms).collect();
    times.sort_unstable();
    let open_leaver_cases = cases.iter().filter(|c| leaver_cases.contains(&c.id) && c.closed_at.is_none()).count();
    Ok(proto::Coverage {
        classes,
        leaver_cases: leaver_cases.len(),
        open_leaver_cases,
        time_to_revoke_ms: proto::RevokeTimes {
            closed: times.len(),
            max: times.last().copied(),
            p50: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
        },
    })
}

/// The nearest-rank percentile `p` (0 to 1) of sorted values: the value at
/// `round((n - 1) * p)`.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    let last = sorted.len().checked_sub(1)?;
    let i = (last as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted.get(i.min(last)).copied()
}

/// For a case, the milliseconds from its event to the last verified operation on a target
/// Tenure changes itself (every kind but manual): how long the automated part of a revocation
/// took, whatever the manual tickets still wait for.
pub fn automated_ms(config: &Config, store: &dyn Store, case: &proto::Case) -> crate::Result<Option<i64>> {
    let ops = store.operations(&OpFilter { case_id: Some(case.id), ..OpFilter::default() })?;
    let manual = |target: &str| config.target(target).is_some_and(|t| t.kind == TargetKind::Manual);
    let last = ops
        .iter()
        .filter(|o| o.state == OpState::Verified && !manual(&o.target))
        .filter_map(|o| o.verified_at.as_deref())
        .max();
    Ok(last.map(|last| millis_between(&case.opened_at, last)))
}

fn millis_between(a: &str, b: &str) -> i64 {
    match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        (Ok(a), Ok(b)) => (b - a).num_milliseconds(),
        _ => 0,
    }
}

/// One identity in full, or `None` if Tenure does not know it: attributes; per target what was
/// read back (the verified operations folded in the order they were verified, not planned)
/// beside what Tenure has committed to (pending work included) and how many operations are
/// still open; every operation, event and audit record about it.
///
/// A grant the target's latest reconciliation did not find (a group deleted by hand) is not
/// shown as verified: it is listed in `not_found` instead, until an operation verifies it again
/// after that finding.
pub fn identity_detail(
    config: &Config,
    store: &dyn tenure_store::Backend,
    id: &str,
) -> crate::Result<Option<proto::IdentityDetail>> {
    let schema = &config.schema;
    let Some(identity) = store.identity(schema, id)? else {
        return Ok(None);
    };
    let holdings = store.holdings(id)?;
    let ops = store.operations(&OpFilter { identity: Some(id.to_string()), ..OpFilter::default() })?;
    let events = store.events(id)?;
    let mut timeline: Vec<AuditRecord> = Vec::new();
    store.scan_audit(&AuditFilter { identity: Some(id.to_string()), since: None }, &mut |r| {
        timeline.push(r);
        true
    })?;
    let mut verified = read_back(&ops);
    let latest = store.latest_findings_of(id)?;
    let mut not_found: BTreeMap<String, BTreeSet<String>> = not_found(&latest, &timeline, &ops, id)
        .into_iter()
        .map(|(t, g)| (t.to_string(), g.into_iter().map(String::from).collect()))
        .collect();
    // An account the latest reconciliation found gone or disabled (by hand) is not shown as
    // verified and enabled: its grants are not in place either.
    for (t, gone) in account_not_in_place(&latest, &timeline, &ops, id) {
        if let Some(view) = verified.get_mut(t) {
            view.enabled = false;
            if gone {
                view.exists = false;
                not_found.entry(t.to_string()).or_default().extend(view.grants.iter().cloned());
            }
        }
    }
    for (t, gone) in &not_found {
        if let Some(view) = verified.get_mut(t) {
            for g in gone {
                view.grants.remove(g);
            }
        }
    }
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    for o in ops.iter().filter(|o| !o.state.is_settled()) {
        *open.entry(o.target.as_str()).or_default() += 1;
    }
    let targets: BTreeSet<&str> =
        holdings.keys().chain(verified.keys()).map(String::as_str).chain(open.keys().copied()).collect();
    let accounts = targets
        .into_iter()
        .map(|t| {
            let state = proto::AccountState {
                open_operations: open.get(t).copied().unwrap_or(0),
                planned: account_view(holdings.get(t)),
                verified: account_view(verified.get(t)),
                not_found: not_found.get(t).map(|g| g.iter().cloned().collect()).unwrap_or_default(),
            };
            (t.to_string(), state)
        })
        .collect();
    Ok(Some(proto::IdentityDetail {
        accounts,
        attributes: views::attributes(&identity, schema),
        events: events.iter().map(views::event).collect(),
        id: identity.id.to_string(),
        kind: identity.kind,
        operations: ops.iter().map(views::operation).collect(),
        status: identity.status,
        timeline: timeline.into_iter().map(views::audit_record).collect(),
    }))
}

/// When the latest reconciliation's finding about `target`'s `entitlement` (`None`: the account
/// itself) for identity `id` was recorded: its `finding.missing` audit record.
fn found_at<'r>(timeline: &'r [AuditRecord], target: &str, entitlement: Option<&str>) -> Option<&'r str> {
    timeline
        .iter()
        .rev()
        .find(|r| {
            r.entry.action == "finding.missing"
                && r.entry.target.as_deref() == Some(target)
                && r.entry.entitlement.as_deref() == entitlement
        })
        .map(|r| r.at.as_str())
}

/// The targets, with whether the account is gone (`true`) or only disabled, where the latest
/// reconciliation found identity `id`'s account missing or disabled (by hand) and no create or
/// enable was verified since.
fn account_not_in_place<'a>(
    latest: &'a [tenure_store::Finding],
    timeline: &[AuditRecord],
    ops: &[OpRecord],
    id: &str,
) -> BTreeMap<&'a str, bool> {
    let mut out = BTreeMap::new();
    let missing = latest.iter().filter(|f| {
        f.kind == tenure_core::FindingKind::Missing && f.identity.as_deref() == Some(id) && f.entitlement.is_none()
    });
    for f in missing {
        let at = found_at(timeline, &f.target, None);
        let restored_since = ops.iter().any(|o| {
            o.state == OpState::Verified
                && matches!(o.kind, tenure_core::OpKind::CreateAccount | tenure_core::OpKind::Enable)
                && o.target == f.target
                && o.verified_at.as_deref().zip(at).is_some_and(|(v, at)| v > at)
        });
        if !restored_since {
            // Reconciliation says "is disabled but should be enabled" of an account it read, and
            // "is not in" of one it did not find.
            out.insert(f.target.as_str(), !f.detail.contains("is disabled but should be enabled"));
        }
    }
    out
}

/// The grants, by target, that the latest reconciliation of the target found missing from
/// identity `id`'s account and that no grant verified since (after the finding's audit record).
fn not_found<'a>(
    latest: &'a [tenure_store::Finding],
    timeline: &[AuditRecord],
    ops: &[OpRecord],
    id: &str,
) -> BTreeMap<&'a str, BTreeSet<&'a str>> {
    let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let missing =
        latest.iter().filter(|f| f.kind == tenure_core::FindingKind::Missing && f.identity.as_deref() == Some(id));
    for f in missing {
        let Some(g) = f.entitlement.as_deref() else { continue };
        let found_at = found_at(timeline, &f.target, Some(g));
        let granted_since = ops.iter().any(|o| {
            o.state == OpState::Verified
                && o.kind == tenure_core::OpKind::Grant
                && o.target == f.target
                && o.entitlement.as_deref() == Some(g)
                && o.verified_at.as_deref().zip(found_at).is_some_and(|(v, at)| v > at)
        });
        if !granted_since {
            out.entry(f.target.as_str()).or_default().insert(g);
        }
    }
    out
}

/// What the targets were last read back to hold: the verified operations applied to nothing,
/// in the order they were verified (by time, then id).
fn read_back(ops: &[OpRecord]) -> Holdings {
    let mut verified: Vec<&OpRecord> = ops.iter().filter(|o| o.state == OpState::Verified).collect();
    verified.sort_by(|a, b| (a.verified_at.as_deref(), a.id).cmp(&(b.verified_at.as_deref(), b.id)));
    plan::apply_ops(&Holdings::new(), verified.iter().map(|o| (o.target.as_str(), o.kind, o.entitlement.as_deref())))
}

fn account_view(a: Option<&plan::AccountView>) -> proto::AccountView {
    match a {
        None => proto::AccountView::default(),
        Some(a) => proto::AccountView {
            enabled: a.exists && a.enabled,
            exists: a.exists,
            grants: a.grants.iter().cloned().collect(),
        },
    }
}

/// `tenure check`: the config at `path` and its policy (relative dates against `today`),
/// their problems as data, the targets whose granted entitlements only the live target can
/// confirm, and with `online` what the live targets say ([`check_online`]). A config that
/// cannot be found or read is an error, not a problem.
pub async fn check(path: &Path, today: NaiveDate, online: bool) -> Result<proto::CheckReport, AppError> {
    let mut problems = Vec::new();
    let mut remote = Vec::new();
    let mut unchecked = Vec::new();
    let mut warnings = Vec::new();
    let mut summary = None;
    match Loaded::load(path) {
        Err(AppError::Config(p)) => problems.extend(p),
        Err(e) => return Err(e),
        Ok(loaded) => match loaded.load_policy(today) {
            Err(AppError::Policy(p)) => problems.extend(p),
            Err(e) => return Err(e),
            Ok(policy) => {
                let config = &loaded.config;
                for t in &config.targets {
                    warnings.extend(tenure_connect::warnings(t).await);
                }
                // Issue 10: a secret sink a rotation would refuse is a problem now, not at 3 a.m.
                let mut sinks: Vec<&str> = config.nhi.secret_sink.iter().map(String::as_str).collect();
                sinks.extend(config.targets.iter().filter_map(|t| t.secret_sink.as_deref()));
                sinks.sort_unstable();
                sinks.dedup();
                for dir in sinks {
                    if let Some(why) = crate::sink::check(Path::new(dir)) {
                        let file = loaded.config_path.display().to_string();
                        problems.push(tenure_core::diag::Problem { file, line: 0, message: why });
                    }
                }
                // A webhook secret that is readable but too short or not random would sign
                // forgeable pushes: a problem now, not a refused push later. One that cannot
                // be read (a variable set only where the server runs) is not checked here.
                for src in config.sources.iter().filter(|s| s.kind == tenure_core::config::SourceKind::Webhook) {
                    if let Some(why) = webhook_secret_problem(&src.secret) {
                        let file = loaded.config_path.display().to_string();
                        let message = format!("source `{}`: {why}", tenure_core::text::escape(&src.name));
                        problems.push(tenure_core::diag::Problem { file, line: 0, message });
                    }
                }
                if online {
                    remote = check_online(config, &policy).await;
                } else {
                    // Targets without a declared `entitlements` list accept any well-formed name
                    // at load; only the live target can say whether it exists.
                    unchecked = config
                        .targets
                        .iter()
                        .filter(|t| t.entitlements.is_none() && policy.entitlements.iter().any(|e| e.target == t.name))
                        .map(|t| t.name.clone())
                        .collect();
                }
                summary = Some(proto::CheckSummary {
                    entitlements: policy.entitlements.len(),
                    roles: policy.roles.len(),
                    sod_rules: policy.sod.len(),
                    sources: config.sources.len(),
                    targets: config.targets.len(),
                });
            }
        },
    }
    Ok(proto::CheckReport {
        ok: problems.is_empty() && remote.is_empty(),
        online: remote,
        problems: problems
            .into_iter()
            .map(|p| proto::Problem { file: p.file, line: p.line, message: p.message })
            .collect(),
        summary,
        unchecked_targets: unchecked,
        warnings,
    })
}

/// Why a webhook source's secret cannot sign pushes, when it can be read.
fn webhook_secret_problem(r: &tenure_core::config::SecretRef) -> Option<String> {
    use tenure_core::config::SecretRef;
    let (text, from) = match r {
        SecretRef::Env(var) => (std::env::var(var).ok()?, format!("`{var}`")),
        SecretRef::File(path) => {
            (std::fs::read_to_string(path).ok()?, format!("`{}`", tenure_core::text::escape(path)))
        }
        SecretRef::None => return None,
    };
    tenure_core::config::webhook_secret_keys(&text).err().map(|why| format!("{why} (in {from})"))
}

/// Connects to every target and lists problems, sorted: targets that cannot be set up or
/// reached, and entitlements the policy grants that do not exist where they must (PostgreSQL
/// roles; directory and SCIM groups are created on first grant).
pub async fn check_online(config: &Config, policy: &Policy) -> Vec<String> {
    let conns = crate::executor::connectors(config).await;
    let mut out: Vec<String> =
        conns.unusable().map(|(name, why)| format!("target `{name}` cannot be used: {why}")).collect();
    for (name, conn) in conns.iter() {
        match conn.list_entitlements().await {
            Err(e) => out.push(format!("target `{name}` is unreachable: {e}")),
            Ok(existing) => {
                let existing: HashSet<String> = existing.into_iter().collect();
                let mut missing: Vec<String> = policy
                    .entitlements
                    .iter()
                    .filter(|e| e.target == name && !existing.contains(&e.name))
                    .map(ToString::to_string)
                    .collect();
                missing.sort();
                if config.target(name).map(|t| t.kind) == Some(TargetKind::Postgres) {
                    out.extend(missing.into_iter().map(|e| format!("entitlement `{e}` does not exist in `{name}`")));
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests;
