//! What every command shares: opening the state once, the usage error and the mapping of any
//! error to its stable code, who acts, the async runtime, the connectors, the spinner.

use crate::cli::Who;
use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tenure_core::error::{Code, HasCode};
use tenure_engine::app::{App, AppError};
use tenure_engine::apply::{self, ApplyOptions, ApplyProgress};
use tenure_engine::executor::{self, Connectors};
use tenure_proto::ApplyReport;

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
pub fn code_of(e: &anyhow::Error) -> Code {
    for c in e.chain() {
        if c.is::<UsageError>() {
            return Code::Usage;
        }
        if let Some(e) = c.downcast_ref::<AppError>() {
            return e.code();
        }
        if let Some(e) = c.downcast_ref::<tenure_engine::EngineError>() {
            return e.code();
        }
        if let Some(e) = c.downcast_ref::<tenure_engine::evidence::EvidenceError>() {
            return e.code();
        }
        if let Some(e) = c.downcast_ref::<tenure_store::StoreError>() {
            return e.code();
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

/// What a command needs opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Config, policy and store; the policy is checked before the store is opened.
    Policy,
    /// Config and store: the command never evaluates the policy, so it works while
    /// `policy.toml` is being fixed.
    Store,
    /// Config and the store for reading only: no file created, no migration run, and a copy
    /// owned by someone else works (`audit verify`, `audit export`).
    ReadOnly,
}

/// The application state for one command, on the clock `TENURE_NOW` / `TENURE_TODAY` describe.
pub fn open(config: &Path, needs: Needs) -> Result<App> {
    let clock = clock()?;
    Ok(match needs {
        Needs::Policy => App::open(config, false, clock)?,
        Needs::Store => App::open_without_policy(config, false, clock)?,
        Needs::ReadOnly => App::open_without_policy(config, true, clock)?,
    })
}

/// The clock from the environment (a malformed `TENURE_NOW` or `TENURE_TODAY` is a usage error).
pub fn clock() -> Result<Arc<dyn tenure_core::clock::Clock>> {
    Ok(tenure_engine::clock::from_env().map_err(AppError::from)?)
}

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

/// Who decides or asks, and how the CLI knows: `--as NAME` (recorded as `via: cli --as`), else
/// `$TENURE_USER`, then `$USER` (`via: cli`).
pub fn decider(name: Option<&String>) -> tenure_engine::decisions::Decider {
    use tenure_engine::decisions::{Decider, Via};
    let via = if name.is_some() { Via::CliAs } else { Via::Cli };
    Decider::new(who(&Who { name: name.cloned() }), via)
}

/// The async runtime for commands that talk to targets.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Sets up every target's connector and warns on stderr about each target that cannot be used:
/// its operations fail with that reason while the other targets go on. The reasons are the
/// connectors' errors, which never hold secrets.
pub async fn connectors(config: &tenure_core::config::Config) -> Connectors {
    let conns = executor::connectors(config).await;
    for (target, why) in conns.unusable() {
        eprintln!("warning: target `{target}` cannot be used, its operations fail until this is fixed: {why}");
    }
    conns
}

/// What the import reads for correlation: the accounts of every target not correlated yet
/// (none when every target is), with the targets that could not be read. A target that cannot
/// be read is reported in the import's summary and correlated by a later import.
pub fn correlation_inventory(app: &App) -> Result<Option<tenure_engine::import::Correlate>> {
    let pending = tenure_engine::correlation::pending_targets(app.config(), app.store().as_ref())?;
    if pending.is_empty() {
        return Ok(None);
    }
    let pb = spinner("reading existing accounts for correlation");
    let (inventory, unread) = runtime()?.block_on(async {
        let conns = executor::connectors(app.config()).await;
        tenure_engine::correlation::read_inventory(&conns, &pending).await
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(Some(tenure_engine::import::Correlate { inventory, unread }))
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

/// A progress bar over `total` operations on a terminal; nothing when stderr is not one.
pub fn bar(total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || total == 0 {
        return None;
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} operations {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(pb)
}

/// Runs `tenure_engine::apply` with every target's connector (warning about unusable ones),
/// and with a progress bar on a terminal when `show_progress` (the demo shows none).
pub fn apply(app: &App, wait: bool, retry_failed_by: Option<String>, show_progress: bool) -> Result<ApplyReport> {
    let cell: Arc<OnceLock<Option<ProgressBar>>> = Arc::new(OnceLock::new());
    let progress = show_progress.then(|| {
        let cell = cell.clone();
        Arc::new(move |p: ApplyProgress| {
            let bar = cell.get_or_init(|| bar(u64::try_from(p.pending).unwrap_or(0)));
            if let Some(pb) = bar
                && p.done > 0
            {
                pb.set_position(u64::try_from(p.done).unwrap_or(0));
            }
        }) as Arc<dyn Fn(ApplyProgress) + Send + Sync>
    });
    let report = runtime()?.block_on(async {
        let conns = Arc::new(connectors(app.config()).await);
        apply::apply(app, conns, ApplyOptions { wait, retry_failed_by, progress }).await
    })?;
    if let Some(Some(pb)) = cell.get() {
        pb.finish_and_clear();
    }
    Ok(report)
}
