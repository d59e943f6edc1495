//! `tenure tasks [--all] [--quiet]` and `tenure task done ID --evidence TEXT`.

use crate::output::{Format, print_json, table};
use crate::support::UsageError;
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::{decisions, views};

pub fn list(app: &App, all: bool, quiet: bool, f: Format) -> Result<ExitCode> {
    let list = views::tickets(app.store().as_ref(), !all)?;
    if quiet {
        for t in &list {
            outln!("{}", t.id);
        }
    } else if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no {}tickets", if all { "" } else { "open " });
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    t.target.clone(),
                    t.owner.clone(),
                    if t.overdue { "OVERDUE".into() } else { t.state.to_string() },
                    t.due_at.clone(),
                    t.summary.clone(),
                ]
            })
            .collect();
        table(&["TICKET", "TARGET", "OWNER", "STATE", "DUE", "WHAT"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn done(app: &App, id: i64, evidence: &str, by: &str) -> Result<ExitCode> {
    if evidence.trim().is_empty() {
        return Err(UsageError("--evidence must say what was done".into()).into());
    }
    let t = decisions::complete_ticket(app.store().as_ref(), id, by, evidence)?;
    outln!("ticket {id} done by {by}: {}", t.summary);
    Ok(ExitCode::SUCCESS)
}
