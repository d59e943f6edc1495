//! The executor: carries pending operations out against targets and verifies each one by
//! reading the target back.
//!
//! - Operations are claimed from the durable queue under a lease ([`ExecOptions::lease`]) that
//!   the run renews every third of it while the work is in flight. A crash leaves them
//!   `running` until the lease passes; then any executor's next claim takes them over and
//!   applies them again, which is harmless because connectors are idempotent. Liveness is the
//!   lease alone, so executors on several hosts can share one store.
//! - Every store call goes through [`crate::blocking::store`], so no runtime thread waits on
//!   the database.
//! - Each target has its own concurrency limit.
//! - A transient failure is retried with exponential backoff and jitter (honouring a server's
//!   `Retry-After` up to the cap) up to the target's `max_attempts`; a permanent failure fails
//!   at once.
//!   A failed operation becomes an exception and its case `stuck`.
//! - An operation is `verified` only when a read-back of the target shows its effect. If the
//!   read-back does not (yet) show it, that counts as a transient failure, never as success.
//! - A target with `delete_after_days` has the disabled accounts of leavers whose case closed
//!   longer ago than that deleted (planned and audited like any other operation).
//! - Manual targets get a ticket with an owner and a due time; the operation is `done` until a
//!   person completes the ticket with evidence.
//! - A target whose connector could not be set up (see [`Connectors`]) has its operations failed
//!   with that reason; the other targets' operations run as usual.
//! - A `rotate_credential` runs on its own (`rotate`): the secret is generated here, staged in
//!   the secret sink (`crate::sink`), set in the target, promoted in the sink and verified by
//!   logging in with it; the read-back of a password is a login. It reaches nothing else.

use crate::blocking;
use rand::Rng as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenure_connect::{AccountSpec, AccountState, Applied, Connector, ConnectorError, NewSecret, Request};
use tenure_core::audit::AuditEntry;
use tenure_core::clock::stamp;
use tenure_core::config::{Config, TargetSettings};
use tenure_core::rules::retention_due;
use tenure_core::{Identity, OpKind, OpState};
use tenure_store::{Finished, OpRecord, RetentionCandidate};
use tokio::sync::Semaphore;

/// The store as the executor needs it (defined by `tenure-store`, re-exported here).
pub use tenure_store::Backend;

/// What a run did: a wire type (`tenure-proto`), printed by `tenure apply`.
pub use tenure_proto::ExecReport;

#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub done: usize,
    pub claimed: usize,
}

pub struct ExecOptions {
    /// Keep going until nothing is pending (retries included), instead of stopping when nothing
    /// is runnable right now.
    pub wait: bool,
    /// First retry delay; doubled per attempt, capped at `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Upper bound for one connector call.
    pub call_timeout: Duration,
    /// How long a claim holds without renewal. The run renews its claims every third of it; a
    /// claim it stops renewing (the process died) is taken over once the lease has passed.
    pub lease: Duration,
    pub progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    /// The clock retry times are computed on: the store's (`run` sets it).
    pub clock: Option<Arc<dyn tenure_core::clock::Clock>>,
    /// Also sweep retention when the run starts and flag overdue tickets while it runs (what
    /// `tenure apply` does). The server's executor worker leaves both to the schedules, which
    /// run them on their own intervals as `schedule:retention` and `schedule:overdue`.
    pub housekeeping: bool,
    /// Set by a shutting-down server: claim nothing more, and return once the operations in
    /// flight are recorded.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl ExecOptions {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.as_ref().map_or_else(chrono::Utc::now, |c| c.now())
    }
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            wait: false,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            call_timeout: Duration::from_secs(30),
            lease: DEFAULT_LEASE,
            progress: None,
            clock: None,
            housekeeping: true,
            stop: None,
        }
    }
}

/// The default lease: short enough that work of a process that died is picked up within
/// seconds, long enough that a renewal delayed by a busy store does not lose a live claim.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// How often a running executor looks for overdue tickets.
const OVERDUE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The connectors of the configured targets by name, and why a target has none.
///
/// Building a connector touches no network (connections are made on first use), so what can
/// fail is the target's own setup: a secret that is not set or cannot be read, an invalid URL or
/// DN. Such a target is *unusable*: the executor fails its operations with that reason
/// (permanently, recorded like any failure) and every other target goes on; reconciliation
/// reports it and reads the others. Manual targets have no connector and are never unusable.
#[derive(Default, Clone)]
pub struct Connectors {
    usable: HashMap<String, Arc<dyn Connector>>,
    unusable: BTreeMap<String, ConnectorError>,
}

impl Connectors {
    pub fn insert(&mut self, target: impl Into<String>, connector: Arc<dyn Connector>) {
        let target = target.into();
        self.unusable.remove(&target);
        self.usable.insert(target, connector);
    }

    /// Records that `target` cannot be used, and why (the reason holds no secrets: connectors'
    /// errors never do).
    pub fn insert_unusable(&mut self, target: impl Into<String>, why: ConnectorError) {
        let target = target.into();
        self.usable.remove(&target);
        self.unusable.insert(target, why);
    }

    pub fn get(&self, target: &str) -> Option<&Arc<dyn Connector>> {
        self.usable.get(target)
    }

    pub fn contains_key(&self, target: &str) -> bool {
        self.usable.contains_key(target)
    }

    /// The usable connectors, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Connector>)> {
        self.usable.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The targets that could not be set up and why, by name.
    pub fn unusable(&self) -> impl Iterator<Item = (&str, &ConnectorError)> {
        self.unusable.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Why `target` cannot be used, if it cannot.
    pub fn why_unusable(&self, target: &str) -> Option<&ConnectorError> {
        self.unusable.get(target)
    }

    /// These connectors if every target is usable, else the first unusable target's error: for
    /// callers that cannot do their work with part of the targets (the demo, the benchmarks).
    pub fn require_all(self) -> Result<Self, ConnectorError> {
        match self.unusable.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(Self { usable: self.usable, unusable: BTreeMap::new() }),
        }
    }
}

/// Builds the connector of every non-manual target, one target at a time: a target that cannot
/// be set up is recorded as unusable and does not keep the others from being built.
pub async fn connectors(config: &Config) -> Connectors {
    let mut out = Connectors::default();
    for t in &config.targets {
        match tenure_connect::connect(t).await {
            Ok(Some(c)) => out.insert(t.name.clone(), Arc::from(c)),
            Ok(None) => {}
            Err(e) => out.insert_unusable(t.name.clone(), e),
        }
    }
    out
}

/// A new owner token for one executor run: host, process id and a random part. It only names
/// the claimant in the store and the audit trail; whether the claim is alive is the lease's
/// business, never the token's.
pub fn owner_token() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')).take(64).collect())
        .filter(|h: &String| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    let nonce: u64 = rand::rng().random();
    format!("{host}:{}:{nonce:016x}", std::process::id())
}

/// Operations this run has claimed and not yet recorded: the claims it renews.
#[derive(Default)]
struct InFlight(Mutex<HashSet<i64>>);

impl InFlight {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Renews the run's claims every third of the lease until aborted.
async fn renew_claims(store: Arc<dyn Backend>, owner: String, in_flight: Arc<InFlight>, lease: Duration) {
    let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let ids: Vec<i64> = in_flight.set().iter().copied().collect();
        if ids.is_empty() {
            continue;
        }
        let (owner, n) = (owner.clone(), ids.len());
        match blocking::store(&store, move |s| s.renew(&owner, &ids, lease)).await {
            // Fewer renewed than asked: some finished meanwhile, or another executor took them
            // over after our lease passed (their results will be dropped, and applied again).
            Ok(renewed) if renewed < n => tracing::debug!("{renewed} of {n} claim(s) renewed"),
            Ok(_) => {}
            Err(e) => tracing::warn!("renewing {n} claim(s): {e}"),
        }
    }
}

/// Plans the deletion of accounts past their target's retention period: the store lists the
/// candidates, `tenure_core::rules::retention_due` decides, the store writes, audited with
/// `actor`. Returns how many deletions were planned.
pub async fn sweep_retention(config: &Config, store: &Arc<dyn Backend>, actor: &str) -> crate::Result<usize> {
    let mut total = 0;
    for t in &config.targets {
        let Some(days) = t.delete_after_days else { continue };
        let cutoff = stamp(store.clock().now() - chrono::Duration::days(i64::from(days)));
        let (target, actor) = (t.name.clone(), actor.to_string());
        let n = blocking::store(store, move |s| {
            let candidates = s.retention_candidates(&target)?;
            let due: Vec<RetentionCandidate> = retention_due(&candidates, &cutoff).into_iter().cloned().collect();
            if due.is_empty() { Ok(0) } else { s.plan_retention(&target, &due, &cutoff, &actor) }
        })
        .await?;
        if n > 0 {
            tracing::info!("{}: {n} account(s) past retention planned for deletion", t.name);
        }
        total += n;
    }
    Ok(total)
}

/// Runs the executor until nothing is runnable (or, with `wait`, nothing is pending or in
/// flight anywhere: operations another executor holds are waited for, and taken over if their
/// lease passes).
pub async fn run(
    config: Arc<Config>,
    store: Arc<dyn Backend>,
    conns: Arc<Connectors>,
    mut opts: ExecOptions,
) -> crate::Result<ExecReport> {
    opts.clock.get_or_insert_with(|| store.clock());
    let owner = owner_token();
    if opts.housekeeping {
        sweep_retention(&config, &store, "retention").await?;
    }
    let limits: HashMap<String, Arc<Semaphore>> =
        config.targets.iter().map(|t| (t.name.clone(), Arc::new(Semaphore::new(t.concurrency.max(1))))).collect();
    let capacity: usize = config.targets.iter().map(|t| t.concurrency.max(1)).sum::<usize>().max(1);
    // Claiming is a write transaction. Claiming one operation each time one finished made the
    // store, not the targets, the bottleneck under load (P5), so up to `capacity` claimed
    // operations may wait for a permit behind those in flight, and a claim is made only when
    // there is room for at least `capacity`. At low load (a leaver's few operations) every
    // finished operation still lets the next one be claimed at once.
    let window = capacity.saturating_mul(2);
    let stats = Arc::new(Stats::default());
    let lease = opts.lease;
    let opts = Arc::new(opts);
    let in_flight = Arc::new(InFlight::default());
    let renewer = tokio::spawn(renew_claims(store.clone(), owner.clone(), in_flight.clone(), lease));
    let result =
        claim_and_execute(&config, &store, &conns, &opts, &stats, &owner, &in_flight, &limits, capacity, window).await;
    renewer.abort();
    result?;
    Ok(ExecReport {
        attempts: stats.done.load(Ordering::Relaxed),
        verified: stats.verified.load(Ordering::Relaxed),
        retries: stats.retries.load(Ordering::Relaxed),
        failed: stats.failed.load(Ordering::Relaxed),
        tickets: stats.tickets.load(Ordering::Relaxed),
        remaining: blocking::store(&store, |s| s.queue_counts()).await?,
        unusable: conns.unusable().map(|(t, e)| (t.to_string(), e.message.clone())).collect(),
        notes: conns
            .iter()
            .map(|(t, c)| (t.to_string(), c.take_notes()))
            .filter(|(_, notes)| !notes.is_empty())
            .collect(),
    })
}

/// The executor's loop: claim runs while there is room, hand each to a task, record outcomes.
#[expect(clippy::too_many_arguments, reason = "the loop's shared state, passed once from `run`")]
async fn claim_and_execute(
    config: &Arc<Config>,
    store: &Arc<dyn Backend>,
    conns: &Arc<Connectors>,
    opts: &Arc<ExecOptions>,
    stats: &Arc<Stats>,
    owner: &str,
    in_flight: &Arc<InFlight>,
    limits: &HashMap<String, Arc<Semaphore>>,
    capacity: usize,
    window: usize,
) -> crate::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut claimed = 0usize;
    let mut overdue_checked: Option<std::time::Instant> = None;
    loop {
        // Also a write transaction; tickets are due in hours, so once a second is plenty.
        if opts.housekeeping && overdue_checked.is_none_or(|t| t.elapsed() >= OVERDUE_CHECK_EVERY) {
            let actor = crate::schedule::Job::Overdue.actor();
            blocking::store(store, move |s| s.flag_overdue(&actor)).await?;
            overdue_checked = Some(std::time::Instant::now());
        }
        let stopping = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
        let room = if stopping { 0 } else { window.saturating_sub(tasks.len()) };
        let ops = if room >= capacity {
            let (owner, lease) = (owner.to_string(), opts.lease);
            blocking::store(store, move |s| s.claim(&owner, lease, room)).await?
        } else {
            Vec::new()
        };
        if ops.is_empty() {
            if let Some(res) = tasks.join_next().await {
                if let Err(e) = res {
                    tracing::error!("executor task ended abnormally: {e}");
                }
                continue;
            }
            let counts = blocking::store(store, |s| s.queue_counts()).await?;
            let waiting = [OpState::Pending, OpState::Running].iter().filter_map(|s| counts.get(s)).sum::<i64>();
            if waiting == 0 || !opts.wait || stopping {
                break;
            }
            // Everything left waits for a retry time, for an earlier operation, or for another
            // executor's claim to finish or lapse: sleep until the earliest of them, briefly.
            let wait = blocking::store(store, |s| s.next_wake_at())
                .await?
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| (t.with_timezone(&chrono::Utc) - store.clock().now()).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_millis(100))
                .clamp(Duration::from_millis(20), Duration::from_secs(2));
            tokio::time::sleep(wait).await;
            continue;
        }
        claimed += ops.len();
        in_flight.set().extend(ops.iter().map(|o| o.id));
        // Runs arrive one after another; each run is one identity's operations in one target,
        // carried out in order by one task.
        let mut runs: Vec<Vec<OpRecord>> = Vec::new();
        for op in ops {
            match runs.last_mut() {
                Some(run) if run.last().is_some_and(|l| l.identity == op.identity && l.target == op.target) => {
                    run.push(op)
                }
                _ => runs.push(vec![op]),
            }
        }
        for run in runs {
            let target = run.first().map(|o| o.target.clone()).unwrap_or_default();
            let sem = limits.get(&target).cloned().unwrap_or_else(|| Arc::new(Semaphore::new(1)));
            let (config, store, conns, stats, opts, in_flight) =
                (config.clone(), store.clone(), conns.clone(), stats.clone(), opts.clone(), in_flight.clone());
            let owner = owner.to_string();
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let (finished, release) = execute_run(&config, &store, &conns, &run, &opts, &stats, &owner).await;
                let attempted = run.len() - release.len();
                if !finished.is_empty() || !release.is_empty() {
                    let n = finished.len();
                    let recorded = blocking::store(&store, move |s| s.finish_many(&finished, &release, &owner)).await;
                    match recorded {
                        Ok(r) if r < n => {
                            tracing::warn!("{} result(s) dropped: taken over by another executor", n - r)
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!("recording the results of {n} operation(s): {e}"),
                    }
                }
                // Recorded or not, these are no longer this run's to renew: an outcome that could
                // not be recorded lets its claim lapse, and the operation is claimed again.
                let mut set = in_flight.set();
                for op in &run {
                    set.remove(&op.id);
                }
                drop(set);
                let done = stats.done.fetch_add(attempted, Ordering::Relaxed) + attempted;
                if let Some(p) = &opts.progress {
                    p(Progress { done, claimed: 0 });
                }
            });
        }
        if let Some(p) = &opts.progress {
            p(Progress { done: stats.done.load(Ordering::Relaxed), claimed });
        }
    }
    Ok(())
}

#[derive(Default)]
struct Stats {
    done: AtomicUsize,
    verified: AtomicUsize,
    retries: AtomicUsize,
    failed: AtomicUsize,
    tickets: AtomicUsize,
}

fn audit_for(op: &OpRecord, outcome: &str, reason: String) -> AuditEntry {
    AuditEntry::new("executor", &format!("apply.{}", op.kind), outcome)
        .identity(&op.identity)
        .target(&op.target)
        .entitlement(op.entitlement.as_deref())
        .reason(format!("operation {} (attempt {}): {reason}", op.id, op.attempts))
}

/// The account an operation is about, from the identity's current attributes.
async fn account_spec(config: &Arc<Config>, store: &Arc<dyn Backend>, op: &OpRecord) -> Result<AccountSpec, String> {
    if config.target(&op.target).is_none() {
        return Err(format!("target `{}` is no longer configured", op.target));
    }
    let (cfg, id) = (config.clone(), op.identity.clone());
    let identity = blocking::store(store, move |s| s.identity(&cfg.schema, &id)).await.map_err(|e| e.to_string())?;
    spec_for(config, op, identity.as_ref())
}

/// The account spec of `op` given its identity as stored.
fn spec_for(config: &Config, op: &OpRecord, identity: Option<&Identity>) -> Result<AccountSpec, String> {
    spec_of(config, &op.target, &op.identity, op.account.as_deref(), identity)
}

/// The account spec of `identity_id`'s account in `target_name`: the account name given (the
/// one recorded when the account was created), else the identity's current one.
pub(crate) fn spec_of(
    config: &Config,
    target_name: &str,
    identity_id: &str,
    account: Option<&str>,
    identity: Option<&Identity>,
) -> Result<AccountSpec, String> {
    let schema = &config.schema;
    let target = config.target(target_name).ok_or_else(|| format!("target `{target_name}` is no longer configured"))?;
    let attr = |name: &str| identity.and_then(|i| i.attr(schema, name)).map(str::to_string);
    let account = match (account, identity) {
        (Some(a), _) => a.to_string(),
        (None, Some(i)) => i.attrs.get(target.account_attribute).map(str::to_string).ok_or_else(|| {
            format!("identity `{identity_id}` has no `{}` for its account name", schema.name(target.account_attribute))
        })?,
        (None, None) => return Err(format!("identity `{identity_id}` is unknown")),
    };
    Ok(AccountSpec {
        identity_id: if identity.is_some() { identity_id.to_string() } else { String::new() },
        account,
        given_name: attr("given_name"),
        family_name: attr("family_name"),
        email: attr("email"),
        // Every attribute by name, for the target's attribute templates.
        attributes: schema.names().filter_map(|n| Some((n.to_string(), attr(n).filter(|v| !v.is_empty())?))).collect(),
    })
}

/// Whether a read-back shows the operation's effect.
pub fn verified(kind: OpKind, entitlement: Option<&str>, state: Option<&AccountState>) -> bool {
    let holds = |s: &AccountState| entitlement.is_some_and(|e| s.grants.contains(e));
    match kind {
        // For an attribute update the account must exist; `execute` then reads its attributes.
        OpKind::CreateAccount | OpKind::RotateCredential | OpKind::TransferOwnership | OpKind::UpdateAttributes => {
            state.is_some()
        }
        OpKind::Enable => state.is_some_and(|s| s.enabled),
        OpKind::Disable => state.is_none_or(|s| !s.enabled),
        OpKind::DeleteAccount => state.is_none(),
        OpKind::Grant => state.is_some_and(holds),
        OpKind::Revoke => state.is_none_or(|s| !holds(s)),
        OpKind::RevokeSessions => state.is_none_or(|s| s.sessions.unwrap_or(0) == 0),
        OpKind::OpenTicket => true,
    }
}

async fn execute(
    config: &Arc<Config>,
    store: &Arc<dyn Backend>,
    conns: &Connectors,
    op: &OpRecord,
    opts: &ExecOptions,
    stats: &Stats,
    owner: &str,
) -> Option<Finished> {
    let Some(target) = config.target(&op.target) else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        let msg = format!("target `{}` is no longer configured", op.target);
        return Some(Finished {
            op: op.id,
            state: OpState::Failed,
            error: Some(msg.clone()),
            next_attempt_at: None,
            note: None,
            audit: audit_for(op, "failed", msg),
        });
    };
    if let TargetSettings::Manual(m) = &target.settings {
        let due = stamp(store.clock().now() + chrono::Duration::hours(i64::from(m.sla_hours)));
        let summary = format!(
            "{}{} for `{}` in {}",
            op.kind,
            op.entitlement.as_deref().map(|e| format!(" `{e}`")).unwrap_or_default(),
            op.identity,
            op.target
        );
        let (ticket, ticket_owner, owner) = (op.clone(), m.owner.clone(), owner.to_string());
        let opened =
            blocking::store(store, move |s| s.open_ticket(&ticket, &ticket_owner, &summary, &due, &owner)).await;
        return match opened {
            Ok(_) => {
                stats.tickets.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(e) => {
                Some(retry_or_fail(op, target.max_attempts, &ConnectorError::transient(e.to_string()), opts, stats))
            }
        };
    }
    let Some(conn) = conns.get(&op.target) else {
        // An unusable target's operations fail at once with its reason: retrying cannot set up
        // a connector whose secret or URL is missing from this process's configuration.
        let e = match conns.why_unusable(&op.target) {
            Some(why) => ConnectorError::permanent(format!("target `{}` cannot be used: {}", op.target, why.message)),
            None => ConnectorError::permanent(format!("no connector for target `{}`", op.target)),
        };
        return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats));
    };
    let spec = match account_spec(config, store, op).await {
        Ok(s) => s,
        Err(msg) => return Some(retry_or_fail(op, target.max_attempts, &ConnectorError::permanent(msg), opts, stats)),
    };
    if op.kind == OpKind::RotateCredential {
        return Some(rotate(config, conn.as_ref(), op, &spec, target.max_attempts, opts, stats).await);
    }
    let req = Request {
        kind: op.kind,
        entitlement: op.entitlement.clone(),
        account: spec.clone(),
        new_owner: None,
        secret: None,
    };
    let applied = match tokio::time::timeout(opts.call_timeout, conn.apply(&req)).await {
        Ok(Ok(Applied::NotOwned(found))) => {
            return refuse_adoption(store, op, owner, &spec, &found, target.max_attempts, opts, stats).await;
        }
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats)),
        Err(_) => {
            let e = ConnectorError::transient(format!("no answer within {:?}", opts.call_timeout));
            return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats));
        }
    };
    let state = match tokio::time::timeout(opts.call_timeout, conn.read_account(&spec)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats)),
        Err(_) => {
            let e = ConnectorError::transient("read-back timed out");
            return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats));
        }
    };
    // The account must be this identity's: an account whose correlation id names another
    // identity (a reused or renamed login) is never changed or counted as verified.
    if let Some(other) = state.as_ref().and_then(|s| s.external_id.as_deref())
        && !spec.identity_id.is_empty()
        && other != spec.identity_id
    {
        let e = ConnectorError::permanent(format!(
            "account `{}` in `{}` belongs to identity `{other}`, not `{}`",
            spec.account, op.target, spec.identity_id
        ));
        return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats));
    }
    if !verified(op.kind, op.entitlement.as_deref(), state.as_ref()) {
        let e = ConnectorError::transient("the read-back does not show the change");
        return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats));
    }
    // A deletion's effect is the absence, unless it found nothing to delete: then the account
    // is as much in doubt as one a disable did not find.
    let removal = op.kind.removes_access() && (op.kind != OpKind::DeleteAccount || applied == Applied::AlreadyDone);
    let whereabouts = match whereabouts(store, op, &spec, state.as_ref(), removal).await {
        Ok(w) => w,
        Err(e) => return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats)),
    };
    // An attribute update is verified by reading the mapped attributes back: none may differ
    // from what the identity's attributes make of them.
    if op.kind == OpKind::UpdateAttributes {
        let differ = match tokio::time::timeout(opts.call_timeout, conn.read_attributes(&spec)).await {
            Ok(Ok(Some(live))) => {
                let desired = tenure_core::attributes::desired(&target.settings, |n| spec.lookup(n));
                tenure_core::attributes::changes(&desired, &live)
            }
            Ok(Ok(None)) => {
                let e = ConnectorError::transient("the account is gone from the read-back");
                return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats));
            }
            Ok(Err(e)) => return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats)),
            Err(_) => {
                let e = ConnectorError::transient("read-back timed out");
                return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats));
            }
        };
        if let Some(c) = differ.first() {
            let e = ConnectorError::transient(format!(
                "the read-back does not show the change: `{}` still differs",
                c.attribute
            ));
            return Some(retry_or_fail(op, target.max_attempts, &e, opts, stats));
        }
    }
    stats.verified.fetch_add(1, Ordering::Relaxed);
    let how = match applied {
        Applied::Changed => "applied and read back",
        Applied::AlreadyDone | Applied::NotOwned(_) => "already in place (read back)",
    };
    let how = format!("{how}{whereabouts}");
    let how = how.as_str();
    Some(Finished {
        op: op.id,
        state: OpState::Verified,
        error: None,
        next_attempt_at: None,
        note: Some(how.to_string()),
        audit: audit_for(op, "verified", format!("account `{}`: {how}", spec.account)),
    })
}

/// `rotate_credential`: a new random secret, staged in the target's secret sink, set in the
/// target, promoted in the sink, then verified by logging in (binding) with it on a connection of
/// its own. Without a sink the rotation is refused before anything changes. The secret is in
/// memory only for this call and reaches nothing but the connector and the sink: every error
/// made while it is in use is scrubbed of it.
async fn rotate(
    config: &Config,
    conn: &dyn Connector,
    op: &OpRecord,
    spec: &AccountSpec,
    max_attempts: u32,
    opts: &ExecOptions,
    stats: &Stats,
) -> Finished {
    let fail = |e: ConnectorError| retry_or_fail(op, max_attempts, &e, opts, stats);
    let Some(root) = config.secret_sink(&op.target) else {
        return fail(ConnectorError::permanent(format!(
            "rotate_credential needs a secret sink for `{}`: set `[nhi] secret_sink` (or the target's `secret_sink`) \
             to a directory; the new secret goes there and nowhere else",
            op.target
        )));
    };
    // The account must exist, be enabled (the new secret is verified by logging in) and be this
    // identity's: a login reused by someone else never gets its password changed.
    match tokio::time::timeout(opts.call_timeout, conn.read_account(spec)).await {
        Ok(Ok(Some(state))) => {
            if let Some(other) = owned_by_other(spec, Some(&state)) {
                return fail(ConnectorError::permanent(format!(
                    "account `{}` in `{}` belongs to identity `{other}`, not `{}`",
                    spec.account, op.target, spec.identity_id
                )));
            }
            if !state.enabled {
                return fail(ConnectorError::permanent(format!(
                    "account `{}` in `{}` is disabled: its credential is not rotated",
                    spec.account, op.target
                )));
            }
        }
        Ok(Ok(None)) => {
            return fail(ConnectorError::permanent(format!(
                "account `{}` does not exist in `{}`: there is no credential to rotate",
                spec.account, op.target
            )));
        }
        Ok(Err(e)) => return fail(e),
        Err(_) => return fail(ConnectorError::transient("read-back timed out")),
    }
    let root = std::path::PathBuf::from(root);
    let (sink_target, sink_account) = (op.target.clone(), spec.account.clone());
    let file =
        match tokio::task::spawn_blocking(move || crate::sink::SinkFile::prepare(&root, &sink_target, &sink_account))
            .await
        {
            Ok(Ok(f)) => f,
            Ok(Err(why)) => return fail(ConnectorError::permanent(why)),
            Err(e) => return fail(ConnectorError::transient(format!("preparing the secret sink: {e}"))),
        };
    let secret = NewSecret::generate();
    let scrubbed = |mut e: ConnectorError| {
        e.message = secret.scrub(&e.message);
        e
    };
    if let Err(why) = blocking_sink(&file, &secret, SinkStep::Stage).await {
        return fail(ConnectorError::permanent(why));
    }
    let req = Request {
        kind: OpKind::RotateCredential,
        entitlement: None,
        account: spec.clone(),
        new_owner: None,
        secret: Some(secret.clone()),
    };
    match tokio::time::timeout(opts.call_timeout, conn.apply(&req)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            // A refusal never took effect; anything else may have, so the staged secret stays.
            if !e.is_transient() {
                let _ = blocking_sink(&file, &secret, SinkStep::Discard).await;
            }
            return fail(scrubbed(e));
        }
        Err(_) => return fail(ConnectorError::transient(format!("no answer within {:?}", opts.call_timeout))),
    }
    if let Err(why) = blocking_sink(&file, &secret, SinkStep::Promote).await {
        return fail(ConnectorError::transient(format!(
            "the target has the new secret, but {why}; it is staged beside it"
        )));
    }
    match tokio::time::timeout(opts.call_timeout, conn.verify_secret(spec, &secret)).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return fail(ConnectorError::transient("the new secret does not log in")),
        Ok(Err(e)) => return fail(scrubbed(e)),
        Err(_) => return fail(ConnectorError::transient("verifying the new secret timed out")),
    }
    stats.verified.fetch_add(1, Ordering::Relaxed);
    let how = format!("new secret set, written to the secret sink and verified by logging in as `{}`", spec.account);
    Finished {
        op: op.id,
        state: OpState::Verified,
        error: None,
        next_attempt_at: None,
        note: Some(how.clone()),
        audit: audit_for(op, "verified", format!("account `{}`: {how}", spec.account)),
    }
}

#[derive(Clone, Copy)]
enum SinkStep {
    Stage,
    Promote,
    Discard,
}

/// A sink write on the blocking pool.
async fn blocking_sink(file: &crate::sink::SinkFile, secret: &NewSecret, step: SinkStep) -> Result<(), String> {
    let (file, secret) = (file.clone(), secret.clone());
    tokio::task::spawn_blocking(move || match step {
        SinkStep::Stage => file.stage(&secret),
        SinkStep::Promote => file.promote(),
        SinkStep::Discard => {
            file.discard();
            Ok(())
        }
    })
    .await
    .unwrap_or_else(|e| Err(format!("the secret sink task failed: {e}")))
}

/// Whether a later operation of the same run overrides `op`'s effect (a grant revoked again, an
/// account created and then disabled), so the read-back shows the later one instead.
fn superseded(op: &OpRecord, later: &[(&OpRecord, Applied)]) -> Option<i64> {
    let account_level =
        |k: OpKind| matches!(k, OpKind::CreateAccount | OpKind::Enable | OpKind::Disable | OpKind::DeleteAccount);
    later
        .iter()
        .find(|(l, _)| match op.kind {
            OpKind::Grant | OpKind::Revoke => {
                matches!(l.kind, OpKind::Grant | OpKind::Revoke) && l.entitlement == op.entitlement
            }
            k if account_level(k) => account_level(l.kind) || l.kind == OpKind::DeleteAccount,
            _ => false,
        })
        .map(|(l, _)| l.id)
}

/// Carries out one run (one identity's operations in one target, in order): applies them until
/// one fails, hands the rest back unattempted, then reads the account back once and verifies
/// every applied operation against it. Returns the outcomes and the operations to release.
async fn execute_run(
    config: &Arc<Config>,
    store: &Arc<dyn Backend>,
    conns: &Connectors,
    run: &[OpRecord],
    opts: &ExecOptions,
    stats: &Stats,
    owner: &str,
) -> (Vec<Finished>, Vec<i64>) {
    let Some(first) = run.first() else { return (Vec::new(), Vec::new()) };
    let manual = config.target(&first.target).is_some_and(|t| matches!(t.settings, TargetSettings::Manual(_)));
    let conn = conns.get(&first.target);
    let spec = account_spec(config, store, first).await;
    // A credential rotation is carried out on its own: its secret is staged in the sink, set,
    // promoted and read back by logging in, which the shared read-back of a run cannot do.
    let rotation = run.iter().any(|o| o.kind == OpKind::RotateCredential);
    let (Some(target), Some(conn), Ok(spec), false, false) =
        (config.target(&first.target), conn, spec.clone(), manual, rotation)
    else {
        // Manual targets, missing connectors, unusable accounts and rotations: one operation at a
        // time.
        let mut done = Vec::new();
        for op in run {
            if let Some(f) = execute(config, store, conns, op, opts, stats, owner).await {
                done.push(f);
            }
        }
        return (done, Vec::new());
    };
    let mut done = Vec::new();
    let mut release = Vec::new();
    let mut applied: Vec<(&OpRecord, Applied)> = Vec::new();
    for (i, op) in run.iter().enumerate() {
        // Operations of one run share the account; a different one starts a new run later.
        if op.account.is_some() && op.account != first.account {
            release.extend(run.iter().skip(i).map(|o| o.id));
            break;
        }
        let req = Request {
            kind: op.kind,
            entitlement: op.entitlement.clone(),
            account: spec.clone(),
            new_owner: None,
            secret: None,
        };
        let result = match tokio::time::timeout(opts.call_timeout, conn.apply(&req)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectorError::transient(format!("no answer within {:?}", opts.call_timeout))),
        };
        match result {
            Ok(Applied::NotOwned(found)) => {
                // Nothing else of this identity's runs on that account until a person decides.
                if let Some(f) =
                    refuse_adoption(store, op, owner, &spec, &found, target.max_attempts, opts, stats).await
                {
                    done.push(f);
                }
                break;
            }
            Ok(a) => {
                let existed = a == Applied::AlreadyDone && matches!(op.kind, OpKind::CreateAccount | OpKind::Enable);
                applied.push((op, a));
                // An account that was already there must be this identity's before anything is
                // granted on it: read it back now rather than after the grants.
                if existed && i + 1 < run.len() {
                    match conn.read_account(&spec).await {
                        Ok(state) if owned_by_other(&spec, state.as_ref()).is_some() => {
                            release.extend(run.iter().skip(i + 1).map(|o| o.id));
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            applied.pop();
                            done.push(retry_or_fail(op, target.max_attempts, &e, opts, stats));
                            release.extend(run.iter().skip(i + 1).map(|o| o.id));
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                done.push(retry_or_fail(op, target.max_attempts, &e, opts, stats));
                release.extend(run.iter().skip(i + 1).map(|o| o.id));
                break;
            }
        }
    }
    if applied.is_empty() {
        return (done, release);
    }
    let state = match tokio::time::timeout(opts.call_timeout, conn.read_account(&spec)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            done.extend(applied.iter().map(|(op, _)| retry_or_fail(op, target.max_attempts, &e, opts, stats)));
            return (done, release);
        }
        Err(_) => {
            let e = ConnectorError::transient("read-back timed out");
            done.extend(applied.iter().map(|(op, _)| retry_or_fail(op, target.max_attempts, &e, opts, stats)));
            return (done, release);
        }
    };
    if let Some(other) = owned_by_other(&spec, state.as_ref()) {
        let e = ConnectorError::permanent(format!(
            "account `{}` in `{}` belongs to identity `{other}`, not `{}`",
            spec.account, first.target, spec.identity_id
        ));
        done.extend(applied.iter().map(|(op, _)| retry_or_fail(op, target.max_attempts, &e, opts, stats)));
        return (done, release);
    }
    // A run that deletes the account reads back its absence: that is its effect.
    let removals = applied.iter().any(|(op, _)| op.kind.removes_access())
        && !applied.iter().any(|(op, a)| op.kind == OpKind::DeleteAccount && *a != Applied::AlreadyDone);
    let whereabouts = match whereabouts(store, first, &spec, state.as_ref(), removals).await {
        Ok(w) => w,
        Err(e) => {
            // Only the removals are in doubt; anything else is verified as usual below.
            let (doubtful, rest): (Vec<_>, Vec<_>) = applied.into_iter().partition(|(op, _)| op.kind.removes_access());
            done.extend(doubtful.iter().map(|(op, _)| retry_or_fail(op, target.max_attempts, &e, opts, stats)));
            applied = rest;
            String::new()
        }
    };
    for (i, (op, a)) in applied.iter().enumerate() {
        let how = match a {
            Applied::Changed => "applied and read back",
            Applied::AlreadyDone | Applied::NotOwned(_) => "already in place (read back)",
        };
        let how = format!("{how}{whereabouts}");
        let how = how.as_str();
        if verified(op.kind, op.entitlement.as_deref(), state.as_ref()) {
            stats.verified.fetch_add(1, Ordering::Relaxed);
            done.push(Finished {
                op: op.id,
                state: OpState::Verified,
                error: None,
                next_attempt_at: None,
                note: Some(how.to_string()),
                audit: audit_for(op, "verified", format!("account `{}`: {how}", spec.account)),
            });
        } else if let Some(by) = superseded(op, applied.get(i + 1..).unwrap_or_default()) {
            stats.verified.fetch_add(1, Ordering::Relaxed);
            let note = format!("{how}; superseded by operation {by} in the same run, whose effect was read back");
            done.push(Finished {
                op: op.id,
                state: OpState::Verified,
                error: None,
                next_attempt_at: None,
                audit: audit_for(op, "verified", format!("account `{}`: {note}", spec.account)),
                note: Some(note),
            });
        } else {
            let e = ConnectorError::transient("the read-back does not show the change");
            done.push(retry_or_fail(op, target.max_attempts, &e, opts, stats));
        }
    }
    (done, release)
}

/// Where the read-back found the account, said in the outcome: under another name (found by its
/// correlation id after a rename by hand), or nowhere. A removal (other than a deletion that
/// deleted something, whose effect is the absence) of an account found nowhere is
/// in place only when Tenure never saw the account: one it created or read back earlier, or
/// one linked to the identity by correlation, and did not delete itself has gone missing (renamed, moved or its correlation id removed by
/// hand, out of reach), which is an error to look into — a permanent failure and so an
/// exception on the case — never evidence that access was removed.
async fn whereabouts(
    store: &Arc<dyn Backend>,
    op: &OpRecord,
    spec: &AccountSpec,
    state: Option<&AccountState>,
    removals: bool,
) -> Result<String, ConnectorError> {
    if let Some(s) = state {
        return Ok(if s.account.to_lowercase() != spec.account.to_lowercase() {
            format!(
                "; found by its correlation id `{}` as `{}`, not under its name `{}`",
                spec.identity_id,
                tenure_core::text::quote(&s.account),
                tenure_core::text::quote(&spec.account)
            )
        } else {
            String::new()
        });
    }
    if !removals {
        return Ok(String::new());
    }
    let searched = if spec.identity_id.is_empty() {
        "searched by name (the identity is unknown, so not by correlation id)".to_string()
    } else {
        format!("searched by name and correlation id `{}`", spec.identity_id)
    };
    let filter =
        tenure_store::OpFilter { identity: Some(op.identity.clone()), states: vec![OpState::Verified], case_id: None };
    let ops = blocking::store(store, move |s| s.operations(&filter))
        .await
        .map_err(|e| ConnectorError::transient(format!("reading the account's history: {e}")))?;
    let seen = |k: OpKind| {
        matches!(
            k,
            OpKind::CreateAccount
                | OpKind::Enable
                | OpKind::Grant
                | OpKind::UpdateAttributes
                | OpKind::RotateCredential
                | OpKind::TransferOwnership
        )
    };
    let last = |pred: &dyn Fn(OpKind) -> bool| {
        ops.iter().filter(|o| o.target == op.target && o.id != op.id && pred(o.kind)).map(|o| o.id).max()
    };
    let last_seen = last(&seen);
    let last_deleted = last(&|k| k == OpKind::DeleteAccount);
    if let Some(seen_by) = last_seen
        && last_deleted.is_none_or(|d| d < seen_by)
    {
        return Err(ConnectorError::permanent(format!(
            "account `{}` is absent from `{}` ({searched}), but Tenure read it back there before (operation \
             {seen_by}) and never deleted it: it was renamed, moved or stripped of its correlation id out of \
             reach, or deleted by hand. Its access is not proven removed: find the account, or accept this \
             exception with a reason",
            tenure_core::text::quote(&spec.account),
            op.target
        )));
    }
    // An account linked to the identity by correlation (found on the target at go-live or
    // decided by a person) was seen there too, even when Tenure never had to change it.
    if last_deleted.is_none() {
        let target = op.target.clone();
        let links = blocking::store(store, move |s| s.correlation_links(Some(&target)))
            .await
            .map_err(|e| ConnectorError::transient(format!("reading the account's correlation: {e}")))?;
        if let Some(link) = links.iter().find(|l| l.identity == op.identity) {
            return Err(ConnectorError::permanent(format!(
                "account `{}` is absent from `{}` ({searched}), but it was linked to the identity by \
                 correlation as `{}` ({}) and Tenure never deleted it: it was renamed, moved or stripped of \
                 its correlation id out of reach, or deleted by hand. Its access is not proven removed: find \
                 the account, or accept this exception with a reason",
                tenure_core::text::quote(&spec.account),
                op.target,
                tenure_core::text::quote(&link.account),
                link.rule
            )));
        }
    }
    Ok(format!("; absent, {searched}"))
}

/// A create that found an account of the identity's name not carrying its correlation id: the
/// account is not adopted. The create and the identity's other queued work on the target are
/// cancelled, its holdings there dropped, and a correlation case opened for the account with
/// the identity as its candidate, in one store transaction; `tenure correlate CASE --to ID`
/// then plans the identity on the account, `--orphan` leaves it nobody's. Returns the create's
/// outcome to record when the store could not do this (the create fails, changing nothing), and
/// `None` when it was recorded.
#[expect(clippy::too_many_arguments, reason = "the outcome needs the run's context")]
async fn refuse_adoption(
    store: &Arc<dyn Backend>,
    op: &OpRecord,
    owner: &str,
    spec: &AccountSpec,
    found: &AccountState,
    max_attempts: u32,
    opts: &ExecOptions,
    stats: &Stats,
) -> Option<Finished> {
    let account = tenure_core::text::quote(&found.account);
    let why = format!(
        "an account of this name existed in `{}` when Tenure came to create it for `{}`, and it does not carry \
         that identity's correlation id{}: it was not adopted",
        op.target,
        spec.identity_id,
        found
            .external_id
            .as_deref()
            .map(|x| format!(" (it carries `{}`)", tenure_core::text::quote(x)))
            .unwrap_or_default()
    );
    let case = tenure_store::CaseIn {
        account: found.account.clone(),
        external_id: found.external_id.clone(),
        email: found.email.clone(),
        enabled: found.enabled,
        grants: found.grants.iter().cloned().collect(),
        candidates: vec![tenure_store::Candidate {
            identity: spec.identity_id.clone(),
            rule: "username".into(),
            confidence: 1.0,
        }],
        why: why.clone(),
    };
    let note = format!(
        "not created: account `{account}` exists in `{}` and does not carry `{}` as its correlation id; a \
         correlation case decides whose it is (`tenure correlations`, then `tenure correlate CASE --to {}` or \
         `--orphan`)",
        op.target, spec.identity_id, spec.identity_id
    );
    let (owner_s, identity, target) = (owner.to_string(), op.identity.clone(), op.target.clone());
    let audit = audit_for(op, "cancelled", note.clone());
    let (op_id, note_c) = (op.id, note.clone());
    let recorded = blocking::store(store, move |s| {
        s.refuse_adoption(&tenure_store::RefusedAdoption {
            op: op_id,
            owner: &owner_s,
            identity: &identity,
            target: &target,
            case,
            note: note_c,
            audit,
        })
    })
    .await;
    match recorded {
        Ok(Some(case)) => {
            tracing::warn!(
                "{}: account `{account}` not adopted for `{}`: correlation case {case}",
                op.target,
                op.identity
            );
            None
        }
        // The claim was taken over: whoever holds it now records the outcome.
        Ok(None) => None,
        Err(e) => {
            let e = ConnectorError::permanent(format!("{note}; recording the correlation case failed: {e}"));
            Some(retry_or_fail(op, max_attempts, &e, opts, stats))
        }
    }
}

/// The identity that owns the account according to its correlation id, if that is someone else.
fn owned_by_other<'a>(spec: &AccountSpec, state: Option<&'a AccountState>) -> Option<&'a str> {
    state
        .and_then(|s| s.external_id.as_deref())
        .filter(|other| !spec.identity_id.is_empty() && *other != spec.identity_id)
}

/// The retry schedule of transient failures: exponential from `base`, doubled per attempt and
/// capped at `max`, with jitter. A server's `Retry-After` is honoured up to the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    base: Duration,
    max: Duration,
}

/// The jitter factor is drawn from here: half of each delay is fixed and half random ("equal
/// jitter"), so retries of many operations spread out, yet none comes back at once.
const JITTER: std::ops::RangeInclusive<f64> = 0.5..=1.0;

impl Backoff {
    fn of(opts: &ExecOptions) -> Self {
        Self { base: opts.base_backoff, max: opts.max_backoff }
    }

    /// How long to wait after attempt `attempts` (the first is 1) failed, for the jitter factor
    /// `jitter` (drawn from [`JITTER`]) and the server's `retry_after`.
    fn delay(self, attempts: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1))).min(self.max);
        let jittered = exp.mul_f64(jitter.clamp(*JITTER.start(), *JITTER.end()));
        // A leaver's revocation must not wait hours because a target asked it to.
        retry_after.map_or(jittered, |ra| ra.max(jittered)).min(self.max)
    }
}

/// Records a failed attempt: a transient failure is retried later while attempts remain, and
/// counted in `stats`.
fn retry_or_fail(op: &OpRecord, max_attempts: u32, e: &ConnectorError, opts: &ExecOptions, stats: &Stats) -> Finished {
    let jitter = rand::rng().random_range(JITTER);
    let f = after_failure(op, max_attempts, e, Backoff::of(opts), opts.now(), jitter);
    let counter = if f.state == OpState::Pending { &stats.retries } else { &stats.failed };
    counter.fetch_add(1, Ordering::Relaxed);
    f
}

/// What becomes of `op` after an attempt failed with `e` at `now`: `pending` again with the
/// time of its next attempt while the failure is transient and it has had fewer than
/// `max_attempts`, else `failed`.
fn after_failure(
    op: &OpRecord,
    max_attempts: u32,
    e: &ConnectorError,
    backoff: Backoff,
    now: chrono::DateTime<chrono::Utc>,
    jitter: f64,
) -> Finished {
    let attempts = u32::try_from(op.attempts).unwrap_or(u32::MAX);
    if e.is_transient() && attempts < max_attempts {
        let delay = backoff.delay(attempts, e.retry_after, jitter);
        let at = stamp(now + chrono::Duration::from_std(delay).unwrap_or_default());
        return Finished {
            op: op.id,
            state: OpState::Pending,
            error: Some(e.message.clone()),
            next_attempt_at: Some(at.clone()),
            note: None,
            audit: audit_for(op, "retry", format!("transient failure, retry at {at}: {}", e.message)),
        };
    }
    let why =
        if e.is_transient() { format!("gave up after {attempts} attempts") } else { "permanent failure".to_string() };
    Finished {
        op: op.id,
        state: OpState::Failed,
        error: Some(e.message.clone()),
        next_attempt_at: None,
        note: None,
        audit: audit_for(op, "failed", format!("{why}: {}", e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_core::clock::FakeClock;
    use tenure_core::{Attrs, EventKind, Kind, Schema, Status};
    use tenure_store::{Batch, BatchState, EventIn, OpIn, SqliteStore};

    /// A store on a fake clock holding one joiner's two pending operations.
    fn store_with_work(clock: Arc<FakeClock>) -> Arc<dyn Backend> {
        let schema = Schema::default();
        let store = SqliteStore::memory(clock).unwrap();
        let identity = Identity::new("E1", Kind::Employee, Status::Active, Attrs::new(&schema));
        let op = |kind| OpIn { target: "dir".into(), kind, entitlement: None, rules: vec![], account: None };
        let event = EventIn {
            kind: EventKind::Joiner,
            identity: identity.clone(),
            changes: vec![],
            significant: false,
            note: None,
            existing_id: None,
            ops: vec![op(OpKind::CreateAccount), op(OpKind::Enable)],
            holdings: None,
            audit: vec![],
            cancel: vec![],
            requests: Default::default(),
        };
        let batch = Batch {
            actor: "source:hr".into(),
            source: "hr".into(),
            file: "hr.csv".into(),
            sha256: String::new(),
            summary: serde_json::json!({}),
            state: BatchState::Applied,
            events: vec![event],
            audit: vec![],
            base_import: None,
            supersede: vec![],
            ingests: Default::default(),
            correlation: Vec::new(),
        };
        tenure_store::Store::commit_batch(&store, &schema, &batch).unwrap();
        Arc::new(store)
    }

    #[tokio::test]
    async fn claims_in_flight_are_renewed_until_the_run_lets_go() {
        let clock = Arc::new(FakeClock::at(chrono::DateTime::UNIX_EPOCH));
        let store = store_with_work(clock.clone());
        // A lease of 60 ms of real time for the renewal interval, measured on the fake clock.
        let lease = Duration::from_millis(60);
        let claimed = store.claim("A", lease, 10).unwrap();
        assert_eq!(claimed.len(), 2);
        let in_flight = Arc::new(InFlight::default());
        in_flight.set().extend(claimed.iter().map(|o| o.id));
        let renewer = tokio::spawn(renew_claims(store.clone(), "A".into(), in_flight.clone(), lease));
        // Long past the first lease by the store's clock; the renewals keep moving it.
        clock.advance(chrono::Duration::seconds(10));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(store.claim("B", lease, 10).unwrap().is_empty(), "renewed claims are not taken over");
        // An operation the run has recorded (or given up on) is no longer renewed: its claim
        // lapses and is taken over alone, while the other stays with its owner.
        let (first, second) = (claimed[0].id, claimed[1].id);
        in_flight.set().remove(&first);
        clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(Duration::from_millis(400)).await;
        let taken: Vec<i64> = store.claim("B", lease, 10).unwrap().iter().map(|o| o.id).collect();
        assert_eq!(taken, [first], "only the claim no longer renewed lapses");
        // Once the run lets go of everything, the rest lapses too.
        renewer.abort();
        clock.advance(chrono::Duration::seconds(1));
        let taken: Vec<i64> = store.claim("C", lease, 10).unwrap().iter().map(|o| o.id).collect();
        assert_eq!(taken, [first, second], "lapsed claims are taken over, in order");
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_retry_delay_doubles_per_attempt_up_to_the_cap_with_jitter() {
        let backoff = Backoff { base: ms(500), max: Duration::from_secs(60) };
        let check = |attempts: u32, retry_after: Option<Duration>, jitter: f64, expect: Duration| {
            let got = backoff.delay(attempts, retry_after, jitter);
            assert_eq!(got, expect, "attempt {attempts}, Retry-After {retry_after:?}, jitter {jitter}");
        };
        // Jitter 1 is the top of the range, 0.5 the bottom: each delay lands in [exp/2, exp].
        check(1, None, 1.0, ms(500));
        check(1, None, 0.5, ms(250));
        check(1, None, 0.75, ms(375));
        check(2, None, 1.0, ms(1_000));
        check(3, None, 1.0, ms(2_000));
        check(7, None, 1.0, ms(32_000));
        check(7, None, 0.5, ms(16_000));
        // Capped before the jitter: at the cap, retries still spread over [max/2, max].
        check(8, None, 1.0, ms(60_000));
        check(8, None, 0.5, ms(30_000));
        check(40, None, 1.0, ms(60_000));
        check(u32::MAX, None, 1.0, ms(60_000));
        // Attempt 0 (never claimed) waits like the first.
        check(0, None, 1.0, ms(500));
        // A jitter factor outside the range is taken at its nearest end.
        check(1, None, 0.0, ms(250));
        check(1, None, 3.0, ms(500));
        // Retry-After is a floor, honoured up to the cap.
        check(1, Some(ms(10_000)), 1.0, ms(10_000));
        check(1, Some(ms(100)), 0.5, ms(250));
        check(3, Some(ms(1_500)), 1.0, ms(2_000));
        check(1, Some(Duration::from_secs(3_600)), 0.5, ms(60_000));
        check(1, Some(Duration::ZERO), 1.0, ms(500));
    }

    fn failed_op(attempts: i64) -> OpRecord {
        OpRecord {
            id: 7,
            case_id: 1,
            identity: "E1".into(),
            target: "chat".into(),
            kind: OpKind::Grant,
            entitlement: Some("staff".into()),
            reason: serde_json::json!({}),
            idem_key: String::new(),
            state: OpState::Running,
            attempts,
            next_attempt_at: None,
            last_error: None,
            created_at: String::new(),
            updated_at: String::new(),
            verified_at: None,
            account: Some("ada".into()),
            note: None,
        }
    }

    #[test]
    fn a_transient_failure_is_retried_until_max_attempts_and_a_permanent_one_fails_at_once() {
        let now = tenure_core::clock::parse_stamp("2026-11-21T09:00:00Z").unwrap();
        let backoff = Backoff { base: ms(500), max: Duration::from_secs(60) };
        let transient = ConnectorError::transient("503 from chat");
        let limited = ConnectorError { retry_after: Some(Duration::from_secs(30)), ..ConnectorError::transient("429") };
        let permanent = ConnectorError::permanent("400: no such group");
        let check = |attempts: i64, max_attempts: u32, e: &ConnectorError, expect: &str| {
            let f = after_failure(&failed_op(attempts), max_attempts, e, backoff, now, 1.0);
            assert_eq!(f.op, 7);
            assert_eq!(f.error.as_deref(), Some(e.message.as_str()));
            assert_eq!(f.audit.action, "apply.grant");
            let got = format!(
                "{} {}: {}",
                f.state,
                f.next_attempt_at.as_deref().unwrap_or("-"),
                f.audit.reason.as_deref().unwrap_or_default()
            );
            assert_eq!(got, expect, "attempt {attempts} of {max_attempts}: {e:?}");
        };
        check(
            1,
            3,
            &transient,
            "pending 2026-11-21T09:00:00.500000Z: operation 7 (attempt 1): transient failure, retry at 2026-11-21T09:00:00.500000Z: 503 from chat",
        );
        check(
            2,
            3,
            &transient,
            "pending 2026-11-21T09:00:01.000000Z: operation 7 (attempt 2): transient failure, retry at 2026-11-21T09:00:01.000000Z: 503 from chat",
        );
        check(3, 3, &transient, "failed -: operation 7 (attempt 3): gave up after 3 attempts: 503 from chat");
        check(9, 3, &transient, "failed -: operation 7 (attempt 9): gave up after 9 attempts: 503 from chat");
        check(1, 1, &transient, "failed -: operation 7 (attempt 1): gave up after 1 attempts: 503 from chat");
        check(
            1,
            3,
            &limited,
            "pending 2026-11-21T09:00:30.000000Z: operation 7 (attempt 1): transient failure, retry at 2026-11-21T09:00:30.000000Z: 429",
        );
        check(1, 3, &permanent, "failed -: operation 7 (attempt 1): permanent failure: 400: no such group");
    }

    #[test]
    fn retries_are_scheduled_on_the_clock_within_the_jitter_range_and_counted() {
        let now = tenure_core::clock::parse_stamp("2026-11-21T09:00:00Z").unwrap();
        let clock = Arc::new(FakeClock::at(now));
        let opts = ExecOptions { clock: Some(clock.clone()), ..ExecOptions::default() };
        let stats = Stats::default();
        let e = ConnectorError::transient("503");
        let mut delays = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let f = retry_or_fail(&failed_op(4), 8, &e, &opts, &stats);
            let at = tenure_core::clock::parse_stamp(f.next_attempt_at.as_deref().unwrap()).unwrap();
            let delay = (at - now).to_std().unwrap();
            // Attempt 4 of 500 ms doubling: 4 s, jittered into [2 s, 4 s].
            assert!((ms(2_000)..=ms(4_000)).contains(&delay), "{delay:?}");
            delays.insert(delay);
        }
        assert!(delays.len() > 100, "the delays are spread, not one value: {} distinct", delays.len());
        // The schedule follows the clock, not the wall.
        clock.advance(chrono::Duration::days(1));
        let f = retry_or_fail(&failed_op(1), 8, &e, &opts, &stats);
        assert!(f.next_attempt_at.as_deref().unwrap().starts_with("2026-11-22T09:00:00."), "{f:?}");
        retry_or_fail(&failed_op(8), 8, &e, &opts, &stats);
        retry_or_fail(&failed_op(1), 8, &ConnectorError::permanent("no"), &opts, &stats);
        assert_eq!((stats.retries.load(Ordering::Relaxed), stats.failed.load(Ordering::Relaxed)), (201, 2));
    }

    #[test]
    fn owner_tokens_differ_per_run_and_name_this_process() {
        let (a, b) = (owner_token(), owner_token());
        assert_ne!(a, b);
        assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
    }
}
