//! `tenure plan [--identity ID] [--all]`: operations with their reasons.

use crate::output::{Format, opt, print_json, reason_text, table};
use anyhow::Result;
use std::process::ExitCode;
use tenure_core::OpState;
use tenure_engine::app::App;
use tenure_engine::views;
use tenure_store::OpFilter;

pub fn run(app: &App, identity: Option<&str>, all: bool, f: Format) -> Result<ExitCode> {
    let filter = OpFilter {
        identity: identity.map(str::to_string),
        states: if all { Vec::new() } else { vec![OpState::Pending] },
        case_id: None,
    };
    let ops = views::operations(app.store_ref(), &filter)?;
    if f == Format::Json {
        print_json(&ops)?;
    } else if ops.is_empty() {
        outln!("no {}operations", if all { "" } else { "pending " });
    } else {
        let rows: Vec<Vec<String>> = ops
            .iter()
            .map(|o| {
                vec![
                    o.id.to_string(),
                    o.identity.clone(),
                    o.target.clone(),
                    o.kind.to_string(),
                    opt(&o.entitlement),
                    o.state.to_string(),
                    reason_text(&o.reason),
                ]
            })
            .collect();
        table(&["OP", "IDENTITY", "TARGET", "KIND", "ENTITLEMENT", "STATE", "REASON"], &rows);
        outln!("{} operation(s)", ops.len());
    }
    Ok(ExitCode::SUCCESS)
}
