//! `tenure request ROLE --for ID --reason TEXT [--duration D]`, `tenure request revoke ID
//! --reason TEXT`, `tenure requests [--open]`: access requests (`tenure_engine::requests`).

use crate::output::{Format, esc, opt, print_json, table};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::decisions::Decider;
use tenure_engine::requests::{self, Ask};
use tenure_proto::Request;

pub fn create(app: &App, ask: &Ask<'_>, requester: &Decider, f: Format) -> Result<ExitCode> {
    let r = requests::create(&app.engine()?, ask, requester)?;
    if f == Format::Json {
        print_json(&r)?;
    } else {
        let duration =
            r.duration_secs.map_or_else(|| "until revoked".to_string(), |s| format!("for {s} s once approved"));
        outln!("request {} for role `{}` of `{}` ({duration}) is pending", r.id, esc(&r.role), esc(&r.identity));
        for s in &r.stages {
            let approval = s.approval_id.map(|a| format!(": `tenure approve {a}`")).unwrap_or_default();
            outln!("  stage {} ({}) by `{}` [{}]{approval}", s.stage, esc(&s.rule), esc(&s.approver), s.state);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tenure request revoke ID [--reason TEXT]`: without a reason, the one recorded is
/// `revoked early by NAME`; a reason given must not be blank.
pub fn revoke(app: &App, id: i64, decider: &Decider, reason: Option<&str>, f: Format) -> Result<ExitCode> {
    let reason = reason.map_or_else(|| format!("revoked early by {}", decider.name), str::to_string);
    let r = requests::revoke(&app.engine()?, id, decider, &reason)?;
    if f == Format::Json {
        print_json(&r)?;
    } else {
        outln!(
            "request {} for role `{}` of `{}` revoked; run `tenure apply` to remove the access",
            r.id,
            esc(&r.role),
            esc(&r.identity)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(app: &App, open_only: bool, f: Format) -> Result<ExitCode> {
    let list: Vec<Request> = requests::list(&app.engine()?, open_only)?;
    if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no {}requests", if open_only { "open " } else { "" });
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|r| {
                let waiting = r
                    .stages
                    .iter()
                    .find(|s| s.state == tenure_core::StageState::Pending)
                    .map(|s| format!("approval {} by {}", s.approval_id.unwrap_or_default(), s.approver))
                    .unwrap_or_default();
                vec![
                    r.id.to_string(),
                    r.role.clone(),
                    r.identity.clone(),
                    r.state.to_string(),
                    r.requester.clone(),
                    opt(&r.expires_at),
                    waiting,
                    r.reason.clone(),
                ]
            })
            .collect();
        table(&["REQ", "ROLE", "IDENTITY", "STATE", "REQUESTER", "EXPIRES", "WAITING FOR", "REASON"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}
