//! `tenure token create|list|revoke`: API tokens for the server (`tenure_engine::tokens`).
//! A created token is printed once; nothing prints it again.

use crate::output::{Format, esc, opt, print_json, table};
use crate::support::UsageError;
use anyhow::Result;
use std::process::ExitCode;
use tenure_core::Scope;
use tenure_engine::app::App;
use tenure_engine::tokens;

pub fn create(app: &App, name: &str, scope: &str, source: Option<&str>, by: &str, f: Format) -> Result<ExitCode> {
    let scope: Scope = scope.parse().map_err(|e: String| UsageError(format!("--scope: {e}")))?;
    let actor = format!("user:{by}");
    let created = tokens::create(app.config(), app.store().as_ref(), name, scope, source, &actor)?;
    if f == Format::Json {
        print_json(&created)?;
    } else {
        let t = &created.token;
        let bound = t.source.as_ref().map(|s| format!(" for source `{}`", esc(s))).unwrap_or_default();
        eprintln!("token `{}` created with scope {}{bound}; it is shown only this once:", esc(&t.name), t.scope);
        outln!("{}", created.secret);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(app: &App, all: bool, f: Format) -> Result<ExitCode> {
    let list = tokens::list(app.store().as_ref(), all)?;
    if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no tokens (`tenure token create --name NAME --scope SCOPE` makes one)");
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|t| {
                vec![
                    esc(&t.name),
                    t.scope.to_string(),
                    opt(&t.source),
                    t.created_at.clone(),
                    opt(&t.last_used_at),
                    t.revoked_at.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        table(&["NAME", "SCOPE", "SOURCE", "CREATED", "LAST USED", "REVOKED"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn revoke(app: &App, name: &str, by: &str, f: Format) -> Result<ExitCode> {
    let t = tokens::revoke(app.store().as_ref(), name, &format!("user:{by}"))?;
    if f == Format::Json {
        print_json(&t)?;
    } else {
        outln!("token `{}` revoked", esc(&t.name));
    }
    Ok(ExitCode::SUCCESS)
}
