//! Command dispatch.

use crate::context::{self, Invalid, Loaded};
use crate::output::{Format, opt, print_json, table};
use crate::{Cli, Command, IdentityCmd, Who};
use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;
use tenure_core::OpState;
use tenure_engine::Engine;
use tenure_engine::import::{self, ImportOptions};
use tenure_store::{AuditFilter, OpFilter, Store};

/// A usage error: exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The stable code of an error: the first error in the chain whose type knows its code.
/// Exit statuses (now) and HTTP statuses (in the server) both come from
/// `tenure_core::error::Code`, the one registry.
pub fn code_of(e: &anyhow::Error) -> tenure_core::error::Code {
    use tenure_core::error::{Code, HasCode};
    for c in e.chain() {
        if c.is::<UsageError>() {
            return Code::Usage;
        }
        if let Some(inv) = c.downcast_ref::<Invalid>() {
            return inv.1;
        }
        if let Some(e) = c.downcast_ref::<tenure_engine::EngineError>() {
            return e.code();
        }
        if let Some(e) = c.downcast_ref::<tenure_engine::evidence::EvidenceError>() {
            return e.code();
        }
        if let Some(e) = c.downcast_ref::<tenure_store::StoreError>() {
            return tenure_engine::store_code(e);
        }
        if let Some(e) = c.downcast_ref::<tenure_connect::ConnectorError>() {
            return e.code();
        }
        if let Some(e) = c.downcast_ref::<tenure_core::snapshot::SnapshotError>() {
            return e.code();
        }
    }
    Code::Internal
}

pub const TEXT_JSON: &[Format] = &[Format::Text, Format::Json];

/// Who acts: `--as`, else `$TENURE_USER`, else `$USER`. The name is recorded in approvals and
/// the audit trail, so hidden characters in it are escaped.
pub fn who(w: &Who) -> String {
    let name = w
        .name
        .clone()
        .or_else(|| std::env::var("TENURE_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    tenure_core::text::escape(&name).into_owned()
}

/// A spinner on a terminal; nothing when stderr is not one.
pub fn spinner(msg: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let fmt = cli.format.as_deref();
    match &cli.command {
        Command::Init { dir, force } => crate::init::init(dir.as_deref(), *force),
        Command::Check { online } => check(&cli, *online, Format::parse(fmt, TEXT_JSON, Format::Text)?),
        Command::Import { source, file, dry_run } => {
            let f = Format::parse(fmt, TEXT_JSON, Format::Text)?;
            let loaded = context::load_config(&cli.config)?;
            let today = context::today()?;
            let policy = loaded.load_policy(today)?;
            let store = loaded.open_store()?;
            let engine = Engine::new(&loaded.config, &policy, &store, today);
            let bytes = std::fs::read(file).with_context(|| format!("cannot read `{}`", file.display()))?;
            let pb = spinner(&format!("importing {}", file.display()));
            let report = import::import_csv(
                &engine,
                source,
                &file.display().to_string(),
                &bytes,
                &ImportOptions { dry_run: *dry_run, actor: None },
            )?;
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            print_import(&report, f)?;
            let needs_action = !report.rejected.is_empty() || report.outcome == tenure_core::ImportOutcome::Held;
            Ok(if needs_action { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Plan { identity, all } => {
            let f = Format::parse(fmt, TEXT_JSON, Format::Text)?;
            let (_, store) = open(&cli)?;
            let filter = OpFilter {
                identity: identity.clone(),
                states: if *all { Vec::new() } else { vec![OpState::Pending] },
                case_id: None,
            };
            let ops = store.operations(&filter)?;
            if f == Format::Json {
                print_json(&ops)?;
            } else if ops.is_empty() {
                outln!("no {}operations", if *all { "" } else { "pending " });
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
        Command::Simulate { policy } => {
            let f = Format::parse(fmt, TEXT_JSON, Format::Text)?;
            let loaded = context::load_config(&cli.config)?;
            let today = context::today()?;
            let candidate = loaded.load_policy_at(policy, today)?;
            let store = loaded.open_store()?;
            let engine = Engine::new(&loaded.config, &candidate, &store, today);
            let sim = import::simulate(&engine)?;
            if f == Format::Json {
                print_json(&sim)?;
            } else {
                let rows: Vec<Vec<String>> = sim
                    .changes
                    .iter()
                    .map(|c| {
                        vec![
                            c.identity.clone(),
                            c.target.clone(),
                            c.kind.to_string(),
                            opt(&c.entitlement),
                            c.rules.join(","),
                        ]
                    })
                    .collect();
                if !rows.is_empty() {
                    table(&["IDENTITY", "TARGET", "KIND", "ENTITLEMENT", "RULES"], &rows);
                }
                outln!(
                    "simulated {} identities under {}: {} affected, {} grants, {} revokes, {} accounts created (nothing was changed)",
                    sim.identities,
                    policy.display(),
                    sim.affected,
                    sim.grants,
                    sim.revokes,
                    sim.accounts_created
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Identity(cmd) => identity(&cli, cmd, Format::parse(fmt, TEXT_JSON, Format::Text)?),
        Command::Cases { coverage: true, .. } => coverage(&cli, Format::parse(fmt, TEXT_JSON, Format::Text)?),
        Command::Cases { open: only_open, coverage: false } => {
            let f = Format::parse(fmt, TEXT_JSON, Format::Text)?;
            let (_, store) = open(&cli)?;
            let cases = store.cases(*only_open)?;
            if f == Format::Json {
                print_json(&cases)?;
            } else {
                let rows: Vec<Vec<String>> = cases
                    .iter()
                    .map(|c| {
                        let total: i64 = c.ops.values().sum();
                        let done: i64 = c.ops.iter().filter(|(s, _)| s.is_settled()).map(|(_, n)| n).sum();
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
        Command::Approvals { all } => {
            let f = Format::parse(fmt, TEXT_JSON, Format::Text)?;
            let (_, store) = open(&cli)?;
            let list = store.approvals(!*all)?;
            if f == Format::Json {
                print_json(&list)?;
            } else if list.is_empty() {
                outln!("no pending approvals");
            } else {
                let esc = |s: &str| tenure_core::text::escape(s).into_owned();
                for a in &list {
                    let reason = esc(a.summary.get("reason").and_then(|r| r.as_str()).unwrap_or(""));
                    let file = esc(a.summary.get("file").and_then(|r| r.as_str()).unwrap_or(""));
                    outln!("approval {} [{}] {} batch from `{file}`: {reason}", a.id, a.state, a.kind);
                    if let Some(c) = a.summary.get("counts") {
                        outln!("  counts: {c}");
                    }
                    if let Some(by) = &a.decided_by {
                        outln!(
                            "  decided by {} at {}{}",
                            esc(by),
                            opt(&a.decided_at),
                            a.decision_reason.as_ref().map(|r| format!(": {}", esc(r))).unwrap_or_default()
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Approve { id, who: w } => {
            let loaded = context::load_config(&cli.config)?;
            let today = context::today()?;
            let policy = loaded.load_policy(today)?;
            let store = loaded.open_store()?;
            let engine = Engine::new(&loaded.config, &policy, &store, today);
            let approver = who(w);
            if store.approval(*id)?.kind == tenure_core::ApprovalKind::Remediation {
                let n = tenure_store::Queue::release_remediation(&store, *id, &approver)?;
                outln!(
                    "approval {id} approved by {approver}: {n} remediation operation(s) released; run `tenure apply`"
                );
                return Ok(ExitCode::SUCCESS);
            }
            let ids = import::approve(&engine, *id, &approver)?;
            outln!(
                "approval {id} approved by {approver}: {} events applied, {} operations planned, {} cases opened",
                ids.events,
                ids.operations,
                ids.cases
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Reject { id, reason, who: w } => {
            let (_, store) = open(&cli)?;
            let by = who(w);
            store.reject(*id, &by, reason)?;
            outln!("approval {id} rejected by {by}: the held batch is discarded");
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply { wait, retry_failed, who: w } => crate::exec::apply(
            &cli,
            *wait,
            retry_failed.then(|| who(&Who { name: w.clone() })).as_deref(),
            Format::parse(fmt, TEXT_JSON, Format::Text)?,
        ),
        Command::Reconcile { target, remediate } => {
            crate::exec::reconcile(&cli, target.as_deref(), *remediate, Format::parse(fmt, TEXT_JSON, Format::Text)?)
        }
        Command::Tasks { all, quiet } => {
            crate::exec::tasks(&cli, *all, *quiet, Format::parse(fmt, TEXT_JSON, Format::Text)?)
        }
        Command::Task(crate::TaskCmd::Done { id, evidence, who: w }) => {
            crate::exec::task_done(&cli, *id, evidence, &who(w))
        }
        Command::Exceptions { all } => {
            crate::exec::exceptions(&cli, *all, Format::parse(fmt, TEXT_JSON, Format::Text)?)
        }
        #[cfg(feature = "demo")]
        Command::Demo { dir, people, keep } => crate::demo::demo(dir.as_deref(), *people, *keep),
        #[cfg(not(feature = "demo"))]
        Command::Demo { .. } => Err(UsageError(
            "this build of tenure has no demo (it was built without the `demo` feature, which starts and installs real peers)".into(),
        )
        .into()),
        Command::Audit(cmd) => crate::audit::run(&cli, cmd, fmt),
    }
}

/// Leaver revocations per target class: how many are verified (or excepted), how many are still
/// open, and how long leaver cases took to close.
fn coverage(cli: &Cli, f: Format) -> Result<ExitCode> {
    let (loaded, store) = open(cli)?;
    let cases = store.cases(false)?;
    let leaver_cases: std::collections::HashSet<i64> =
        cases.iter().filter(|c| c.kind == tenure_core::EventKind::Leaver).map(|c| c.id).collect();
    let ops = store.operations(&OpFilter::default())?;
    let mut by_class: std::collections::BTreeMap<String, [i64; 4]> = std::collections::BTreeMap::new();
    // A cancelled operation was never needed: it is neither covered nor open.
    for o in ops.iter().filter(|o| leaver_cases.contains(&o.case_id) && o.state != OpState::Cancelled) {
        let class = loaded.config.target(&o.target).map_or("unknown".to_string(), |t| t.class.to_string());
        let row = by_class.entry(class).or_default();
        row[0] += 1;
        match o.state {
            OpState::Verified => row[1] += 1,
            OpState::Excepted => row[2] += 1,
            OpState::Failed => row[3] += 1,
            _ => {}
        }
    }
    let mut times: Vec<i64> = cases.iter().filter_map(|c| c.revoke_ms).collect();
    times.sort_unstable();
    let pct = |p: f64| -> Option<i64> {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times.get(i).copied()
    };
    let classes: Vec<serde_json::Value> = by_class
        .iter()
        .map(|(class, [total, verified, excepted, failed])| {
            serde_json::json!({
                "class": class, "operations": total, "verified": verified, "excepted": excepted, "failed": failed,
                "open": total - verified - excepted - failed,
                "coverage": if *total > 0 { (*verified + *excepted) as f64 / *total as f64 } else { 1.0 },
            })
        })
        .collect();
    let open_leavers = cases.iter().filter(|c| leaver_cases.contains(&c.id) && c.closed_at.is_none()).count();
    let summary = serde_json::json!({
        "leaver_cases": leaver_cases.len(),
        "open_leaver_cases": open_leavers,
        "classes": classes,
        "time_to_revoke_ms": { "closed": times.len(), "p50": pct(0.5), "p99": pct(0.99), "max": times.last() },
    });
    if f == Format::Json {
        print_json(&summary)?;
    } else {
        let rows: Vec<Vec<String>> = classes
            .iter()
            .map(|c| {
                vec![
                    c["class"].as_str().unwrap_or("").to_string(),
                    c["operations"].to_string(),
                    c["verified"].to_string(),
                    c["excepted"].to_string(),
                    c["failed"].to_string(),
                    c["open"].to_string(),
                    format!("{:.1}%", c["coverage"].as_f64().unwrap_or(0.0) * 100.0),
                ]
            })
            .collect();
        table(&["CLASS", "LEAVER OPS", "VERIFIED", "EXCEPTED", "FAILED", "OPEN", "COVERAGE"], &rows);
        let ms = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |m| format!("{m} ms"));
        outln!(
            "{} leaver case(s), {open_leavers} still open; time-to-revoke p50 {}, p99 {}, max {}",
            leaver_cases.len(),
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(times.last().copied())
        );
    }
    Ok(if open_leavers > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn open(cli: &Cli) -> Result<(Loaded, tenure_store::SqliteStore)> {
    let loaded = context::load_config(&cli.config)?;
    let store = loaded.open_store()?;
    Ok((loaded, store))
}

fn reason_text(r: &serde_json::Value) -> String {
    let mut s = String::new();
    if let Some(e) = r.get("event") {
        s.push_str(&format!("event {e}"));
    }
    if let Some(k) = r.get("kind").and_then(|k| k.as_str()) {
        s.push_str(&format!(" ({k})"));
    }
    if let Some(rules) = r.get("rules").and_then(|v| v.as_array()).filter(|v| !v.is_empty()) {
        let names: Vec<&str> = rules.iter().filter_map(|x| x.as_str()).collect();
        s.push_str(&format!("; rules {}", names.join(",")));
    }
    if let Some(f) = r.get("finding").and_then(|k| k.as_str()) {
        s.push_str(&format!("finding {f}"));
    }
    s
}

fn check(cli: &Cli, online: bool, f: Format) -> Result<ExitCode> {
    let mut problems = Vec::new();
    let mut summary = None;
    let mut remote: Vec<String> = Vec::new();
    let mut unchecked: Vec<String> = Vec::new();
    match context::load_config(&cli.config) {
        Err(e) => match e.downcast::<Invalid>() {
            Ok(inv) => problems.extend(inv.0),
            Err(e) => return Err(e),
        },
        Ok(loaded) => {
            let today = context::today()?;
            match loaded.load_policy(today) {
                Ok(p) => {
                    if online {
                        remote = crate::exec::check_online(&loaded.config, &p)?;
                    } else {
                        // Targets without a declared `entitlements` list accept any well-formed
                        // name at load; only the live target can say whether it exists.
                        unchecked = loaded
                            .config
                            .targets
                            .iter()
                            .filter(|t| t.entitlements.is_none() && p.entitlements.iter().any(|e| e.target == t.name))
                            .map(|t| t.name.clone())
                            .collect();
                    }
                    summary = Some(serde_json::json!({
                        "sources": loaded.config.sources.len(),
                        "targets": loaded.config.targets.len(),
                        "roles": p.roles.len(),
                        "entitlements": p.entitlements.len(),
                        "sod_rules": p.sod.len(),
                    }))
                }
                Err(e) => match e.downcast::<Invalid>() {
                    Ok(inv) => problems.extend(inv.0),
                    Err(e) => return Err(e),
                },
            }
        }
    }
    let ok = problems.is_empty() && remote.is_empty();
    if f == Format::Json {
        print_json(&serde_json::json!({
            "ok": ok, "problems": problems, "online": remote, "summary": summary, "unchecked_targets": unchecked,
        }))?;
    } else if ok {
        let s = summary.unwrap_or_default();
        outln!(
            "ok: {} source(s), {} target(s), {} role(s), {} entitlement(s), {} SoD rule(s)",
            s["sources"],
            s["targets"],
            s["roles"],
            s["entitlements"],
            s["sod_rules"]
        );
        if !unchecked.is_empty() {
            let names: Vec<String> = unchecked.iter().map(|t| format!("`{t}`")).collect();
            outln!(
                "not checked: the entitlements the policy grants in {} (no `entitlements = [...]` declared); \
                 `tenure check --online` asks the live targets, or declare the list on each target",
                names.join(", ")
            );
        }
    } else {
        for p in &problems {
            outln!("{p}");
        }
        for r in &remote {
            outln!("online: {r}");
        }
        outln!("{} problem(s)", problems.len() + remote.len());
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_import(r: &import::ImportReport, f: Format) -> Result<()> {
    if f == Format::Json {
        return print_json(r);
    }
    let esc = |s: &str| tenure_core::text::escape(s).into_owned();
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

fn identity(cli: &Cli, cmd: &IdentityCmd, f: Format) -> Result<ExitCode> {
    let (loaded, store) = open(cli)?;
    let schema = &loaded.config.schema;
    match cmd {
        IdentityCmd::List => {
            let list = store.identities(schema, None)?;
            if f == Format::Json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|i| serde_json::json!({"id": &*i.id, "kind": i.kind, "status": i.status, "attributes": i.attrs.to_json(schema)}))
                    .collect();
                print_json(&v)?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|i| {
                        let a = |n: &str| i.attr(schema, n).unwrap_or("-").to_string();
                        vec![
                            i.id.to_string(),
                            i.kind.to_string(),
                            i.status.to_string(),
                            a("username"),
                            a("department"),
                            a("title"),
                        ]
                    })
                    .collect();
                table(&["ID", "KIND", "STATUS", "USERNAME", "DEPARTMENT", "TITLE"], &rows);
                outln!("{} identities", list.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        IdentityCmd::Show { id } => {
            let Some(i) = store.identity(schema, id)? else {
                eprintln!("error: no identity `{id}`");
                return Ok(ExitCode::from(1));
            };
            let holdings = store.holdings(id)?;
            let ops = store.operations(&OpFilter { identity: Some(id.clone()), ..OpFilter::default() })?;
            let events = store.events(id)?;
            let mut timeline = Vec::new();
            store.scan_audit(&AuditFilter { identity: Some(id.clone()), since: None }, &mut |r| {
                timeline.push(r);
                true
            })?;
            // What the targets were last read back to hold (verified operations, in order),
            // beside what Tenure has planned (the committed holdings, pending work included).
            // In the order they were verified (read back), not the order they were planned.
            let mut read_back: Vec<&tenure_store::OpRecord> =
                ops.iter().filter(|o| o.state == OpState::Verified).collect();
            read_back.sort_by(|a, b| (a.verified_at.as_deref(), a.id).cmp(&(b.verified_at.as_deref(), b.id)));
            let verified = tenure_core::plan::apply_ops(
                &tenure_core::plan::Holdings::new(),
                read_back.iter().map(|o| (o.target.as_str(), o.kind, o.entitlement.as_deref())),
            );
            let mut open_ops: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
            for o in ops.iter().filter(|o| !o.state.is_settled()) {
                *open_ops.entry(o.target.as_str()).or_default() += 1;
            }
            let targets: std::collections::BTreeSet<&str> =
                holdings.keys().chain(verified.keys()).map(String::as_str).chain(open_ops.keys().copied()).collect();
            let view = |a: Option<&tenure_core::plan::AccountView>| match a {
                None => serde_json::json!({"exists": false, "enabled": false, "grants": []}),
                Some(a) => {
                    serde_json::json!({"exists": a.exists, "enabled": a.exists && a.enabled, "grants": a.grants})
                }
            };
            if f == Format::Json {
                let accounts: serde_json::Map<String, serde_json::Value> = targets
                    .iter()
                    .map(|t| {
                        let planned = holdings.get(*t);
                        (
                            t.to_string(),
                            serde_json::json!({
                                "planned": view(planned),
                                "verified": view(verified.get(*t)),
                                "open_operations": open_ops.get(t).copied().unwrap_or(0),
                            }),
                        )
                    })
                    .collect();
                print_json(&serde_json::json!({
                    "id": &*i.id, "kind": i.kind, "status": i.status, "attributes": i.attrs.to_json(schema),
                    "accounts": accounts, "operations": ops, "events": events, "timeline": timeline,
                }))?;
            } else {
                let esc = |s: &str| tenure_core::text::escape(s).into_owned();
                outln!("{} ({}, {})", esc(&i.id), i.kind, i.status);
                if let Some(obj) = i.attrs.to_json(schema).as_object() {
                    for (k, v) in obj {
                        outln!("  {k:<16} {}", esc(v.as_str().unwrap_or("")));
                    }
                }
                outln!("accounts (verified: read back from the target; planned: what Tenure has committed to):");
                if targets.is_empty() {
                    outln!("  (none)");
                } else {
                    let show = |a: Option<&tenure_core::plan::AccountView>| match a {
                        Some(a) if a.exists => {
                            let grants: Vec<&str> = a.grants.iter().map(String::as_str).collect();
                            let state = if a.enabled { "enabled" } else { "disabled" };
                            if grants.is_empty() {
                                state.to_string()
                            } else {
                                format!("{state}: {}", grants.join(", "))
                            }
                        }
                        _ => "no account".to_string(),
                    };
                    let rows: Vec<Vec<String>> = targets
                        .iter()
                        .map(|t| {
                            let open = open_ops.get(t).copied().unwrap_or(0);
                            vec![
                                format!("  {t}"),
                                show(verified.get(*t)),
                                show(holdings.get(*t)),
                                if open == 0 { "-".into() } else { format!("{open} open") },
                            ]
                        })
                        .collect();
                    table(&["  TARGET", "VERIFIED", "PLANNED", "OPERATIONS"], &rows);
                }
                outln!("operations:");
                for o in &ops {
                    outln!(
                        "  #{:<5} {:<10} {:<16} {:<20} {}",
                        o.id,
                        o.target,
                        o.kind.as_str(),
                        opt(&o.entitlement),
                        o.state
                    );
                }
                outln!("timeline:");
                for r in &timeline {
                    outln!(
                        "  {} #{} {} {}{}{} [{}] {}",
                        r.at,
                        r.seq,
                        esc(&r.entry.actor),
                        r.entry.action,
                        r.entry.target.as_ref().map(|t| format!(" {t}")).unwrap_or_default(),
                        r.entry.entitlement.as_ref().map(|t| format!(":{}", esc(t))).unwrap_or_default(),
                        r.entry.outcome,
                        esc(r.entry.reason.as_deref().unwrap_or_default())
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
