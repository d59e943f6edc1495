//! `tenure campaign create|list|show|close|export`, `tenure review ITEM`, `tenure reviews`:
//! certification campaigns (`tenure_engine::campaigns`).

use crate::output::{Format, esc, print_json, table};
use crate::support::UsageError;
use anyhow::Result;
use std::process::ExitCode;
use tenure_core::ReviewDecision;
use tenure_engine::app::App;
use tenure_engine::campaigns::{self, Applied, CreateOptions};
use tenure_proto::ReviewItem;

pub fn create(app: &App, o: &CreateOptions, f: Format) -> Result<ExitCode> {
    let c = campaigns::create(app, o)?;
    if f == Format::Json {
        print_json(&c)?;
    } else {
        outln!(
            "campaign {} `{}` created: {} item(s) over {}, reviewed by {}, due {} (on_timeout {})",
            c.id,
            esc(&c.name),
            c.items,
            esc(&c.scope),
            esc(&c.reviewer),
            c.due_at,
            c.on_timeout
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(app: &App, f: Format) -> Result<ExitCode> {
    let list = campaigns::list(app)?;
    if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no campaigns");
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    c.name.clone(),
                    c.state.to_string(),
                    c.scope.clone(),
                    c.reviewer.clone(),
                    format!("{}/{}", c.decided, c.items),
                    c.due_at.clone(),
                ]
            })
            .collect();
        table(&["CAMPAIGN", "NAME", "STATE", "SCOPE", "REVIEWER", "DECIDED", "DUE"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

fn item_rows(items: &[ReviewItem]) -> Vec<Vec<String>> {
    let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    items
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.identity.clone(),
                i.entitlement.clone(),
                i.why.join(","),
                i.reviewer.clone(),
                dash(i.decision.map(|d| d.to_string())),
                dash(i.outcome.map(|o| o.to_string())),
                dash(i.justification.clone()),
            ]
        })
        .collect()
}

const ITEM_HEADER: [&str; 8] = ["ITEM", "IDENTITY", "ENTITLEMENT", "WHY", "REVIEWER", "DECISION", "OUTCOME", "REASON"];

pub fn show(app: &App, id: i64, f: Format) -> Result<ExitCode> {
    let (c, items) = campaigns::show(app, id)?;
    if f == Format::Json {
        print_json(&tenure_proto::CampaignDetail { campaign: c, items })?;
    } else {
        outln!(
            "campaign {} `{}` [{}]: scope {}, reviewer {}, due {}, on_timeout {}, created by {} at {}",
            c.id,
            esc(&c.name),
            c.state,
            esc(&c.scope),
            esc(&c.reviewer),
            c.due_at,
            c.on_timeout,
            esc(&c.created_by),
            c.created_at
        );
        outln!("{} of {} item(s) decided", c.decided, c.items);
        table(&ITEM_HEADER, &item_rows(&items));
    }
    Ok(ExitCode::SUCCESS)
}

fn applied_text(a: &Applied) -> String {
    let mut s = String::new();
    if a.operations > 0 {
        s.push_str(&format!("; {} revocation(s) planned", a.operations));
        match (a.approval_id, &a.held) {
            (Some(id), Some(why)) => s.push_str(&format!(", held for approval {id} ({why}): `tenure approve {id}`")),
            _ => s.push_str(": run `tenure apply`"),
        }
    }
    if a.not_held > 0 {
        s.push_str(&format!("; {} revoke decision(s) found the access already gone", a.not_held));
    }
    s
}

pub fn close(app: &App, id: i64, by: &str, f: Format) -> Result<ExitCode> {
    let (c, applied) = campaigns::close(app, id, by, &format!("user:{by}"))?;
    if f == Format::Json {
        print_json(&serde_json::json!({ "campaign": c, "applied": applied }))?;
    } else {
        outln!(
            "campaign {} closed by {}: {} of {} item(s) decided{}",
            c.id,
            esc(by),
            c.decided,
            c.items,
            applied_text(&applied)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(app: &App, id: i64) -> Result<ExitCode> {
    let mut out = Vec::new();
    campaigns::export_csv(app, id, &mut out)?;
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// What `tenure review ITEM` asks.
#[derive(Debug, Clone, Copy)]
pub struct Review<'a> {
    pub keep: bool,
    pub revoke: bool,
    pub reason: Option<&'a str>,
    pub reassign: Option<&'a str>,
    pub note: Option<&'a str>,
}

pub fn review(app: &App, item: i64, ask: &Review<'_>, who: &str, f: Format) -> Result<ExitCode> {
    let actor = format!("user:{who}");
    if let Some(to) = ask.reassign {
        let note = ask.note.ok_or_else(|| UsageError("--reassign needs --note TEXT: why it is handed on".into()))?;
        let i = campaigns::reassign(app, item, to, note, who, &actor)?;
        if f == Format::Json {
            print_json(&i)?;
        } else {
            outln!("review item {} reassigned to {}", i.id, esc(&i.reviewer));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let decision = match (ask.keep, ask.revoke) {
        (true, false) => ReviewDecision::Keep,
        (false, true) => ReviewDecision::Revoke,
        _ => {
            return Err(
                UsageError("say --keep or --revoke (with --reason), or --reassign TO --note TEXT".into()).into()
            );
        }
    };
    let reason =
        ask.reason.ok_or_else(|| UsageError(format!("--{decision} needs --reason TEXT: why, for the record")))?;
    let (i, applied) = campaigns::decide(app, item, decision, reason, who, &actor)?;
    if f == Format::Json {
        print_json(&serde_json::json!({ "item": i, "applied": applied }))?;
    } else {
        outln!(
            "review item {}: {} `{}` of `{}`, decided by {}{}",
            i.id,
            decision,
            esc(&i.entitlement),
            esc(&i.identity),
            esc(i.decided_by.as_deref().unwrap_or(who)),
            applied.as_ref().map(applied_text).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reviews(app: &App, all: bool, who: &str, f: Format) -> Result<ExitCode> {
    let list = if all { campaigns::reviews(app, None, false)? } else { campaigns::reviews(app, Some(who), true)? };
    if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no review items{}", if all { "" } else { " waiting for you" });
    } else {
        table(&ITEM_HEADER, &item_rows(&list));
    }
    Ok(ExitCode::SUCCESS)
}
