//! `tenure approvals [--all]`, `tenure approve ID`, `tenure reject ID --reason TEXT`.

use crate::output::{Format, esc, opt, print_json};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::decisions::{self, Approved, Decider};
use tenure_engine::views;

pub fn list(app: &App, all: bool, f: Format) -> Result<ExitCode> {
    let list = views::approvals(app.store_ref(), !all)?;
    if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no pending approvals");
    } else {
        for a in &list {
            if a.kind == tenure_core::ApprovalKind::Request {
                let n = |k: &str| a.summary.get(k).and_then(serde_json::Value::as_i64).unwrap_or_default();
                outln!(
                    "approval {} [{}] request {} stage {} of {} ({}): role `{}` for `{}`, by `{}`: {}",
                    a.id,
                    a.state,
                    n("request"),
                    n("stage"),
                    n("stages"),
                    esc(a.summary_str("rule").unwrap_or("")),
                    esc(a.summary_str("role").unwrap_or("")),
                    esc(a.summary_str("identity").unwrap_or("")),
                    esc(a.summary_str("approver").unwrap_or("")),
                    esc(a.summary_str("reason").unwrap_or(""))
                );
                continue;
            }
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

pub fn approve(app: &App, id: i64, decider: &Decider) -> Result<ExitCode> {
    let approver = esc(&decider.name);
    match decisions::approve(&app.engine()?, app.store().as_ref(), id, decider)? {
        Approved::Request(r) => match r.stages.iter().find(|s| s.state == tenure_core::StageState::Pending) {
            Some(next) => outln!(
                "approval {id} approved by {approver}: request {} now waits for `{}` (approval {})",
                r.id,
                esc(&next.approver),
                next.approval_id.unwrap_or_default()
            ),
            None => outln!(
                "approval {id} approved by {approver}: request {} granted{}; run `tenure apply`",
                r.id,
                r.expires_at.as_ref().map(|e| format!(" until {e}")).unwrap_or_default()
            ),
        },
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

pub fn reject(app: &App, id: i64, decider: &Decider, reason: &str) -> Result<ExitCode> {
    decisions::reject(&app.engine()?, id, decider, reason)?;
    outln!("approval {id} rejected by {}: what it held is discarded", esc(&decider.name));
    Ok(ExitCode::SUCCESS)
}
