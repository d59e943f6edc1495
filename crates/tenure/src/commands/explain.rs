//! `tenure explain ID [--target T] [--live]`: why an identity should hold what it holds and what
//! applying would change (the report is `tenure_engine::explain::explain`). One line per fact;
//! every value from the identity or the policy is escaped and quoted.

use crate::output::{Format, esc, print_json};
use anyhow::Result;
use std::process::ExitCode;
use std::time::Duration;
use tenure_engine::app::App;
use tenure_engine::explain;
use tenure_proto::{Fact, OpKind, RoleTrace};

pub fn run(app: &App, id: &str, target: Option<&str>, live: bool, f: Format) -> Result<ExitCode> {
    let engine = app.engine()?;
    let Some(mut x) = explain::explain(&engine, id, target)? else {
        eprintln!("error: no identity `{}`", esc(id));
        return Ok(ExitCode::from(1));
    };
    if live {
        crate::support::runtime()?.block_on(explain::read_targets(&engine, &mut x, Duration::from_secs(30)))?;
    }
    if f == Format::Json {
        print_json(&x)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{} ({}, {})", esc(&x.id), x.kind, x.status);
    if let Some(e) = &x.last_event {
        let changes: Vec<String> = e
            .changes
            .iter()
            .map(|c| format!("{} {} -> {}", esc(&c.attribute), value(c.from.as_deref()), value(c.to.as_deref())))
            .collect();
        let changes = if changes.is_empty() { String::new() } else { format!(": {}", changes.join(", ")) };
        outln!("latest event #{} {}{changes}", e.id, e.kind);
    }
    outln!("matched roles:");
    roles(&x.matched, "because");
    outln!("unmatched roles:");
    roles(&x.unmatched, "failed");
    outln!("desired entitlements:");
    if x.desired.is_empty() {
        outln!("  (none)");
    }
    for (t, m) in &x.desired {
        for (e, rs) in m {
            outln!("  {}:{} from {}", esc(t), esc(e), rs.iter().map(|r| esc(r)).collect::<Vec<_>>().join(", "));
        }
    }
    for s in &x.sod {
        outln!(
            "sod {} {}: conflicting {}; refused {}",
            esc(&s.rule),
            s.action,
            s.conflicting.iter().map(|c| esc(c)).collect::<Vec<_>>().join(", "),
            if s.refused.is_empty() {
                "nothing".to_string()
            } else {
                s.refused.iter().map(|c| esc(c)).collect::<Vec<_>>().join(", ")
            }
        );
    }
    if x.targets_read {
        outln!("targets (read live):");
    } else {
        outln!("targets (not read, see --live: compared with what Tenure holds, pending work included):");
    }
    if x.targets.is_empty() {
        outln!("  (none)");
    }
    for (t, e) in &x.targets {
        let account = e.account.as_deref().map_or("-".to_string(), |a| format!("\"{}\"", esc(a)));
        let state = match (e.held.exists, e.held.enabled) {
            (false, _) => "no account".to_string(),
            (true, enabled) => {
                let s = if enabled { "enabled" } else { "disabled" };
                let g: Vec<String> = e.held.grants.iter().map(|g| esc(g)).collect();
                if g.is_empty() { s.to_string() } else { format!("{s}, grants {}", g.join(", ")) }
            }
        };
        outln!("  {} account {account}: {state}; {} open operations", esc(t), e.open_operations);
        if e.changes.is_empty() {
            outln!("    {}", if e.open_operations > 0 { "no change beyond the open operations" } else { "no change" });
        }
        for c in &e.changes {
            let what = match c.kind {
                OpKind::CreateAccount => "create account".to_string(),
                OpKind::Enable => "enable account".to_string(),
                OpKind::Disable => "disable account".to_string(),
                OpKind::UpdateAttributes => "update the mapped attributes".to_string(),
                k => format!("{k} {}", c.entitlement.as_deref().map(esc).unwrap_or_default()),
            };
            let why = if c.rules.is_empty() {
                String::new()
            } else {
                format!(" (from {})", c.rules.iter().map(|r| esc(r)).collect::<Vec<_>>().join(", "))
            };
            outln!("    would {}{why}", what.trim_end());
        }
        if let Some(l) = &e.live {
            let list = |v: &[String]| {
                if v.is_empty() { "none".to_string() } else { v.iter().map(|g| esc(g)).collect::<Vec<_>>().join(", ") }
            };
            match &l.error {
                Some(err) => outln!("    live: not read: {}", esc(err)),
                None if !l.found => outln!("    live: {}; missing {}", esc(&l.correlated_by), list(&l.missing)),
                None => {
                    outln!(
                        "    live: found by {}, {}",
                        esc(&l.correlated_by),
                        if l.enabled { "enabled" } else { "disabled" }
                    );
                    outln!("    live grants: {}", list(&l.grants));
                    outln!(
                        "    live missing: {}; extra: {}; unmanaged, left alone: {}",
                        list(&l.missing),
                        list(&l.extra),
                        list(&l.unmanaged)
                    );
                    if l.attributes.is_empty() {
                        outln!("    live attributes: no change");
                    }
                    for a in &l.attributes {
                        let live = if a.live.is_empty() {
                            "none".to_string()
                        } else {
                            a.live.iter().map(|v| format!("\"{}\"", esc(v))).collect::<Vec<_>>().join(", ")
                        };
                        outln!("    would change {}: {live} -> {}", esc(&a.attribute), value(a.desired.as_deref()));
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn roles(list: &[RoleTrace], label: &str) {
    if list.is_empty() {
        outln!("  (none)");
    }
    for r in list {
        let grants: Vec<String> = r.grants.iter().map(|g| esc(g)).collect();
        outln!(
            "  {} grants {}",
            esc(&r.role),
            if grants.is_empty() { "nothing".to_string() } else { grants.join(", ") }
        );
        for f in &r.facts {
            outln!("    {label}: {}", fact(f));
        }
    }
}

/// `department eq "Sales", value "Engineering"`; `not status in ["terminated"], value "active"`.
fn fact(f: &Fact) -> String {
    let q = |v: &str| format!("\"{}\"", esc(v));
    let expected = if f.test == "in" {
        format!("[{}]", f.expected.iter().map(|v| q(v)).collect::<Vec<_>>().join(", "))
    } else {
        f.expected.iter().map(|v| q(v)).collect::<Vec<_>>().join(", ")
    };
    let actual = f.actual.as_deref().map_or("no value".to_string(), |v| format!("value {}", q(v)));
    let not = if f.negated { "not " } else { "" };
    let changed = if f.changed { format!(" (changed from {})", value(f.previous.as_deref())) } else { String::new() };
    format!("{not}{} {} {expected}, {actual}{changed}", esc(&f.attribute), f.test)
}

/// A value quoted and escaped, or `none`.
fn value(v: Option<&str>) -> String {
    v.map_or("none".to_string(), |v| format!("\"{}\"", esc(v)))
}
