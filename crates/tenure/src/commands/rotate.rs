//! `tenure rotate ID [--target T]`: plans a non-human identity's credential rotation. The new
//! secret is made by the executor (`tenure apply`), written only to the secret sink and verified
//! by logging in with it; this command never sees it.

use crate::output::{Format, opt, print_json, table};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;

pub fn run(app: &App, id: &str, target: Option<&str>, by: &str, f: Format) -> Result<ExitCode> {
    let actor = format!("user:{by}");
    let why = format!("requested by {by}");
    let planned = tenure_engine::nhi::rotate(app.config(), app.store().as_ref(), id, target, &actor, &why)?;
    if f == Format::Json {
        print_json(&planned)?;
    } else {
        let rows: Vec<Vec<String>> = planned
            .iter()
            .map(|r| {
                vec![
                    r.target.clone(),
                    opt(&r.account),
                    r.operation.to_string(),
                    if r.queued { "planned".into() } else { "already planned".into() },
                ]
            })
            .collect();
        table(&["TARGET", "ACCOUNT", "OPERATION", "STATE"], &rows);
        outln!("run `tenure apply` to rotate; each new secret goes only to the secret sink");
    }
    Ok(ExitCode::SUCCESS)
}
