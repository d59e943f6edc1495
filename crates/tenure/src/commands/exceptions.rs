//! `tenure exceptions [--all]`: the exceptions register (control debt); `tenure exception
//! resolve|accept ID --reason TEXT [--due DATE]`: a person's decision on one, audited with who.

use crate::output::{Format, opt, print_json, table};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::decisions::{self, ExceptionDecision};
use tenure_engine::views;
use tenure_store::Closing;

pub fn list(app: &App, all: bool, f: Format) -> Result<ExitCode> {
    let list = views::exceptions(app.store().as_ref(), !all)?;
    if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no {}exceptions", if all { "" } else { "open " });
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    e.kind.to_string(),
                    if e.overdue { format!("{} (OVERDUE)", e.state) } else { e.state.to_string() },
                    e.owner.clone(),
                    opt(&e.identity),
                    opt(&e.target),
                    e.created_at.clone(),
                    opt(&e.due_at),
                    age(e.age_seconds),
                    e.reason.clone(),
                ]
            })
            .collect();
        table(&["EXC", "KIND", "STATE", "OWNER", "IDENTITY", "TARGET", "OPENED", "DUE", "AGE", "REASON"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// An age for people: `3d 4h`, `2h 5m`, `40s`.
fn age(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

pub fn close(
    app: &App,
    id: i64,
    closing: Closing,
    reason: &str,
    due: Option<&str>,
    by: &str,
    f: Format,
) -> Result<ExitCode> {
    let actor = format!("user:{by}");
    let d = ExceptionDecision { id, closing, by, actor: &actor, reason, due };
    let x = decisions::close_exception(app.store().as_ref(), &app.config().schema, &d)?;
    if f == Format::Json {
        print_json(&x)?;
    } else {
        let due = x.due_at.as_deref().map(|d| format!(", due {d}")).unwrap_or_default();
        outln!("exception {id} ({}) {} by {by}{due}", x.kind, x.state);
    }
    Ok(ExitCode::SUCCESS)
}
