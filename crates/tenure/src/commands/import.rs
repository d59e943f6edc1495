//! `tenure import --source NAME FILE [--dry-run] [--as NAME]`: a snapshot diffed, planned and committed
//! (or held) by `tenure_engine::import`; this prints its report.

use crate::output::{Format, esc, print_json};
use crate::support::{self, spinner};
use anyhow::{Context as _, Result};
use std::path::Path;
use std::process::ExitCode;
use tenure_core::ImportOutcome;
use tenure_engine::app::App;
use tenure_engine::import::{self, ImportOptions, ImportReport};

pub fn run(app: &App, source: &str, file: &Path, dry_run: bool, actor: Option<String>, f: Format) -> Result<ExitCode> {
    // Read as it is parsed, never whole: a record over the record limit refuses the file with
    // its line before the rest is read.
    let input = std::fs::File::open(file).with_context(|| format!("cannot read `{}`", file.display()))?;
    let engine = app.engine()?;
    // The targets not correlated yet are read first (the first import against a directory that
    // already has accounts links what it can and leaves the rest to a person).
    let correlation = support::correlation_inventory(app)?;
    let pb = spinner(&format!("importing {}", file.display()));
    let report = import::import_reader(
        &engine,
        source,
        &file.display().to_string(),
        input,
        &ImportOptions { dry_run, actor, correlation },
    )?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    print(&report, f)?;
    let needs_action = report.counts.rejected > 0 || report.outcome == ImportOutcome::Held;
    Ok(if needs_action { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print(r: &ImportReport, f: Format) -> Result<()> {
    if f == Format::Json {
        return print_json(r);
    }
    for rej in &r.rejected {
        outln!(
            "{}:{}: rejected{}{}: {}",
            esc(&r.file),
            rej.line,
            rej.key.as_ref().map(|k| format!(" `{}`", esc(k))).unwrap_or_default(),
            rej.field.as_ref().map(|k| format!(" field `{}`", esc(k))).unwrap_or_default(),
            esc(&rej.reason)
        );
    }
    if r.rejected_more > 0 {
        outln!(
            "... and {} more rejected rows, counted but not listed (the first {} are)",
            r.rejected_more,
            r.rejected.len()
        );
    }
    const SHOWN: usize = 50;
    for e in r.events.iter().take(SHOWN) {
        let changes: Vec<String> = e
            .changes
            .iter()
            .map(|c| {
                let v = |v: Option<&str>| v.map_or_else(|| "∅".to_string(), tenure_core::text::quote);
                format!("{}: {} -> {}", c.attribute, v(c.from.as_deref()), v(c.to.as_deref()))
            })
            .collect();
        outln!(
            "{:<8} {}{}{}{}",
            e.kind.as_str(),
            e.identity,
            if e.significant { " [significant]" } else { "" },
            if changes.is_empty() { String::new() } else { format!(" ({})", changes.join(", ")) },
            if e.operations > 0 { format!(" -> {} op(s)", e.operations) } else { String::new() }
        );
    }
    for c in &r.correlation {
        let ids: Vec<String> = c.case_ids.iter().map(ToString::to_string).collect();
        if c.late {
            outln!(
                "{}: {} account(s) that matched nobody checked against the new identities: {} linked, {} correlation case(s){}",
                c.target,
                c.accounts,
                c.linked,
                c.cases,
                if ids.is_empty() { String::new() } else { format!(" ({})", ids.join(", ")) },
            );
            continue;
        }
        outln!(
            "{}: {} existing account(s) correlated: {} linked, {} correlation case(s){} for a person, {} matched nobody{}",
            c.target,
            c.accounts,
            c.linked,
            c.cases,
            if ids.is_empty() { String::new() } else { format!(" ({})", ids.join(", ")) },
            c.unmatched,
            if c.own > 0 { format!(", {} Tenure's own", c.own) } else { String::new() }
        );
    }
    for u in &r.correlation_unread {
        outln!("{}: existing accounts NOT correlated yet: {}", u.target, esc(&u.reason));
    }
    for h in r.held_back.iter().take(SHOWN) {
        outln!("held back {} on {}: {}", h.identity, h.target, esc(&h.why));
    }
    if r.held_back.len() > SHOWN {
        outln!("... and {} more held back (`--format json` lists them all)", r.held_back.len() - SHOWN);
    }
    if !r.held_back.is_empty() {
        outln!("nothing is planned for them there until `tenure correlations` are decided with `tenure correlate`");
    }
    if r.events.len() > SHOWN {
        outln!("... and {} more events (`--format json` lists them all)", r.events.len() - SHOWN);
    }
    let c = &r.counts;
    outln!(
        "{}{}: {} rows, {} accepted, {} rejected; {} joiners, {} movers ({} significant), {} leavers, {} rehires, {} suspended, {} resumed, {} updated; {} operations planned{}",
        if r.dry_run { "dry run of " } else { "" },
        esc(&r.file),
        c.rows,
        c.accepted,
        c.rejected,
        c.joiners,
        c.movers,
        c.significant_movers,
        c.leavers,
        c.rehires,
        c.suspends,
        c.resumes,
        c.updates,
        c.operations,
        if c.cancelled > 0 { format!(", {} queued operations cancelled", c.cancelled) } else { String::new() }
    );
    match (r.outcome.as_str(), r.dry_run) {
        ("held", false) => outln!(
            "HELD: {}. Nothing was applied. Review with `tenure approvals`, then `tenure approve {}` or `tenure reject {} --reason ...`",
            r.held_reason.as_deref().unwrap_or(""),
            r.approval_id.unwrap_or_default(),
            r.approval_id.unwrap_or_default()
        ),
        ("held", true) => outln!("would be HELD: {}", r.held_reason.as_deref().unwrap_or("")),
        ("unchanged", _) => outln!("no changes since the last snapshot"),
        (_, true) => outln!("dry run: nothing was changed"),
        _ => {}
    }
    Ok(())
}
