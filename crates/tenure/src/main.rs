//! `tenure`: the command-line interface. `cli` defines the commands; `main` checks the output
//! format, opens the state each command needs once, and hands it to the command's module under
//! `commands/`, which calls the library and prints. The work, and every report, happens in the
//! library crates (see ARCHITECTURE.md, "the binary").

#[macro_use]
mod output;
mod cli;
mod commands;
mod support;

/// mimalloc instead of the system allocator: the day-one import allocates and frees millions of
/// small strings on two threads, where glibc's allocator spent a sixth of the run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::Parser;
use cli::{AuditCmd, Cli, Command, ExceptionCmd, IdentityCmd, TaskCmd, TokenCmd, Who};
use commands as cmd;
use output::{Format, TEXT_JSON};
use std::process::ExitCode;
use support::{Needs, open, who};
use tenure_store::AuditFilter;
use tenure_store::Closing;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.format.as_deref() == Some("json");
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            let code = support::code_of(&e);
            let message = tenure_core::text::escape(&format!("{e:#}")).into_owned();
            if json {
                // Scripts reading `--format json` get the same error body the API returns.
                let body = tenure_proto::ErrorBody::new(code, message);
                println!("{}", serde_json::to_string(&body).unwrap_or_default());
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(code.exit_status())
        }
    }
}

/// Dispatch: the format first (a usage error before anything is opened), then the state the
/// command needs, then the command.
fn run(cli: &Cli) -> Result<ExitCode> {
    let text_json = || Format::parse(cli.format.as_deref(), TEXT_JSON, Format::Text);
    let config = cli.config.as_path();
    match &cli.command {
        Command::Init { dir, force } => cmd::init::run(dir.as_deref(), *force),
        Command::Check { online } => cmd::check::run(config, *online, text_json()?),
        Command::Import { source, file, dry_run, who } => {
            let f = text_json()?;
            let actor = who.as_ref().map(|_| support::decider(who.as_ref()).actor());
            cmd::import::run(&open(config, Needs::Policy)?, source, file, *dry_run, actor, f)
        }
        Command::Plan { identity, all } => {
            let f = text_json()?;
            cmd::plan::run(&open(config, Needs::Store)?, identity.as_deref(), *all, f)
        }
        Command::Simulate { policy } => cmd::simulate::run(config, policy, text_json()?),
        Command::Explain { id, target, live } => {
            let f = text_json()?;
            cmd::explain::run(&open(config, Needs::Policy)?, id, target.as_deref(), *live, f)
        }
        Command::Identity(IdentityCmd::List) => {
            let f = text_json()?;
            cmd::identity::list(&open(config, Needs::Store)?, f)
        }
        Command::Identity(IdentityCmd::Show { id }) => {
            let f = text_json()?;
            cmd::identity::show(&open(config, Needs::Store)?, id, f)
        }
        Command::Cases { coverage: true, .. } => {
            let f = text_json()?;
            cmd::cases::coverage(&open(config, Needs::Store)?, f)
        }
        Command::Cases { open: open_only, coverage: false } => {
            let f = text_json()?;
            cmd::cases::list(&open(config, Needs::Store)?, *open_only, f)
        }
        Command::Approvals { all } => {
            let f = text_json()?;
            cmd::approvals::list(&open(config, Needs::Store)?, *all, f)
        }
        Command::Approve { id, who: w } => {
            cmd::approvals::approve(&open(config, Needs::Policy)?, *id, &support::decider(w.name.as_ref()))
        }
        Command::Reject { id, reason, who: w } => {
            cmd::approvals::reject(&open(config, Needs::Store)?, *id, &support::decider(w.name.as_ref()), reason)
        }
        Command::Apply { wait, retry_failed, who: w } => {
            let by = retry_failed.then(|| who(&Who { name: w.clone() }));
            let f = text_json()?;
            cmd::apply::run(&open(config, Needs::Store)?, *wait, by, f)
        }
        Command::Reconcile { target, remediate, who: w } => {
            let f = text_json()?;
            let by = who(w);
            cmd::reconcile::run(&open(config, Needs::Policy)?, target.as_deref(), *remediate, &by, f)
        }
        Command::Tasks { all, quiet } => {
            let f = text_json()?;
            cmd::tasks::list(&open(config, Needs::Store)?, *all, *quiet, f)
        }
        Command::Task(TaskCmd::Done { id, evidence, who: w }) => {
            cmd::tasks::done(&open(config, Needs::Store)?, *id, evidence, &who(w))
        }
        Command::Correlations { open: open_only } => {
            let f = text_json()?;
            cmd::correlations::list(&open(config, Needs::Store)?, *open_only, f)
        }
        Command::Correlate { case, to, orphan: _, reason, who: w } => {
            let f = text_json()?;
            cmd::correlations::decide(&open(config, Needs::Policy)?, *case, to.as_deref(), reason.as_deref(), &support::decider(w.name.as_ref()), f)
        }
        Command::Exceptions { all } => {
            let f = text_json()?;
            cmd::exceptions::list(&open(config, Needs::Store)?, *all, f)
        }
        // -- issue 10 (nhi) --
        Command::Exception(c) => {
            let f = text_json()?;
            let (id, closing, reason, due, w) = match c {
                ExceptionCmd::Resolve { id, reason, who } => (*id, Closing::Resolve, reason, None, who),
                ExceptionCmd::Accept { id, reason, due, who } => (*id, Closing::Accept, reason, due.as_deref(), who),
            };
            cmd::exceptions::close(&open(config, Needs::Store)?, id, closing, reason, due, &who(w), f)
        }
        Command::Rotate { id, target, who: w } => {
            let f = text_json()?;
            cmd::rotate::run(&open(config, Needs::Store)?, id, target.as_deref(), &who(w), f)
        }
        // -- end issue 10 (nhi) --
        #[cfg(feature = "demo")]
        Command::Demo { dir, people, keep, no_serve } => cmd::demo::run(dir.as_deref(), *people, *keep, *no_serve),
        #[cfg(not(feature = "demo"))]
        Command::Demo { .. } => Err(support::UsageError(
            "this build of tenure has no demo (it was built without the `demo` feature, which starts and installs real peers)".into(),
        )
        .into()),
        Command::Audit(a) => audit(cli, a),
        Command::Schedule(cli::ScheduleCmd::RunOnce { job }) => {
            let f = text_json()?;
            cmd::schedule::run_once(&open(config, Needs::Store)?, job.as_deref(), f)
        }
        Command::Serve { listen } => cmd::serve::run(&open(config, Needs::Policy)?, listen.as_deref()),
        Command::Token(t) => token(cli, t),
        // Access requests (issue 10).
        Command::Request { cmd: Some(cli::RequestCmd::Revoke { id, reason, who: w }), .. } => {
            let f = text_json()?;
            cmd::requests::revoke(&open(config, Needs::Policy)?, *id, &support::decider(w.name.as_ref()), reason.as_deref(), f)
        }
        Command::Request { cmd: None, ask } => {
            let f = text_json()?;
            let a = tenure_engine::requests::Ask {
                role: ask.role.as_deref().unwrap_or_default(),
                identity: ask.identity.as_deref().unwrap_or_default(),
                reason: ask.reason.as_deref().unwrap_or_default(),
                duration: ask.duration.as_deref(),
            };
            cmd::requests::create(&open(config, Needs::Policy)?, &a, &support::decider(ask.who.as_ref()), f)
        }
        Command::Requests { open: open_only } => {
            let f = text_json()?;
            cmd::requests::list(&open(config, Needs::Store)?, *open_only, f)
        }
        Command::Campaign(c) => campaign(cli, c),
        Command::Review { item, keep, revoke, reason, reassign, note, who: w } => {
            let f = text_json()?;
            let ask = cmd::campaigns::Review {
                keep: *keep,
                revoke: *revoke,
                reason: reason.as_deref(),
                reassign: reassign.as_deref(),
                note: note.as_deref(),
            };
            cmd::campaigns::review(&open(config, Needs::Store)?, *item, &ask, &who(w), f)
        }
        Command::Reviews { all, who: w } => {
            let f = text_json()?;
            cmd::campaigns::reviews(&open(config, Needs::Store)?, *all, &who(w), f)
        }
    }
}

fn campaign(cli: &Cli, c: &cli::CampaignCmd) -> Result<ExitCode> {
    use cli::CampaignCmd;
    let config = cli.config.as_path();
    if let CampaignCmd::Export { id } = c {
        Format::parse(cli.format.as_deref(), &[Format::Csv], Format::Csv)?;
        return cmd::campaigns::export(&open(config, Needs::Store)?, *id);
    }
    let f = Format::parse(cli.format.as_deref(), TEXT_JSON, Format::Text)?;
    match c {
        CampaignCmd::Create { title, scope, reviewer, due, escalate_after, on_timeout, who: w } => {
            let on_timeout =
                on_timeout.parse().map_err(|e: String| support::UsageError(format!("--on-timeout: {e}")))?;
            let by = who(w);
            let o = tenure_engine::campaigns::CreateOptions {
                name: title.clone(),
                scope: scope.clone(),
                reviewer: reviewer.clone(),
                due: due.clone(),
                escalate_after: escalate_after.clone(),
                on_timeout,
                actor: format!("user:{by}"),
                by,
            };
            cmd::campaigns::create(&open(config, Needs::Policy)?, &o, f)
        }
        CampaignCmd::List => cmd::campaigns::list(&open(config, Needs::Store)?, f),
        CampaignCmd::Show { id } => cmd::campaigns::show(&open(config, Needs::Store)?, *id, f),
        CampaignCmd::Close { id, who: w } => cmd::campaigns::close(&open(config, Needs::Store)?, *id, &who(w), f),
        CampaignCmd::Export { .. } => Ok(ExitCode::SUCCESS),
    }
}

fn token(cli: &Cli, t: &TokenCmd) -> Result<ExitCode> {
    let f = Format::parse(cli.format.as_deref(), TEXT_JSON, Format::Text)?;
    let app = open(cli.config.as_path(), Needs::Store)?;
    match t {
        TokenCmd::Create { token, scope, source, who: w } => {
            cmd::token::create(&app, token, scope, source.as_deref(), &who(w), f)
        }
        TokenCmd::List { all } => cmd::token::list(&app, *all, f),
        TokenCmd::Revoke { token, who: w } => cmd::token::revoke(&app, token, &who(w), f),
    }
}

fn audit(cli: &Cli, a: &AuditCmd) -> Result<ExitCode> {
    let text_json = || Format::parse(cli.format.as_deref(), TEXT_JSON, Format::Text);
    let config = cli.config.as_path();
    match a {
        // Offline verification needs no config or store.
        AuditCmd::Verify { bundle: Some(dir), public_key, .. } => {
            cmd::audit::verify_bundle(dir, public_key.as_deref(), text_json()?)
        }
        AuditCmd::Verify { export: Some(file), expect_head, .. } => {
            let head = expect_head.as_deref().map(cmd::audit::parse_head).transpose()?;
            cmd::audit::verify_export(file, head, text_json()?)
        }
        AuditCmd::Verify { expect_head, public_key, .. } => {
            let head = expect_head.as_deref().map(cmd::audit::parse_head).transpose()?;
            let f = text_json()?;
            cmd::audit::verify_store(&open(config, Needs::ReadOnly)?, head, public_key.as_deref(), f)
        }
        AuditCmd::Checkpoint { who: w } => {
            let f = text_json()?;
            cmd::audit::checkpoint(&open(config, Needs::Store)?, &who(w), f)
        }
        AuditCmd::Export { bundle: Some(dir), who: w, .. } => {
            let f = text_json()?;
            cmd::audit::export_bundle(&open(config, Needs::Store)?, dir, &who(w), f)
        }
        AuditCmd::Export { identity, since, .. } => {
            let f = Format::parse(cli.format.as_deref(), &[Format::Jsonl, Format::Csv, Format::Json], Format::Jsonl)?;
            let since = since.as_deref().map(cmd::audit::normalize_since).transpose()?;
            let filter = AuditFilter { identity: identity.clone(), since };
            cmd::audit::export(&open(config, Needs::ReadOnly)?, &filter, f)
        }
    }
}
