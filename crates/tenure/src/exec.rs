//! `apply`, `reconcile`, `tasks`, `task done`, `exceptions`.

use crate::Cli;
use crate::context;
use crate::output::{Format, opt, print_json, table};
use crate::run::open;
use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use tenure_core::OpState;
use tenure_engine::executor::{self, Backend, ExecOptions, ExecReport, Progress};
use tenure_engine::reconcile::{self, ReconReport};
use tenure_store::{Queue, SqliteStore};

/// Sets up every target's connector and warns on stderr about each target that cannot be used:
/// its operations fail with that reason while the other targets go on. The reasons are the
/// connectors' errors, which never hold secrets.
pub async fn connectors(config: &tenure_core::config::Config) -> executor::Connectors {
    let conns = executor::connectors(config).await;
    for (target, why) in conns.unusable() {
        eprintln!("warning: target `{target}` cannot be used, its operations fail until this is fixed: {why}");
    }
    conns
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs the executor over the store at the config's location.
pub fn apply_with(
    config: Arc<tenure_core::config::Config>,
    store: Arc<SqliteStore>,
    wait: bool,
    quiet: bool,
) -> Result<ExecReport> {
    let rt = runtime()?;
    rt.block_on(async {
        let conns = Arc::new(connectors(&config).await);
        let pending = store.queue_counts()?.get(&OpState::Pending).copied().unwrap_or(0);
        let bar = (!quiet && std::io::stderr().is_terminal() && pending > 0).then(|| {
            let pb = ProgressBar::new(u64::try_from(pending).unwrap_or(0));
            pb.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} operations {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb
        });
        let progress = bar.clone().map(|pb| -> Arc<dyn Fn(Progress) + Send + Sync> {
            Arc::new(move |p: Progress| {
                if p.done > 0 {
                    pb.set_position(u64::try_from(p.done).unwrap_or(0));
                }
            })
        });
        let backend: Arc<dyn Backend> = store;
        let report =
            executor::run(config, backend, conns, ExecOptions { wait, progress, ..ExecOptions::default() }).await?;
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
        Ok(report)
    })
}

pub fn apply(cli: &Cli, wait: bool, retry_failed_by: Option<&str>, f: Format) -> Result<ExitCode> {
    let loaded = context::load_config(&cli.config)?;
    let store = Arc::new(loaded.open_store()?);
    let retried = match retry_failed_by {
        Some(by) => store.retry_failed(by)?,
        None => 0,
    };
    if retried > 0 && f == Format::Text {
        outln!("{retried} failed operation(s) queued again");
    }
    let report = apply_with(Arc::new(loaded.config.clone()), store.clone(), wait, false)?;
    let open_tickets = store.tickets(true)?.len();
    if f == Format::Json {
        print_json(&serde_json::json!({ "report": report, "open_tickets": open_tickets, "retried": retried }))?;
    } else {
        let counts: Vec<String> = report.remaining.iter().map(|(k, v)| format!("{k} {v}")).collect();
        outln!(
            "applied: {} verified, {} retries scheduled, {} failed, {} ticket(s) opened; operations now: {}",
            report.verified,
            report.retries,
            report.failed,
            report.tickets,
            counts.join(", ")
        );
        if open_tickets > 0 {
            outln!("{open_tickets} manual ticket(s) open: see `tenure tasks`");
        }
    }
    let pending = report.remaining.get(&OpState::Pending).copied().unwrap_or(0);
    let failed = report.remaining.get(&OpState::Failed).copied().unwrap_or(0);
    if failed > 0 && f == Format::Text {
        outln!(
            "{failed} operation(s) failed: see `tenure plan --all` and `tenure exceptions`; after fixing the cause, `tenure apply --retry-failed`"
        );
    }
    Ok(if failed > 0 || (wait && pending > 0) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn reconcile(cli: &Cli, target: Option<&str>, remediate: bool, f: Format) -> Result<ExitCode> {
    let loaded = context::load_config(&cli.config)?;
    let today = context::today()?;
    let policy = loaded.load_policy(today)?;
    if let Some(t) = target
        && loaded.config.target(t).is_none()
    {
        let names = reconcile::target_names(&loaded.config);
        return Err(tenure_engine::EngineError::UnknownTarget(t.to_string(), names).into());
    }
    let store = Arc::new(loaded.open_store()?);
    let rt = runtime()?;
    let pb = crate::run::spinner("reading targets");
    let report: ReconReport = rt.block_on(async {
        let conns = connectors(&loaded.config).await;
        let backend: Arc<dyn Backend> = store.clone();
        anyhow::Ok(reconcile::reconcile(&loaded.config, &policy, backend, &conns, target, remediate).await?)
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if f == Format::Json {
        print_json(&report)?;
    } else {
        let mut rows = Vec::new();
        for s in &report.skipped {
            outln!("{}: NOT reconciled: {}", s.target, s.reason);
        }
        for t in &report.targets {
            outln!(
                "{}: {} accounts, {} grants read in {} ms; {} finding(s)",
                t.target,
                t.accounts,
                t.grants,
                t.millis,
                t.findings.len()
            );
            for x in &t.findings {
                rows.push(vec![
                    x.kind.to_string(),
                    x.target.clone(),
                    opt(&x.account),
                    opt(&x.identity),
                    opt(&x.entitlement),
                    x.detail.clone(),
                ]);
            }
        }
        for x in &report.sod {
            rows.push(vec![
                x.kind.to_string(),
                x.target.clone(),
                opt(&x.account),
                opt(&x.identity),
                opt(&x.entitlement),
                x.detail.clone(),
            ]);
        }
        if !rows.is_empty() {
            table(&["FINDING", "TARGET", "ACCOUNT", "IDENTITY", "ENTITLEMENT", "DETAIL"], &rows);
        }
        if let Some(r) = &report.remediation {
            match (&r.held, r.approval_id) {
                (Some(reason), Some(id)) => {
                    outln!("remediation HELD ({reason}): {} operation(s) wait for `tenure approve {id}`", r.operations)
                }
                _ => outln!("remediation: {} operation(s) planned; run `tenure apply`", r.operations),
            }
        }
    }
    Ok(if report.finding_count() > 0 || !report.skipped.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn tasks(cli: &Cli, all: bool, quiet: bool, f: Format) -> Result<ExitCode> {
    let (_, store) = open(cli)?;
    store.flag_overdue()?;
    let list = store.tickets(!all)?;
    if quiet {
        for t in &list {
            outln!("{}", t.id);
        }
    } else if f == Format::Json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("no {}tickets", if all { "" } else { "open " });
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    t.target.clone(),
                    t.owner.clone(),
                    if t.overdue { "OVERDUE".into() } else { t.state.to_string() },
                    t.due_at.clone(),
                    t.summary.clone(),
                ]
            })
            .collect();
        table(&["TICKET", "TARGET", "OWNER", "STATE", "DUE", "WHAT"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn task_done(cli: &Cli, id: i64, evidence: &str, by: &str) -> Result<ExitCode> {
    let (_, store) = open(cli)?;
    if evidence.trim().is_empty() {
        return Err(crate::run::UsageError("--evidence must say what was done".into()).into());
    }
    let t = store.complete_ticket(id, by, evidence)?;
    outln!("ticket {id} done by {by}: {}", t.summary);
    Ok(ExitCode::SUCCESS)
}

pub fn exceptions(cli: &Cli, all: bool, f: Format) -> Result<ExitCode> {
    let (_, store) = open(cli)?;
    store.flag_overdue()?;
    let list = store.exceptions(!all)?;
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

/// Connects to every target and lists problems: unreachable targets and policy entitlements
/// that do not exist there.
pub fn check_online(config: &tenure_core::config::Config, policy: &tenure_policy::Policy) -> Result<Vec<String>> {
    let rt = runtime()?;
    rt.block_on(async {
        let conns = executor::connectors(config).await;
        let mut out: Vec<String> =
            conns.unusable().map(|(name, why)| format!("target `{name}` cannot be used: {why}")).collect();
        for (name, conn) in conns.iter() {
            match conn.list_entitlements().await {
                Err(e) => out.push(format!("target `{name}` is unreachable: {e}")),
                Ok(existing) => {
                    let existing: std::collections::HashSet<String> = existing.into_iter().collect();
                    let mut missing: Vec<String> = policy
                        .entitlements
                        .iter()
                        .filter(|e| e.target == name && !existing.contains(&e.name))
                        .map(ToString::to_string)
                        .collect();
                    missing.sort();
                    // Directory and SCIM groups are created on first grant; PostgreSQL roles are not.
                    let kind = config.target(name).map(|t| t.kind);
                    if kind == Some(tenure_core::TargetKind::Postgres) {
                        out.extend(
                            missing.into_iter().map(|e| format!("entitlement `{e}` does not exist in `{name}`")),
                        );
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    })
}
