//! `tenure cases [--open]` and `tenure cases --coverage` (the report is
//! `tenure_engine::reports::coverage`).

use crate::output::{Format, opt, print_json, table};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::{reports, views};

pub fn list(app: &App, open_only: bool, f: Format) -> Result<ExitCode> {
    let cases = views::cases(app.store_ref(), open_only)?;
    if f == Format::Json {
        print_json(&cases)?;
    } else {
        let rows: Vec<Vec<String>> = cases
            .iter()
            .map(|c| {
                let (done, total) = c.progress();
                vec![
                    c.id.to_string(),
                    c.identity.clone(),
                    c.kind.to_string(),
                    c.state.to_string(),
                    format!("{done}/{total}"),
                    c.opened_at.clone(),
                    opt(&c.closed_at),
                    c.revoke_ms.map_or_else(|| "-".into(), |ms| format!("{:.3}s", ms as f64 / 1000.0)),
                ]
            })
            .collect();
        table(&["CASE", "IDENTITY", "EVENT", "STATE", "DONE", "OPENED", "CLOSED", "TIME-TO-REVOKE"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// Leaver revocation coverage per target class, with time-to-revoke; open leaver cases need
/// action (exit status 1).
pub fn coverage(app: &App, f: Format) -> Result<ExitCode> {
    let c = reports::coverage(app.config(), app.store_ref())?;
    if f == Format::Json {
        print_json(&c)?;
    } else {
        let rows: Vec<Vec<String>> = c
            .classes
            .iter()
            .map(|k| {
                vec![
                    k.class.clone(),
                    k.operations.to_string(),
                    k.verified.to_string(),
                    k.excepted.to_string(),
                    k.failed.to_string(),
                    k.open.to_string(),
                    format!("{:.1}%", k.coverage * 100.0),
                ]
            })
            .collect();
        table(&["CLASS", "LEAVER OPS", "VERIFIED", "EXCEPTED", "FAILED", "OPEN", "COVERAGE"], &rows);
        let ms = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |m| format!("{m} ms"));
        let t = &c.time_to_revoke_ms;
        outln!(
            "{} leaver case(s), {} still open; time-to-revoke p50 {}, p99 {}, max {}",
            c.leaver_cases,
            c.open_leaver_cases,
            ms(t.p50),
            ms(t.p99),
            ms(t.max)
        );
    }
    Ok(if c.needs_action() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
