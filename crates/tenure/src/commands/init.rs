//! `tenure init`: a working starter config, policy and sample HR snapshot, and the audit
//! signing key.

use crate::output::key_notes;
use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::ExitCode;
use tenure_engine::evidence;
use tenure_sample::company::{Company, Options};
use tenure_sample::starter;

pub fn run(dir: Option<&Path>, force: bool) -> Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let today = crate::support::clock()?.today();
    let mut opts = Options::new(24, today);
    opts.departments = 4;
    opts.service_accounts = 2;
    let hr = Company::generate(&opts).to_csv();
    let files = [
        ("tenure.toml", starter::config()),
        ("policy.toml", starter::POLICY.to_string()),
        ("other.toml", starter::other_policy()),
        ("hr.csv", hr),
    ];
    if !force {
        for (name, _) in &files {
            if dir.join(name).exists() {
                bail!("`{}` already exists; use --force to overwrite", dir.join(name).display());
            }
        }
    }
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).with_context(|| format!("cannot write `{}`", dir.join(name).display()))?;
        outln!("wrote {}", dir.join(name).display());
    }
    // The default signing key (and its `.pub`); one that exists is kept.
    let key = dir.join(tenure_core::config::DEFAULT_SIGNING_KEY_FILE);
    key_notes(&evidence::ensure_signing_key(&key)?, &key);
    outln!("next: cd {} && tenure check && tenure import --source hr hr.csv && tenure plan", dir.display());
    Ok(ExitCode::SUCCESS)
}
