//! `tenure reconcile [--target NAME] [--remediate]`: `tenure_engine::reconcile` with the
//! connectors, and its findings.

use crate::output::{Format, opt, print_json, table};
use crate::support;
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::reconcile;

/// Runs as `by` (`user:NAME` in the audit trail): held fixes record them as their submitter.
pub fn run(app: &App, target: Option<&str>, remediate: bool, by: &str, f: Format) -> Result<ExitCode> {
    let policy = app.policy()?;
    // An unknown target is a usage error before any target is set up.
    reconcile::known_target(app.config(), target)?;
    let pb = support::spinner("reading targets");
    let report = support::runtime()?.block_on(async {
        let conns = support::connectors(app.config()).await;
        let actor = format!("user:{by}");
        reconcile::reconcile_as(app.config(), policy, app.store().clone(), &conns, target, remediate, &actor).await
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if f == Format::Json {
        print_json(&report)?;
    } else {
        let mut rows = Vec::new();
        for s in &report.skipped {
            outln!("{}: NOT reconciled: {}", s.target, s.reason);
        }
        for t in &report.targets {
            outln!(
                "{}: {} accounts, {} grants read in {} ms; {} finding(s)",
                t.target,
                t.accounts,
                t.grants,
                t.millis,
                t.findings.len()
            );
            for note in &t.notes {
                outln!("{}: note: {}", t.target, tenure_core::text::escape(note));
            }
            if !t.unmanaged.is_empty() {
                let held: Vec<String> = t
                    .unmanaged
                    .iter()
                    .map(|u| format!("`{}` ({})", tenure_core::text::quote(&u.entitlement), u.accounts))
                    .collect();
                outln!("{}: left alone, not managed by the policy: {}", t.target, held.join(", "));
            }
            rows.extend(t.findings.iter().map(finding_row));
        }
        rows.extend(report.sod.iter().map(finding_row));
        if !rows.is_empty() {
            table(&["FINDING", "TARGET", "ACCOUNT", "IDENTITY", "ENTITLEMENT", "DETAIL"], &rows);
        }
        if let Some(r) = &report.remediation {
            match (&r.held, r.approval_id) {
                (Some(reason), Some(id)) => {
                    outln!("remediation HELD ({reason}): {} operation(s) wait for `tenure approve {id}`", r.operations)
                }
                _ => outln!("remediation: {} operation(s) planned; run `tenure apply`", r.operations),
            }
        }
    }
    Ok(if report.finding_count() > 0 || !report.skipped.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn finding_row(x: &tenure_proto::Finding) -> Vec<String> {
    vec![x.kind.to_string(), x.target.clone(), opt(&x.account), opt(&x.identity), opt(&x.entitlement), x.detail.clone()]
}
