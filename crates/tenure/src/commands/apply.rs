//! `tenure apply [--wait] [--retry-failed]`: `tenure_engine::apply` (through `support::apply`)
//! and its report.

use crate::output::{Format, print_json};
use crate::support;
use anyhow::Result;
use std::process::ExitCode;
use tenure_core::OpState;
use tenure_engine::app::App;

pub fn run(app: &App, wait: bool, retry_failed_by: Option<String>, f: Format) -> Result<ExitCode> {
    let report = support::apply(app, wait, retry_failed_by, true)?;
    if report.retried > 0 && f == Format::Text {
        outln!("{} failed operation(s) queued again", report.retried);
    }
    if report.expired_requests > 0 && f == Format::Text {
        outln!("{} access request(s) expired: their revocation was planned first", report.expired_requests);
    }
    if f == Format::Json {
        print_json(&report)?;
    } else {
        let r = &report.report;
        let counts: Vec<String> = r.remaining.iter().map(|(k, v)| format!("{k} {v}")).collect();
        outln!(
            "applied: {} verified, {} retries scheduled, {} failed, {} ticket(s) opened; operations now: {}",
            r.verified,
            r.retries,
            r.failed,
            r.tickets,
            counts.join(", ")
        );
        for (target, notes) in &r.notes {
            for note in notes {
                outln!("{target}: note: {}", tenure_core::text::escape(note));
            }
        }
        if report.open_tickets > 0 {
            outln!("{} manual ticket(s) open: see `tenure tasks`", report.open_tickets);
        }
    }
    let failed = report.remaining(OpState::Failed);
    if failed > 0 && f == Format::Text {
        outln!(
            "{failed} operation(s) failed: see `tenure plan --all` and `tenure exceptions`; after fixing the cause, `tenure apply --retry-failed`"
        );
    }
    Ok(if failed > 0 || (wait && report.remaining(OpState::Pending) > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
