//! `tenure schedule run-once [--job NAME]`: one pass of `tenure_engine::schedule` (the jobs that
//! are due, then the executor) and what each job did.

use crate::output::{Format, print_json, table};
use crate::support::{self, UsageError};
use anyhow::Result;
use std::process::ExitCode;
use std::sync::Arc;
use tenure_core::JobOutcome;
use tenure_engine::app::App;
use tenure_engine::schedule::{self, Job};

pub fn run_once(app: &App, job: Option<&str>, f: Format) -> Result<ExitCode> {
    let only = match job {
        None => None,
        Some(name) => Some(
            Job::parse(name)
                .ok_or_else(|| UsageError(format!("unknown job `{name}`; expected one of: {}", Job::names())))?,
        ),
    };
    let run = support::runtime()?.block_on(async {
        let conns = Arc::new(support::connectors(app.config()).await);
        schedule::run_once(app, &conns, only).await
    })?;
    if let Some(holder) = &run.held_by {
        return Err(tenure_store::StoreError::Conflict(format!(
            "the schedules run in another process, which holds the scheduler lease: {holder}"
        ))
        .into());
    }
    if f == Format::Json {
        print_json(&run)?;
    } else if run.jobs.is_empty() {
        outln!("nothing is due");
    } else {
        let rows: Vec<Vec<String>> =
            run.jobs.iter().map(|j| vec![j.job.clone(), j.outcome.to_string(), j.detail.clone()]).collect();
        table(&["job", "outcome", "detail"], &rows);
    }
    let failed = run.jobs.iter().any(|j| j.outcome == JobOutcome::Failed);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
