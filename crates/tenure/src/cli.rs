//! The command line: every command, flag and its help text. `main` dispatches on it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "tenure",
    version,
    about = "Identity lifecycle engine: joiner, mover, leaver as one governed, provable lifecycle"
)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, env = "TENURE_CONFIG", default_value = "tenure.toml")]
    pub config: PathBuf,
    /// Output format for commands that print data: text or json (audit export: jsonl or csv).
    #[arg(long, global = true)]
    pub format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working starter config, policy and sample HR file.
    Init {
        /// Where to write them (default: the current directory).
        dir: Option<PathBuf>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Validate the config and the policy.
    Check {
        /// Also connect to every target and check that the entitlements the policy grants exist.
        #[arg(long)]
        online: bool,
    },
    /// Diff an HR snapshot against the last one and plan the resulting operations.
    Import {
        /// The source name from the config.
        #[arg(long)]
        source: String,
        /// The CSV file.
        file: PathBuf,
        /// Show what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who imports, recorded as the actor (`user:NAME`; default: the source). Nobody who
        /// submitted a held batch may approve it.
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
    /// Show pending operations with their reasons.
    Plan {
        #[arg(long)]
        identity: Option<String>,
        /// Include operations in every state, not only pending ones.
        #[arg(long)]
        all: bool,
    },
    /// Show what another policy would do to the whole population. Changes nothing.
    Simulate {
        #[arg(long)]
        policy: PathBuf,
    },
    /// Why one identity should hold what it holds: the roles that match and the attribute
    /// values that made them match, the roles that do not and the condition that failed, SoD,
    /// and per target what applying would change. Changes nothing.
    Explain {
        id: String,
        /// Only this target's entitlements and changes.
        #[arg(long)]
        target: Option<String>,
        /// Also read each account from the live target (only reads) and compare it with the
        /// desired access.
        #[arg(long)]
        live: bool,
    },
    /// Identities.
    #[command(subcommand)]
    Identity(IdentityCmd),
    /// Lifecycle cases and their progress.
    Cases {
        #[arg(long)]
        open: bool,
        /// Revocation coverage of leaver cases per target class (scim, api, manual), with
        /// time-to-revoke.
        #[arg(long)]
        coverage: bool,
    },
    /// Pending approvals, including held batches.
    Approvals {
        /// Include decided approvals.
        #[arg(long)]
        all: bool,
    },
    /// Approve a pending approval (a held batch is then applied).
    Approve {
        id: i64,
        #[command(flatten)]
        who: Who,
    },
    /// Reject a pending approval (a held batch is discarded).
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Execute pending operations against the targets, verifying each by reading it back.
    Apply {
        /// Return only when every operation is verified, failed or held (retries included).
        #[arg(long)]
        wait: bool,
        /// First queue every failed operation again with a fresh retry budget (audited), e.g.
        /// after a target outage longer than the retries.
        #[arg(long)]
        retry_failed: bool,
        /// Who asks for the retry (default: $TENURE_USER, then $USER).
        #[arg(long = "as", value_name = "NAME", requires = "retry_failed")]
        who: Option<String>,
    },
    /// Read the targets and report orphan, drift, missing and SoD findings.
    Reconcile {
        #[arg(long)]
        target: Option<String>,
        /// Plan the fixes (through the same guard as imports).
        #[arg(long)]
        remediate: bool,
        /// Who runs it (recorded as the submitter of held fixes, who then cannot release them).
        #[command(flatten)]
        who: Who,
    },
    /// Tickets for manual targets.
    Tasks {
        /// Include finished tickets.
        #[arg(long)]
        all: bool,
        /// Print only the ticket ids, one per line (for scripts).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Finish a manual ticket.
    #[command(subcommand)]
    Task(TaskCmd),
    // ---- correlation (issue 9, point 5) ----
    /// Correlation cases: accounts found in a target before Tenure managed it that the rules
    /// could not decide (ambiguous, low confidence, claimed twice), with their candidates.
    Correlations {
        /// Only the cases nobody has decided yet.
        #[arg(long)]
        open: bool,
    },
    /// Decide a correlation case: the account is identity ID's (`--to ID`, which then plans that
    /// identity on the account), or nobody's for good (`--orphan --reason TEXT`).
    Correlate {
        case: i64,
        /// The identity id the account belongs to (any identity without an account in the
        /// target, a candidate or not).
        #[arg(long, value_name = "ID", required_unless_present = "orphan", conflicts_with = "orphan")]
        to: Option<String>,
        /// The account belongs to nobody Tenure knows: it stays an orphan finding, never linked.
        #[arg(long, requires = "reason")]
        orphan: bool,
        /// Why (required with `--orphan`); audited.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    // ---- end correlation ----
    /// The exceptions register: recorded deviations (overdue tickets, failed operations and
    /// revocations, partial removals, declined fixes, accepted SoD risks, manual overrides):
    /// control debt, with owner, due date and age.
    Exceptions {
        /// Include resolved and accepted ones.
        #[arg(long)]
        all: bool,
    },
    // -- issue 10 (nhi): the register's decisions and credential rotation --
    /// Resolve or accept an exception of the register, with a reason (audited).
    #[command(subcommand)]
    Exception(ExceptionCmd),
    /// Rotate a non-human identity's credential: plans `rotate_credential` for its accounts
    /// (or the one in `--target`); the executor sets a new random secret, writes it only to the
    /// configured `[nhi] secret_sink` and verifies it by logging in with it.
    Rotate {
        /// The identity's id.
        id: String,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    // -- end issue 10 (nhi) --
    /// The whole story on a fresh machine: real peers, a sample company, joiners, a mover and a
    /// leaver, each plan applied and verified, time-to-revoke, the audit chain verified; then, on
    /// a terminal, `tenure serve` on the demo's data until Ctrl-C (with an admin token printed).
    Demo {
        /// Keep the demo's files here (default: a temp dir, removed at the end; with `--keep`,
        /// `./tenure-demo`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Leave the peers running after the story, until Ctrl-C, so the demo's `tenure.toml`
        /// can be used from another terminal (the tour in the README does).
        #[arg(long)]
        keep: bool,
        /// People in the sample company.
        #[arg(long, default_value_t = 12)]
        people: usize,
        /// End after the story instead of leaving `tenure serve` running on its data (it is
        /// skipped anyway when stdin is not a terminal).
        #[arg(long)]
        no_serve: bool,
    },
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The schedules `tenure serve` runs (dates in HR data, the re-check, reconciliation,
    /// retention, overdue tickets, checkpoints), for deployments without the server.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Run the server: the REST API, webhooks, SCIM endpoint, metrics, workers and schedules,
    /// until Ctrl-C or SIGTERM.
    Serve {
        /// The address to listen on (default: `[server] listen` from the config).
        #[arg(long, env = "TENURE_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
    },
    /// API tokens for the server.
    #[command(subcommand)]
    Token(TokenCmd),
    // Certification campaigns (issue 10).
    /// Certification campaigns: periodic review of who holds what.
    #[command(subcommand)]
    Campaign(CampaignCmd),
    /// Decide a review item (`--keep` or `--revoke`, with `--reason`), or hand it to another
    /// reviewer (`--reassign TO --note TEXT`). Only the item's reviewer may.
    Review {
        item: i64,
        /// Keep the access.
        #[arg(long, conflicts_with_all = ["revoke", "reassign"])]
        keep: bool,
        /// Revoke the access: planned through the guard and verified like any revocation.
        #[arg(long, conflicts_with = "reassign")]
        revoke: bool,
        /// Why (required with --keep and --revoke).
        #[arg(long)]
        reason: Option<String>,
        /// Hand the item to this reviewer (an identity id or username).
        #[arg(long, value_name = "TO")]
        reassign: Option<String>,
        /// Why it is reassigned (required with --reassign).
        #[arg(long, requires = "reassign")]
        note: Option<String>,
        /// The reviewer (identity id or username; default: $TENURE_USER, then $USER).
        #[command(flatten)]
        who: Who,
    },
    /// Review items assigned to you (`--as`), undecided ones of open campaigns.
    Reviews {
        /// Every item, decided or not, of every reviewer.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        who: Who,
    },
    // Access requests (issue 10).
    /// Ask for a requestable role for an identity (`tenure request ROLE --for ID --reason TEXT
    /// [--duration D]`); its approvals appear in `tenure approvals`. `tenure request revoke ID`
    /// ends one early.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Request {
        #[command(subcommand)]
        cmd: Option<RequestCmd>,
        #[command(flatten)]
        ask: RequestArgs,
    },
    /// Access requests, newest first.
    Requests {
        /// Only the open ones: pending and granted.
        #[arg(long)]
        open: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CampaignCmd {
    /// Create a campaign: one review item per identity and entitlement in scope, each assigned
    /// to its reviewer.
    Create {
        /// The campaign's name (`Q4 directory access`).
        #[arg(long = "name", value_name = "NAME")]
        title: String,
        /// `target:NAME`, `role:ID`, `entitlement:TARGET:NAME` or `privileged`.
        #[arg(long)]
        scope: String,
        /// `manager` (the identity's manager from HR; if not active, the manager's manager) or
        /// `owner:NAME`.
        #[arg(long)]
        reviewer: String,
        /// When unreviewed items take `--on-timeout`: YYYY-MM-DD (the end of that day, UTC) or
        /// an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        due: String,
        /// Escalate unreviewed items to the reviewer's manager after this many days (or a
        /// duration: `3d`, `12h`).
        #[arg(long, value_name = "D")]
        escalate_after: Option<String>,
        /// What unreviewed items become at the due date: revoke, keep or escalate.
        #[arg(long, default_value = "keep", value_name = "revoke|keep|escalate")]
        on_timeout: String,
        #[command(flatten)]
        who: Who,
    },
    /// Every campaign with its progress.
    List,
    /// One campaign and its items.
    Show { id: i64 },
    /// Close a campaign (its revoke decisions are carried out first; unreviewed items keep
    /// their access).
    Close {
        id: i64,
        #[command(flatten)]
        who: Who,
    },
    /// Write the campaign's items as CSV (`--format csv`): campaign, item, identity,
    /// entitlement, why, reviewer, decision, justification, decided_at, applied_by, applied_at,
    /// outcome.
    Export { id: i64 },
}

/// `tenure request ROLE --for ID --reason TEXT [--duration D] [--as NAME]`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The requestable role.
    #[arg(value_name = "ROLE", required = true)]
    pub role: Option<String>,
    /// The identity id the role is for.
    #[arg(long = "for", value_name = "ID", required = true)]
    pub identity: Option<String>,
    /// Why the access is needed (audited).
    #[arg(long, required = true)]
    pub reason: Option<String>,
    /// How long (`2s`, `30m`, `8h`, `7d`); at most the role's `max_duration`, its default.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Who asks (default: $TENURE_USER, then $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub who: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RequestCmd {
    /// End a request early: a granted one's access is revoked (and verified), a pending one
    /// stops.
    Revoke {
        id: i64,
        /// Why (default: `revoked early by NAME`).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// A name for the token: who or what uses it (the actor in the audit trail).
        #[arg(long = "name", value_name = "NAME")]
        token: String,
        /// What it may do: admin, operator, approver, auditor or source.
        #[arg(long)]
        scope: String,
        /// For scope source: the one source whose webhook and SCIM endpoint it may use.
        #[arg(long)]
        source: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// List tokens (never their text).
    List {
        /// Include revoked tokens.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token by name: it stops working at once.
    Revoke {
        #[arg(value_name = "NAME")]
        token: String,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Run every job that is due now, then the executor (audited as `schedule:NAME`); run it
    /// from cron every few minutes. Refused while another process holds the scheduler lease.
    RunOnce {
        /// Run only this job, now, due or not: start_date, end_date, grant_expiry, campaigns,
        /// recheck, overdue, retention, credentials, reconcile, checkpoint, apply.
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct Who {
    /// Who decides (default: $TENURE_USER, then $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum IdentityCmd {
    /// Every identity with its status.
    List,
    /// One identity: attributes, accounts and grants per target, operations, timeline.
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Mark a ticket done, with evidence of what was done.
    Done {
        id: i64,
        #[arg(long)]
        evidence: String,
        #[command(flatten)]
        who: Who,
    },
}

/// `tenure exception resolve|accept`.
#[derive(Debug, Subcommand)]
pub enum ExceptionCmd {
    /// The deviation is gone: close the exception with why.
    Resolve {
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// The deviation stays, knowingly: accept it with why and, optionally, when to look again. A
    /// failed operation's exception makes the operation `excepted`, so its case can close.
    Accept {
        id: i64,
        #[arg(long)]
        reason: String,
        /// When to look at the accepted risk again: YYYY-MM-DD (end of that day, UTC) or RFC 3339.
        #[arg(long, value_name = "DATE")]
        due: Option<String>,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the whole chain and every signed checkpoint; name the first bad record.
    Verify {
        /// A head printed by an earlier `audit verify` (`SEQ:HASH`), kept outside the database:
        /// fails if that record is gone or differs (truncation or a rewritten chain).
        #[arg(long, value_name = "SEQ:HASH", conflicts_with = "bundle")]
        expect_head: Option<String>,
        /// Verify a JSONL export offline instead of the store. A full export must be complete
        /// (every gap in `seq` is reported); a filtered one is checked record by record.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["bundle", "public_key"])]
        export: Option<PathBuf>,
        /// Verify an evidence bundle offline (no store or config needed): signatures, digests,
        /// and every record against the signed heads.
        #[arg(long, value_name = "DIR", requires = "public_key")]
        bundle: Option<PathBuf>,
        /// The public key to check signatures with (for the store, default:
        /// `<signing_key_file>.pub`; pass the copy you were given to rule out a replaced key).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// Sign the chain's head with the audit signing key (`[audit] signing_key_file`, created
    /// 0600 on first use, its public key written beside it as `.pub`).
    Checkpoint {
        #[command(flatten)]
        who: Who,
    },
    /// Export records for auditors (`--format jsonl` or `csv`), or a signed evidence bundle.
    Export {
        #[arg(long, conflicts_with = "bundle")]
        identity: Option<String>,
        /// Records at or after this date (YYYY-MM-DD) or time (RFC 3339).
        #[arg(long, conflicts_with = "bundle")]
        since: Option<String>,
        /// Write an evidence bundle into DIR: `records.jsonl`, `checkpoints.jsonl` and a signed
        /// `manifest.json`, after signing a fresh checkpoint.
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        #[command(flatten)]
        who: Who,
    },
}
