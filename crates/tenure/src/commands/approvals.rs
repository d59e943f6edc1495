//! `tenure approvals [--all]`, `tenure approve ID`, `tenure reject ID --reason TEXT`.

use crate::output::{Format, esc, opt, print_json};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::decisions::{self, Approved};
use tenure_engine::views;

pub fn list(app: &App, all: bool, f: Format) -> Result<ExitCode> {
    let list = views::approvals(app.store_ref(), !all)?;
    if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no pending approvals");
    } else {
        for a in &list {
            let reason = esc(a.summary_str("reason").unwrap_or(""));
            let file = esc(a.summary_str("file").unwrap_or(""));
            outln!("approval {} [{}] {} batch from `{file}`: {reason}", a.id, a.state, a.kind);
            if let Some(c) = a.summary.get("counts") {
                outln!("  counts: {c}");
            }
            if let Some(by) = &a.decided_by {
                outln!(
                    "  decided by {} at {}{}",
                    esc(by),
                    opt(&a.decided_at),
                    a.decision_reason.as_ref().map(|r| format!(": {}", esc(r))).unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn approve(app: &App, id: i64, approver: &str) -> Result<ExitCode> {
    match decisions::approve(&app.engine()?, app.store().as_ref(), id, approver)? {
        Approved::Remediation(n) => {
            outln!("approval {id} approved by {approver}: {n} remediation operation(s) released; run `tenure apply`")
        }
        Approved::Batch(ids) => outln!(
            "approval {id} approved by {approver}: {} events applied, {} operations planned, {} cases opened",
            ids.events,
            ids.operations,
            ids.cases
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reject(app: &App, id: i64, by: &str, reason: &str) -> Result<ExitCode> {
    decisions::reject(app.store_ref(), id, by, reason)?;
    outln!("approval {id} rejected by {by}: the held batch is discarded");
    Ok(ExitCode::SUCCESS)
}
