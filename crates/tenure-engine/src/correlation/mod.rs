//! Brownfield correlation: the accounts a target already had before Tenure managed it.
//!
//! The first import that can read a target (its *baseline*, recorded once per target) reads its
//! accounts ([`read_inventory`], done by the caller: the CLI or the server, since the import
//! itself does no IO), and [`rules::decide`] links each one Tenure did not create to an identity
//! by the target's ordered rules, or leaves it as a *correlation case* for a person (`tenure
//! correlations`, `tenure correlate CASE --to ID | --orphan`). Links and cases are recorded in
//! the store with their audit records before the import's batch is planned. The first push of
//! a webhook source does the same (the server's ingest task reads the targets while pushes
//! wait). The accounts the baseline matched to nobody are kept, and every later import or push
//! checks the identities new in it against them ([`correlate_late`]), so the hand-made login of
//! someone who joins after the baseline is linked or a case, never duplicated. A login made by
//! hand after the baseline, which no listing saw, is met by the executor when it creates the
//! joiner's account: it is not adopted but becomes a case the same way
//! (`tenure_store::Correlations::refuse_adoption`), decided with `tenure correlate` like any
//! other. An identity of
//! the batch's source that a rule links is planned in that batch, with an `update` event if
//! nothing else about it changed (a target correlated after go-live).
//!
//! Every planning path goes through [`Overlay`] (`import::PlanInputs` and the release of a held
//! batch): a linked account enters the identity's holdings as it was read (its managed grants
//! only), so the plan takes it over — grants what is missing, revokes what the policy manages
//! and does not grant, disables it if nothing is desired there — and never creates a second
//! one. An identity that is a candidate of an open case gets nothing planned on that target,
//! and no identity gets an account created under a name that an undecided, orphaned or
//! someone else's linked account has there: provisioning would find that account and take it
//! over without anyone deciding.
//!
//! Deciding a case ([`decide`]) is audited with who decided, what, and which candidates were
//! refused; `--to` plans the identity on the target at once (a person's decision is its own
//! approval, so the guard does not hold it), `--orphan` leaves the account an orphan finding
//! for good.

pub mod rules;
#[cfg(test)]
mod tests;

use crate::decisions::Decider;
use crate::executor::Connectors;
use crate::{Engine, EngineError, Result};
use rules::{Outcome, Person, normalise};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
/// An account as a connector lists it: what an [`Inventory`] holds.
pub use tenure_connect::AccountState;
use tenure_core::audit::AuditEntry;
use tenure_core::config::{Config, TargetConfig, TargetSettings};
use tenure_core::plan::{AccountView, Holdings};
use tenure_core::{CorrelationState, Event, EventKind, Identity};
use tenure_store::{
    Backend, Batch, BatchState, Candidate, CorrelationCase, Correlations, Decision, Unmatched, Verdict,
};

/// The accounts read from each target that has no baseline yet.
pub type Inventory = BTreeMap<String, Vec<AccountState>>;

/// The targets whose accounts the next import reads for correlation: not manual, with rules,
/// and not correlated yet.
pub fn pending_targets(config: &Config, store: &dyn Correlations) -> Result<Vec<String>> {
    let done: HashSet<String> = store.baselines()?.into_iter().map(|(t, _)| t).collect();
    Ok(config
        .targets
        .iter()
        .filter(|t| !matches!(t.settings, TargetSettings::Manual(_)))
        .filter(|t| !t.correlation.rules.is_empty() && !done.contains(&t.name))
        .map(|t| t.name.clone())
        .collect())
}

/// A target whose accounts could not be read for correlation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unread {
    pub target: String,
    pub reason: String,
}

/// Reads the accounts of every target in `targets` that can be read. A target that cannot be
/// set up or read is returned with why: it is correlated by the next import that can read it,
/// and until then its joiners are planned as before (an account found under their name at
/// apply that does not carry their correlation id is not adopted: the executor opens a case).
pub async fn read_inventory(conns: &Connectors, targets: &[String]) -> (Inventory, Vec<Unread>) {
    let mut inventory = Inventory::new();
    let mut unread = Vec::new();
    // The targets are read at once, each on its own task: a slow directory does not wait for
    // a slow app.
    let mut reads = tokio::task::JoinSet::new();
    for t in targets {
        let Some(conn) = conns.get(t) else {
            let reason = conns.why_unusable(t).map_or_else(
                || "no connector was set up for it".to_string(),
                |e| format!("it cannot be used: {}", e.message),
            );
            unread.push(Unread { target: t.clone(), reason });
            continue;
        };
        let (conn, t) = (conn.clone(), t.clone());
        reads.spawn(async move {
            let listed = conn.list_accounts().await;
            (t, listed)
        });
    }
    while let Some(done) = reads.join_next().await {
        match done {
            Ok((t, Ok(accounts))) => {
                inventory.insert(t, accounts);
            }
            Ok((t, Err(e))) => unread.push(Unread { target: t, reason: format!("reading its accounts failed: {e}") }),
            Err(e) => unread.push(Unread { target: "?".into(), reason: format!("reading a target stopped: {e}") }),
        }
    }
    unread.sort_by(|a, b| a.target.cmp(&b.target));
    (inventory, unread)
}

/// What one target's correlation did, for the import report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetCorrelation {
    pub target: String,
    /// Accounts read.
    pub accounts: usize,
    /// Accounts Tenure created itself (recorded in holdings), left to reconciliation.
    pub own: usize,
    pub linked: usize,
    pub cases: usize,
    /// Accounts no rule matched (reconciliation reports them as orphans).
    pub unmatched: usize,
    /// The new cases' ids (none on a dry run).
    pub case_ids: Vec<i64>,
    /// Not the baseline: the target's unmatched accounts, checked against identities new in
    /// this batch (`accounts` is how many were checked).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// What the rules read of `identity` for `target`.
pub fn person(config: &Config, target: &TargetConfig, identity: &Identity) -> Person {
    let attr = |name: &str| config.schema.slot(name).and_then(|s| identity.attrs.get(s)).map(str::to_string);
    Person {
        id: identity.id.to_string(),
        account: identity.attrs.get(target.account_attribute).map(str::to_string),
        email: attr("email"),
        given_name: attr("given_name"),
        family_name: attr("family_name"),
        terminated: identity.status == tenure_core::Status::Terminated,
    }
}

/// Decides the accounts of each target in `inventory` against `identities` (the identities
/// Tenure will know once the import commits): the accounts recorded in holdings are Tenure's own
/// and skipped, as are the identities that have an account there already.
pub fn correlate(
    config: &Config,
    inventory: &Inventory,
    identities: &[&Identity],
    holdings: &HashMap<String, Holdings>,
) -> Vec<(String, Outcome, TargetCorrelation)> {
    let mut out = Vec::new();
    for (t, accounts) in inventory {
        let Some(target) = config.target(t) else { continue };
        let mut own_names: HashSet<String> = HashSet::new();
        let mut has_account: HashSet<&str> = HashSet::new();
        for (id, h) in holdings {
            if let Some(view) = h.get(t).filter(|v| v.exists) {
                has_account.insert(id);
                if let Some(n) = &view.name {
                    own_names.insert(normalise(n));
                }
            }
        }
        let people: Vec<Person> =
            identities.iter().filter(|i| !has_account.contains(&*i.id)).map(|i| person(config, target, i)).collect();
        let foreign: Vec<AccountState> =
            accounts.iter().filter(|a| !own_names.contains(&normalise(&a.account))).cloned().collect();
        let outcome = rules::decide(&target.correlation, &foreign, &people);
        let summary = TargetCorrelation {
            target: t.clone(),
            accounts: accounts.len(),
            own: accounts.len() - foreign.len(),
            linked: outcome.links.len(),
            cases: outcome.cases.len(),
            unmatched: outcome.unmatched.len(),
            case_ids: Vec::new(),
            late: false,
        };
        out.push((t.clone(), outcome, summary));
    }
    out
}

/// What a batch writes for one target's outcome (`tenure_store::Batch::correlation`): its
/// baseline, or its late matches; nothing for late matching that found nothing.
pub fn to_write(target: &str, o: &Outcome, summary: &TargetCorrelation) -> Option<tenure_store::CorrelationIn> {
    if summary.late && o.links.is_empty() && o.cases.is_empty() {
        return None;
    }
    let unmatched = if summary.late {
        Vec::new()
    } else {
        o.unmatched
            .iter()
            .map(|a| Unmatched {
                account: a.account.clone(),
                external_id: a.external_id.clone(),
                email: a.email.clone(),
                enabled: a.enabled,
                grants: a.grants.iter().cloned().collect(),
            })
            .collect()
    };
    Some(tenure_store::CorrelationIn {
        target: target.to_string(),
        baseline: (!summary.late).then_some(summary.accounts),
        links: o.links.clone(),
        cases: o.cases.clone(),
        unmatched,
    })
}

/// The unmatched accounts of the correlated targets, checked against `new` (identities that
/// were not known before this batch), by the same rules: the hand-made login of someone who
/// joins after the baseline is linked (or a case), never duplicated. Targets in `skip` (being
/// correlated for the first time in this batch) are left to their baseline.
pub fn correlate_late(
    config: &Config,
    store: &dyn Backend,
    new: &[&Identity],
    skip: &HashSet<String>,
) -> Result<Vec<(String, Outcome, TargetCorrelation)>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let mut inventory = Inventory::new();
    for (t, u) in store.unmatched_accounts()? {
        if skip.contains(&t) {
            continue;
        }
        inventory.entry(t).or_default().push(AccountState {
            account: u.account,
            external_id: u.external_id,
            email: u.email,
            enabled: u.enabled,
            grants: u.grants.into_iter().collect(),
            sessions: None,
        });
    }
    if inventory.is_empty() {
        return Ok(Vec::new());
    }
    let mut holdings = HashMap::new();
    for i in new {
        let h = store.holdings(&i.id)?;
        if !h.is_empty() {
            holdings.insert(i.id.to_string(), h);
        }
    }
    let mut out = correlate(config, &inventory, new, &holdings);
    for (_, _, summary) in &mut out {
        summary.late = true;
    }
    out.retain(|(_, o, _)| !o.links.is_empty() || !o.cases.is_empty());
    Ok(out)
}

/// A linked account as the plan starts from it.
#[derive(Debug, Clone)]
struct Linked {
    account: String,
    enabled: bool,
    grants: BTreeSet<String>,
}

/// Who holds an account name in a target, of the accounts correlation knows.
#[derive(Debug, Clone)]
enum Taken {
    /// Linked to this identity.
    Linked(String),
    /// In this case, open or orphaned.
    Case(i64, CorrelationState),
}

/// The correlation state every plan applies: linked accounts, the identities an open case
/// holds back, and the account names nobody may be given an account under.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// identity -> target -> the linked account (looked up once per planned event).
    links: HashMap<String, BTreeMap<String, Linked>>,
    /// `(identity, target)` -> the open cases it is a candidate of.
    candidates: HashMap<(String, String), Vec<i64>>,
    /// target -> normalised account name -> who holds it.
    taken: HashMap<String, HashMap<String, Taken>>,
}

impl Overlay {
    /// The stored state, with the linked grants narrowed to what Tenure manages (a membership in
    /// a group nobody wrote a rule for is not Tenure's to revoke).
    pub fn load(engine: &Engine<'_>) -> Result<Self> {
        let mut o = Overlay::default();
        let links = engine.store.correlation_links(None)?;
        let cases = engine.store.correlation_cases(false)?;
        if links.is_empty() && cases.is_empty() {
            return Ok(o);
        }
        let managed = crate::reconcile::correlate::managed(engine.config, engine.policy);
        for l in links {
            let m = managed.get(&l.target);
            let grants = l.grants.iter().filter(|g| m.is_some_and(|m| m.contains(*g))).cloned().collect();
            o.taken
                .entry(l.target.clone())
                .or_default()
                .insert(normalise(&l.account), Taken::Linked(l.identity.clone()));
            o.links
                .entry(l.identity)
                .or_default()
                .insert(l.target, Linked { account: l.account, enabled: l.enabled, grants });
        }
        for c in cases {
            if c.state == CorrelationState::Linked {
                continue;
            }
            o.taken.entry(c.target.clone()).or_default().insert(normalise(&c.account), Taken::Case(c.id, c.state));
            if c.state == CorrelationState::Open {
                for cand in &c.candidates {
                    o.candidates.entry((cand.identity.clone(), c.target.clone())).or_default().push(c.id);
                }
            }
        }
        Ok(o)
    }

    /// Adds an outcome that was not recorded (a dry run's), as [`Overlay::load`] would read it.
    pub fn add(&mut self, engine: &Engine<'_>, target: &str, o: &Outcome) {
        let managed = crate::reconcile::correlate::managed(engine.config, engine.policy);
        let m = managed.get(target);
        for l in &o.links {
            let grants = l.grants.iter().filter(|g| m.is_some_and(|m| m.contains(*g))).cloned().collect();
            self.taken
                .entry(target.to_string())
                .or_default()
                .insert(normalise(&l.account), Taken::Linked(l.identity.clone()));
            self.links
                .entry(l.identity.clone())
                .or_default()
                .insert(target.to_string(), Linked { account: l.account.clone(), enabled: l.enabled, grants });
        }
        for (n, c) in o.cases.iter().enumerate() {
            // Not recorded, so no id: numbered in the order found, for the dry run's messages.
            let id = i64::try_from(n + 1).unwrap_or(i64::MAX);
            self.taken
                .entry(target.to_string())
                .or_default()
                .insert(normalise(&c.account), Taken::Case(id, CorrelationState::Open));
            for cand in &c.candidates {
                self.candidates.entry((cand.identity.clone(), target.to_string())).or_default().push(id);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty() && self.candidates.is_empty() && self.taken.is_empty()
    }

    /// `held` with the identity's linked accounts added where Tenure holds nothing yet.
    pub fn holdings(&self, id: &str, held: &Holdings) -> Option<Holdings> {
        let mut out: Option<Holdings> = None;
        for (t, l) in self.links.get(id)? {
            if held.get(t).is_some_and(|v| v.exists) {
                continue;
            }
            let h = out.get_or_insert_with(|| held.clone());
            h.insert(
                t.clone(),
                AccountView {
                    exists: true,
                    enabled: l.enabled,
                    grants: l.grants.clone(),
                    name: Some(l.account.clone()),
                },
            );
        }
        out
    }

    /// Why nothing may be planned for `identity` on `target`, if so: it is a candidate of an
    /// open case there, or it has no account there yet and its account name is held by an
    /// account correlation knows that is not linked to it.
    pub fn held_back(&self, engine: &Engine<'_>, identity: &Identity, target: &str, held: &Holdings) -> Option<String> {
        let id = &*identity.id;
        // An identity with an account there (its own, or one linked to it) is planned on it.
        if held.get(target).is_some_and(|v| v.exists) {
            return None;
        }
        if let Some(cases) = self.candidates.get(&(id.to_string(), target.to_string())) {
            let shown: Vec<String> = cases.iter().map(ToString::to_string).collect();
            return Some(format!("it is a candidate of open correlation case {}", shown.join(", ")));
        }
        let names = self.taken.get(target)?;
        let t = engine.config.target(target)?;
        let name = identity.attrs.get(t.account_attribute)?;
        match names.get(&normalise(name))? {
            Taken::Linked(owner) if owner == id => None,
            Taken::Linked(owner) => Some(format!(
                "its account name `{}` is linked to identity `{owner}` there",
                tenure_core::text::quote(name)
            )),
            Taken::Case(case, state) => Some(format!(
                "an account named `{}` there is in correlation case {case} ({state})",
                tenure_core::text::quote(name)
            )),
        }
    }
}

/// A person's choice about a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The account is this identity's (any identity Tenure knows without an account in the
    /// target, candidate or not: a person may know better than the rules; the audit says whether
    /// it was a candidate).
    To(String),
    /// The account is nobody's Tenure knows, for good.
    Orphan,
}

/// Refuses `by` deciding correlation case `id` about their own identity `identity`: linking an
/// account to themselves hands them its access, calling it an orphan refuses every candidate's
/// claim, their own among them (`self_approval`, nothing changed). Names are compared as
/// [`crate::people`] compares them.
fn not_their_own(engine: &Engine<'_>, id: i64, by: &Decider, identity: &str, how: &str) -> Result<()> {
    if crate::people::same_person(engine.store, &engine.config.schema, &by.name, identity)? {
        return Err(EngineError::Refused(
            tenure_core::error::Code::SelfApproval,
            format!(
                "identity `{}`, whom `{}` names, {how} correlation case {id}; someone else decides it \
                 (self-approval is refused)",
                tenure_core::text::quote(identity),
                tenure_core::text::quote(&by.name)
            ),
        ));
    }
    Ok(())
}

/// What deciding a case did: the case as decided, and the operations planned for the linked
/// identity on the target (none for an orphan).
pub use tenure_proto::CorrelationDecided as Decided;

/// Decides open case `id` as `by`, audited with `by`'s actor (`token:NAME` through the API,
/// `user:NAME` from the CLI); `--to` then plans the identity on the target.
/// Bad input (an unknown or decided case, an unknown identity, one with an account in the
/// target already, an orphan without a reason) is refused and changes nothing.
pub fn decide(engine: &Engine<'_>, id: i64, choice: &Choice, reason: Option<&str>, by: &Decider) -> Result<Decided> {
    let case = engine.store.correlation_case(id)?;
    if case.state != CorrelationState::Open {
        let what = match (&case.state, &case.identity) {
            (CorrelationState::Linked, Some(i)) => format!("linked to `{i}`"),
            (s, _) => s.to_string(),
        };
        return Err(EngineError::Invalid(format!(
            "correlation case {id} was decided already ({what} by {} at {})",
            case.decided_by.as_deref().unwrap_or("?"),
            case.decided_at.as_deref().unwrap_or("?")
        )));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let refused = |except: Option<&str>| -> String {
        let others: Vec<&Candidate> = case.candidates.iter().filter(|c| Some(c.identity.as_str()) != except).collect();
        if others.is_empty() {
            "none".into()
        } else {
            others
                .iter()
                .map(|c| format!("{} ({} {:.2})", c.identity, c.rule, c.confidence))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let account = tenure_core::text::quote(&case.account);
    let (verdict, detail) = match choice {
        Choice::Orphan => {
            let Some(why) = reason else {
                return Err(EngineError::Invalid(
                    "`--orphan` needs `--reason`: say why the account is nobody's".into(),
                ));
            };
            for c in &case.candidates {
                not_their_own(engine, id, by, &c.identity, "is a candidate of")?;
            }
            (
                Verdict::Orphan,
                format!(
                    "correlation case {id}: account `{account}` in `{}` is an orphan, for good; candidates refused: {}: {why}",
                    case.target,
                    refused(None)
                ),
            )
        }
        Choice::To(identity) => {
            not_their_own(engine, id, by, identity, "would be linked by")?;
            if engine.store.identity(&engine.config.schema, identity)?.is_none() {
                return Err(EngineError::Store(tenure_store::StoreError::NotFound(format!(
                    "no identity `{identity}`"
                ))));
            }
            let held = engine.store.holdings(identity)?;
            if let Some(view) = held.get(&case.target).filter(|v| v.exists) {
                return Err(EngineError::Invalid(format!(
                    "identity `{identity}` already has account `{}` in `{}`; correlation links an account to someone who has none there",
                    tenure_core::text::quote(view.name.as_deref().unwrap_or("?")),
                    case.target
                )));
            }
            // The executor never changes an account whose correlation id names another identity,
            // so such a link could only fail (or, for a grant, land and then fail): refused here.
            if let Some(x) = case.external_id.as_deref().filter(|x| !x.trim().is_empty() && x.trim() != identity) {
                return Err(EngineError::Invalid(format!(
                    "account `{account}` in `{}` carries correlation id `{}`, which is not `{identity}`; correct it in the target or decide the case with `--orphan`",
                    case.target,
                    tenure_core::text::quote(x)
                )));
            }
            let candidate = case.candidates.iter().find(|c| &c.identity == identity);
            let how = match candidate {
                Some(c) => format!("a candidate ({} {:.2})", c.rule, c.confidence),
                None => "not a candidate of the rules".to_string(),
            };
            (
                Verdict::Link { identity: identity.clone() },
                format!(
                    "correlation case {id}: account `{account}` in `{}` linked to `{identity}`, {how}; candidates refused: {}{}",
                    case.target,
                    refused(Some(identity)),
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
            )
        }
    };
    let actor = by.actor();
    let decided = engine.store.decide_correlation(&Decision {
        case_id: id,
        verdict: verdict.clone(),
        reason: reason.unwrap_or(""),
        by: &by.name,
        actor: &actor,
        detail,
    })?;
    let operations = match verdict {
        Verdict::Link { identity } => plan_linked(engine, &identity, &decided, by)?,
        Verdict::Orphan => 0,
    };
    Ok(Decided { case: view(&decided), operations })
}

/// Plans `identity` against its newly linked account: one `update` event with no change, whose
/// note names the case, committed like an import of its source.
fn plan_linked(engine: &Engine<'_>, identity: &str, case: &CorrelationCase, by: &Decider) -> Result<usize> {
    let schema = &engine.config.schema;
    let Some(current) = engine.store.identity(schema, identity)? else { return Ok(0) };
    // Every identity belongs to some source other than the empty name: this finds its own.
    let source = engine.store.foreign_identities("")?.remove(identity).unwrap_or_default();
    let event = Event {
        kind: EventKind::Update,
        identity: current.clone(),
        previous: Some(current),
        changes: Vec::new(),
        significant: false,
        note: Some(format!("correlation case {} decided by {}", case.id, by.name)),
    };
    let inputs = crate::import::PlanInputs::load(engine, std::slice::from_ref(&event))?;
    let mut scratch = tenure_policy::compiled::Scratch::default();
    let planned = inputs.plan(engine, &event, &mut scratch);
    let operations = planned.ops.len();
    let batch = Batch {
        actor: by.actor(),
        source: source.clone(),
        file: format!("correlation case {}", case.id),
        sha256: String::new(),
        summary: serde_json::json!({ "correlation_case": case.id, "target": case.target, "identity": identity, "operations": operations }),
        state: BatchState::Applied,
        base_import: engine.store.last_import(&source)?,
        events: vec![planned],
        audit: vec![
            AuditEntry::new(&by.actor(), "correlation.planned", "planned")
                .identity(identity)
                .target(&case.target)
                .reason(format!(
                    "correlation case {}: {operations} operation(s) planned on the linked account",
                    case.id
                )),
        ],
        supersede: Vec::new(),
        ingests: Default::default(),
        correlation: Vec::new(),
    };
    engine.store.commit_batch(schema, &batch)?;
    Ok(operations)
}

/// A stored case as the wire type.
pub fn view(c: &CorrelationCase) -> tenure_proto::CorrelationCase {
    tenure_proto::CorrelationCase {
        id: c.id,
        target: c.target.clone(),
        account: c.account.clone(),
        state: c.state,
        why: c.why.clone(),
        candidates: c
            .candidates
            .iter()
            .map(|x| tenure_proto::CorrelationCandidate {
                identity: x.identity.clone(),
                rule: x.rule.clone(),
                confidence: x.confidence,
            })
            .collect(),
        external_id: c.external_id.clone(),
        email: c.email.clone(),
        enabled: c.enabled,
        grants: c.grants.clone(),
        created_at: c.created_at.clone(),
        decided_at: c.decided_at.clone(),
        decided_by: c.decided_by.clone(),
        identity: c.identity.clone(),
        reason: c.reason.clone(),
    }
}

/// The cases, open ones only or all, as wire types.
pub fn cases(store: &dyn Correlations, open_only: bool) -> Result<Vec<tenure_proto::CorrelationCase>> {
    Ok(store.correlation_cases(open_only)?.iter().map(view).collect())
}

/// How `account` in `target` came to be linked, for `tenure explain --live`: by a rule (with its
/// confidence) or a person's decision of a case; `None` for an account Tenure created.
pub fn how_linked(store: &dyn Backend, target: &str, account: &str) -> Result<Option<String>> {
    let key = normalise(account);
    Ok(store.correlation_links(Some(target))?.into_iter().find(|l| normalise(&l.account) == key).map(|l| {
        match l.case_id {
            Some(case) => format!("linked by {} deciding correlation case {case}", l.linked_by),
            None => format!("linked by correlation rule `{}` (confidence {:.2})", l.rule, l.confidence),
        }
    }))
}
