//! `tenure identity list` and `tenure identity show ID` (the report is
//! `tenure_engine::reports::identity_detail`).

use crate::output::{Format, esc, opt, print_json, table};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::{reports, views};
use tenure_proto::AccountView;

pub fn list(app: &App, f: Format) -> Result<ExitCode> {
    let list = views::identities(app.store_ref(), &app.config().schema)?;
    if f == Format::Json {
        print_json(&list)?;
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|i| {
                let a = |n: &str| i.attributes.get(n).map_or("-", String::as_str).to_string();
                vec![i.id.clone(), i.kind.to_string(), i.status.to_string(), a("username"), a("department"), a("title")]
            })
            .collect();
        table(&["ID", "KIND", "STATUS", "USERNAME", "DEPARTMENT", "TITLE"], &rows);
        outln!("{} identities", list.len());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(app: &App, id: &str, f: Format) -> Result<ExitCode> {
    let Some(d) = reports::identity_detail(app.config(), app.store().as_ref(), id)? else {
        eprintln!("error: no identity `{id}`");
        return Ok(ExitCode::from(1));
    };
    if f == Format::Json {
        print_json(&d)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{} ({}, {})", esc(&d.id), d.kind, d.status);
    for (k, v) in &d.attributes {
        outln!("  {k:<16} {}", esc(v));
    }
    outln!("accounts (verified: read back from the target; planned: what Tenure has committed to):");
    if d.accounts.is_empty() {
        outln!("  (none)");
    } else {
        let show = |a: &AccountView| {
            if !a.exists {
                return "no account".to_string();
            }
            let state = if a.enabled { "enabled" } else { "disabled" };
            if a.grants.is_empty() { state.to_string() } else { format!("{state}: {}", a.grants.join(", ")) }
        };
        let rows: Vec<Vec<String>> = d
            .accounts
            .iter()
            .map(|(t, a)| {
                let mut verified = show(&a.verified);
                if !a.not_found.is_empty() {
                    let gone: Vec<String> = a.not_found.iter().map(|g| esc(g)).collect();
                    verified.push_str(&format!(" (not found by reconciliation: {})", gone.join(", ")));
                }
                vec![
                    format!("  {t}"),
                    verified,
                    show(&a.planned),
                    if a.open_operations == 0 { "-".into() } else { format!("{} open", a.open_operations) },
                ]
            })
            .collect();
        table(&["  TARGET", "VERIFIED", "PLANNED", "OPERATIONS"], &rows);
    }
    outln!("operations:");
    for o in &d.operations {
        outln!("  #{:<5} {:<10} {:<16} {:<20} {}", o.id, o.target, o.kind.as_str(), opt(&o.entitlement), o.state);
    }
    outln!("timeline:");
    for r in &d.timeline {
        outln!(
            "  {} #{} {} {}{}{} [{}] {}",
            r.at,
            r.seq,
            esc(&r.actor),
            r.action,
            r.target.as_ref().map(|t| format!(" {t}")).unwrap_or_default(),
            r.entitlement.as_ref().map(|t| format!(":{}", esc(t))).unwrap_or_default(),
            r.outcome,
            esc(r.reason.as_deref().unwrap_or_default())
        );
    }
    Ok(ExitCode::SUCCESS)
}
