//! `tenure correlations [--open]` and `tenure correlate CASE --to ID | --orphan --reason TEXT`:
//! the correlation cases and a person's decision of one (`tenure_engine::correlation`).

use crate::output::{Format, esc, opt, print_json, table};
use anyhow::Result;
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_engine::correlation::{self, Choice};
use tenure_engine::decisions::Decider;

pub fn list(app: &App, open_only: bool, f: Format) -> Result<ExitCode> {
    let list = correlation::cases(app.store().as_ref(), open_only)?;
    if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no {}correlation cases", if open_only { "open " } else { "" });
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|c| {
                let candidates: Vec<String> =
                    c.candidates.iter().map(|x| format!("{} ({} {:.2})", x.identity, x.rule, x.confidence)).collect();
                let decided = match (&c.decided_by, &c.identity) {
                    (Some(by), Some(i)) => format!("{i}, by {by}"),
                    (Some(by), None) => format!("by {by}"),
                    _ => String::new(),
                };
                vec![
                    c.id.to_string(),
                    c.target.clone(),
                    esc(&c.account),
                    c.state.to_string(),
                    candidates.join(", "),
                    esc(&c.why),
                    decided,
                    opt(&c.reason),
                ]
            })
            .collect();
        table(&["CASE", "TARGET", "ACCOUNT", "STATE", "CANDIDATES", "WHY", "DECIDED", "REASON"], &rows);
        let open = list.iter().filter(|c| c.state == tenure_proto::CorrelationState::Open).count();
        if open > 0 {
            outln!(
                "{open} open: nothing is planned for their accounts or candidates there until decided with `tenure correlate CASE --to ID` or `--orphan --reason TEXT`"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn decide(
    app: &App,
    case: i64,
    to: Option<&str>,
    reason: Option<&str>,
    by: &Decider,
    f: Format,
) -> Result<ExitCode> {
    let choice = match to {
        Some(id) => Choice::To(id.to_string()),
        None => Choice::Orphan,
    };
    let d = correlation::decide(&app.engine()?, case, &choice, reason, by)?;
    if f == Format::Json {
        print_json(&d)?;
    } else {
        match &d.case.identity {
            Some(id) => outln!(
                "correlation case {case}: account `{}` in `{}` linked to `{id}` by {}; {} operation(s) planned, run `tenure apply`",
                esc(&d.case.account),
                d.case.target,
                by.name,
                d.operations
            ),
            None => outln!(
                "correlation case {case}: account `{}` in `{}` is an orphan, decided by {}; no rule links it again",
                esc(&d.case.account),
                d.case.target,
                by.name
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
