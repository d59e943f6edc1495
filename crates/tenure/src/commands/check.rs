//! `tenure check [--online]`: the config and policy problems, from `reports::check`.

use crate::output::{Format, print_json};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use tenure_engine::reports;

pub fn run(config: &Path, online: bool, f: Format) -> Result<ExitCode> {
    let today = crate::support::clock()?.today();
    let r = crate::support::runtime()?.block_on(reports::check(config, today, online))?;
    // With `--online`, connecting to each target has printed these already.
    if !online {
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
    }
    if f == Format::Json {
        print_json(&r)?;
    } else if r.ok {
        let s = r.summary.clone().unwrap_or_default();
        outln!(
            "ok: {} source(s), {} target(s), {} role(s), {} entitlement(s), {} SoD rule(s)",
            s.sources,
            s.targets,
            s.roles,
            s.entitlements,
            s.sod_rules
        );
        if !r.unchecked_targets.is_empty() {
            let names: Vec<String> = r.unchecked_targets.iter().map(|t| format!("`{t}`")).collect();
            outln!(
                "not checked: the entitlements the policy grants in {} (no `entitlements = [...]` declared); \
                 `tenure check --online` asks the live targets, or declare the list on each target",
                names.join(", ")
            );
        }
    } else {
        for p in &r.problems {
            outln!("{p}");
        }
        for o in &r.online {
            outln!("online: {o}");
        }
        outln!("{} problem(s)", r.problems.len() + r.online.len());
    }
    Ok(if r.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
