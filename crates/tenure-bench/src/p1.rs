//! P1: desired-state recompute of every identity, in-process, on the engine's own entry point
//! [`tenure_engine::desired::recompute_all`] (parallel over the available cores).
//!
//! Identities come from yesterday's snapshot through the real parser; the config and policy are
//! the data set's. Only `recompute_all` is timed: loading, parsing and policy compilation are
//! reported separately.

use crate::data::{ENTITLEMENTS, Layout, ROLES};
use crate::stats::{Summary, verdict};
use anyhow::{Context as _, Result, anyhow, bail};
use std::time::Instant;
use tenure_engine::Engine;
use tenure_engine::desired::recompute_all;
use tenure_store::SqliteStore;

/// P1 target: milliseconds.
const TARGET_MS: f64 = 1_000.0;

pub fn run(layout: &Layout, runs: usize) -> Result<bool> {
    layout.require(false)?;
    let today = crate::data::today()?;
    let read = |p: &std::path::Path| std::fs::read(p).with_context(|| format!("cannot read `{}`", p.display()));
    let config_text = String::from_utf8(read(&layout.config())?)?;
    let config = tenure_core::config::parse("tenure.toml", &config_text).map_err(|p| anyhow!("{}", problems(&p)))?;
    let policy_text = String::from_utf8(read(&layout.policy())?)?;
    let policy =
        tenure_policy::parse("policy.toml", &policy_text, &config, today).map_err(|p| anyhow!("{}", problems(&p)))?;
    if policy.roles.len() != ROLES || policy.entitlements.len() != ENTITLEMENTS {
        bail!(
            "the bench policy has {} roles and {} distinct entitlements; P1 needs {ROLES} and {ENTITLEMENTS}",
            policy.roles.len(),
            policy.entitlements.len()
        );
    }
    let source = config.source("hr").context("the bench config has no `hr` source")?;
    let csv = read(&layout.day1())?;
    let parsed = tenure_core::snapshot::parse_csv(source, &config.schema, &csv, today)?;
    if !parsed.rejected.is_empty() {
        bail!("day1.csv has {} rejected rows; the data set is broken", parsed.rejected.len());
    }
    let identities = parsed.identities;
    let store = SqliteStore::memory(std::sync::Arc::new(tenure_store::SystemClock))?;
    let start = Instant::now();
    let engine = Engine::new(&config, &policy, &store, today);
    let compile = start.elapsed();

    // One untimed run warms caches and gives the totals to print.
    let assigned = recompute_all(&engine, &identities);
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let n = recompute_all(&engine, &identities);
        ms.push(start.elapsed().as_secs_f64() * 1e3);
        if n != assigned {
            bail!("recompute_all is not deterministic: {n} != {assigned}");
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "P1 setup: {} identities, {} roles, {} entitlements, {threads} threads; policy compiled in {:.1} ms; \
         {assigned} entitlements assigned ({:.1} per identity)",
        identities.len(),
        policy.roles.len(),
        policy.entitlements.len(),
        compile.as_secs_f64() * 1e3,
        assigned as f64 / identities.len().max(1) as f64
    );
    let s = Summary::of(ms).context("no runs")?;
    Ok(verdict("P1", "desired-state recompute (recompute_all)", &s, "ms", TARGET_MS))
}

fn problems(p: &[tenure_core::Problem]) -> String {
    p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}
