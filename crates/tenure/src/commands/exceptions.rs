//! `tenure exceptions [--all]`: the exceptions register (control debt).

use crate::output::{Format, opt, print_json, table};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::views;

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
                    e.state.to_string(),
                    e.owner.clone(),
                    opt(&e.identity),
                    e.created_at.clone(),
                    e.reason.clone(),
                ]
            })
            .collect();
        table(&["EXC", "KIND", "STATE", "OWNER", "IDENTITY", "SINCE", "REASON"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}
