//! `tenure simulate --policy FILE`: the whole population's plan under another policy, from
//! `tenure_engine::import::simulate`. Changes nothing.

use crate::output::{Format, opt, print_json, table};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use tenure_engine::app::{App, Loaded};
use tenure_engine::import;

pub fn run(config: &Path, policy: &Path, f: Format) -> Result<ExitCode> {
    // The candidate policy instead of the configured one, checked before the store is opened.
    let clock = crate::support::clock()?;
    let loaded = Loaded::load(config)?;
    let candidate = loaded.load_policy_at(policy, clock.today())?;
    let store = loaded.open_store(false, clock.clone())?;
    let app = App::from_parts(loaded, candidate, store, clock);
    let sim = import::simulate(&app.engine()?)?;
    if f == Format::Json {
        print_json(&sim)?;
    } else {
        let rows: Vec<Vec<String>> = sim
            .changes
            .iter()
            .map(|c| {
                vec![c.identity.clone(), c.target.clone(), c.kind.to_string(), opt(&c.entitlement), c.rules.join(",")]
            })
            .collect();
        if !rows.is_empty() {
            table(&["IDENTITY", "TARGET", "KIND", "ENTITLEMENT", "RULES"], &rows);
        }
        outln!(
            "simulated {} identities under {}: {} affected, {} grants, {} revokes, {} accounts created (nothing was changed)",
            sim.identities,
            policy.display(),
            sim.affected,
            sim.grants,
            sim.revokes,
            sim.accounts_created
        );
    }
    Ok(ExitCode::SUCCESS)
}
