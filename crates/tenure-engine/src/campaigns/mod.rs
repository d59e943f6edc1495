//! Certification campaigns: periodic review of who holds what, as the
//! reconciliation layer people do.
//!
//! A campaign selects held access by scope (`target:NAME`, `role:ID`, `entitlement:T:NAME`,
//! `privileged`) from Tenure's committed holdings (what it granted and has planned; not a live
//! read: access Tenure does not manage is reconciliation's `unmanaged` report, not something a
//! manager can revoke here). One item per identity and entitlement, with why it is held (the
//! roles that grant it, or `unmanaged/not in policy`), assigned to a reviewer: the identity's
//! manager (the manager's manager when the manager is not active) or a named owner; when nobody
//! else can, the campaign's creator (by identity id), unless that is the identity itself, which
//! refuses the campaign. Nobody decides on their own access.
//!
//! Only an item's reviewer decides it (`keep` or `revoke`, with a reason) or hands it on with a
//! note; a decided item or a closed campaign is refused. A `revoke` is carried out like a
//! reconciliation fix: [`apply_revocations`] plans the revocations of every revoke decision not
//! carried out yet as one batch through the guard (counting the review revocations of the
//! guard's `window` too, so decisions made one by one are limited like one batch), the grant
//! leaves the holdings (when the guard holds the batch: once its approval releases it; declining
//! the approval resolves the review's exception and keeps the access), a `manual_override` exception records the deviation from policy, and
//! the executor revokes and verifies it like any revocation. The item's outcome is its
//! operation's state. While that exception is not resolved, [`overrides`] keeps every planning
//! path from granting the entitlement again (`desired::Overrides`).
//!
//! A significant mover's requested access becomes a micro-review for the new manager
//! ([`mover_reviews`]). The `campaigns` schedule ([`run_schedule`]) opens those, reminds reviewers of their open items a day before
//! the due date (an audit record per reviewer: Tenure has no mail of its own), escalates
//! unreviewed items to the reviewer's manager after `escalate_after`, applies `on_timeout` at the due date, and carries out revoke
//! decisions; everything is audited, as `schedule:campaigns` when the schedule acts.

pub mod select;

#[cfg(test)]
mod tests;

use crate::app::App;
use crate::{EngineError, Result};
use select::{CampaignScope, People, ReviewerRule};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenure_core::clock::{parse_stamp, stamp};
use tenure_core::{CampaignState, Entitlement, OnTimeout, ReviewDecision, Status};
use tenure_policy::compiled::Scratch;
use tenure_proto as proto;
use tenure_store::StoreError;
use tenure_store::campaigns::{
    CampaignRecord, ItemDecision, ItemFilter, ItemRecord, NewCampaign, NewItem, Reassignment, ReviewRevocation,
    ReviewRevocations, Timeout,
};

/// The audit actor of everything the schedule does to campaigns.
pub const SCHEDULE_ACTOR: &str = "schedule:campaigns";

/// What `tenure campaign create` (and `POST /api/v1/campaigns`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    pub name: String,
    pub scope: String,
    pub reviewer: String,
    pub due: String,
    pub escalate_after: Option<String>,
    pub on_timeout: OnTimeout,
    /// Who creates it: a person's name (`--as`, `$TENURE_USER`) or a token's.
    pub by: String,
    /// The audit actor: `user:NAME` or `token:NAME`.
    pub actor: String,
}

fn invalid(why: impl Into<String>) -> EngineError {
    EngineError::Invalid(why.into())
}

/// Free text a person gives (a name, a reason, a note): at most the field limit, and no hidden
/// characters (it reaches tables, the CSV export and the audit trail).
fn check_text(field: &str, value: &str) -> Result<()> {
    if value.len() > tenure_core::text::FIELD_LIMIT {
        return Err(invalid(format!(
            "`{field}` is {} bytes; the limit is {}",
            value.len(),
            tenure_core::text::FIELD_LIMIT
        )));
    }
    if tenure_core::text::has_hidden(value, false) {
        return Err(invalid(format!("`{field}` holds control or invisible characters")));
    }
    Ok(())
}

fn conflict(why: impl Into<String>) -> EngineError {
    EngineError::Store(StoreError::Conflict(why.into()))
}

/// Creates a campaign over its scope's held access, one item per identity and entitlement, each
/// assigned to its reviewer. Bad input (an unknown target or role, a malformed reviewer, a due
/// date in the past, an unknown owner) is refused and creates nothing.
pub fn create(app: &App, o: &CreateOptions) -> Result<proto::Campaign> {
    let engine = app.engine().map_err(Box::new)?;
    let config = app.config();
    let name = o.name.trim();
    if name.is_empty() {
        return Err(invalid("a campaign needs a name (`--name`)"));
    }
    check_text("name", name)?;
    let scope = CampaignScope::parse(o.scope.trim(), config, engine.policy).map_err(invalid)?;
    let rule = ReviewerRule::parse(o.reviewer.trim()).map_err(invalid)?;
    let due = select::due_at(&o.due).map_err(invalid)?;
    let now = app.clock().now();
    if due <= now {
        return Err(invalid(format!("due `{}` is not in the future (now is {})", o.due.trim(), stamp(now))));
    }
    let escalate = o.escalate_after.as_deref().map(select::escalate_after).transpose().map_err(invalid)?;
    let store = app.store();
    let identities = store.identities(&config.schema, None)?;
    let people = People::new(&identities, config);
    if let ReviewerRule::Owner(owner) = &rule {
        let known = people.resolve(owner).and_then(|id| identities.iter().find(|i| &*i.id == id));
        match known {
            Some(i) if i.status == Status::Active => {}
            Some(i) => return Err(invalid(format!("reviewer `owner:{owner}`: identity `{}` is {}", i.id, i.status))),
            None => {
                return Err(invalid(format!("reviewer `owner:{owner}`: no identity has that id or username")));
            }
        }
    }
    let holdings = store.all_holdings()?;
    let mut scratch = Scratch::default();
    let empty = tenure_core::plan::Holdings::new();
    let mut desired = HashMap::new();
    for i in identities.iter().filter(|i| i.status != Status::Terminated) {
        let held = holdings.get(&*i.id).unwrap_or(&empty);
        let none = crate::desired::Overrides::default();
        desired.insert(i.id.to_string(), crate::desired::for_identity(&engine, i, held, &none, &mut scratch).0);
    }
    // Why access is held beyond the roles: the granted access requests (`request:ID`).
    let mut requested: HashMap<String, std::collections::BTreeMap<Entitlement, Vec<String>>> = HashMap::new();
    for (id, o) in crate::desired::overrides(&engine, None)? {
        for g in o.grants {
            requested.entry(id.clone()).or_default().entry(g.entitlement).or_default().push(g.reason);
        }
    }
    let selected = select::select(&scope, engine.policy, &identities, &holdings, &desired, &requested);
    if selected.is_empty() {
        return Err(invalid(format!("scope `{}` selects no held access: nothing to review", o.scope.trim())));
    }
    // The creator reviews what nobody else can: named as an identity (their id, when the name is
    // their username) so that they can decide it, and never for their own access.
    let creator = people.resolve(o.by.trim()).unwrap_or(o.by.trim()).to_string();
    let mut items = Vec::with_capacity(selected.len());
    for s in selected {
        let (reviewer, note) = select::reviewer_for(&rule, &s.identity, &people, &creator);
        if crate::people::same_name(&reviewer, &s.identity) {
            return Err(EngineError::Forbidden(format!(
                "`{}:{}` of `{}` would be reviewed by its holder: `{}` has no active manager and created the \
                 campaign, and nobody reviews their own access; let someone else create it, or narrow the scope",
                s.entitlement.target, s.entitlement.name, s.identity, s.identity
            )));
        }
        items.push(NewItem {
            identity: s.identity,
            target: s.entitlement.target,
            entitlement: s.entitlement.name,
            why: s.why,
            reviewer,
            note,
        });
    }
    let c = NewCampaign {
        name: name.to_string(),
        scope: o.scope.trim().to_string(),
        reviewer: o.reviewer.trim().to_string(),
        due_at: stamp(due),
        escalate_after_secs: escalate,
        on_timeout: o.on_timeout,
        created_by: o.by.clone(),
        actor: o.actor.clone(),
        items,
        mover_event: None,
    };
    Ok(campaign_view(&store.create_campaign(&c)?))
}

pub fn campaign_view(c: &CampaignRecord) -> proto::Campaign {
    proto::Campaign {
        id: c.id,
        name: c.name.clone(),
        scope: c.scope.clone(),
        reviewer: c.reviewer.clone(),
        due_at: c.due_at.clone(),
        escalate_after_secs: c.escalate_after_secs,
        on_timeout: c.on_timeout,
        state: c.state,
        created_by: c.created_by.clone(),
        created_at: c.created_at.clone(),
        closed_at: c.closed_at.clone(),
        closed_by: c.closed_by.clone(),
        timed_out_at: c.timed_out_at.clone(),
        reminded_at: c.reminded_at.clone(),
        items: c.items,
        decided: c.decided,
    }
}

pub fn item_view(i: &ItemRecord) -> proto::ReviewItem {
    proto::ReviewItem {
        id: i.id,
        campaign: i.campaign_id,
        identity: i.identity.clone(),
        entitlement: format!("{}:{}", i.target, i.entitlement),
        why: i.why.clone(),
        reviewer: i.reviewer.clone(),
        decision: i.decision,
        justification: i.justification.clone(),
        decided_at: i.decided_at.clone(),
        decided_by: i.decided_by.clone(),
        note: i.note.clone(),
        escalated_at: i.escalated_at.clone(),
        operation: i.operation_id,
        applied_by: i.applied_by.clone(),
        applied_at: i.verified_at.clone(),
        outcome: select::outcome(i),
    }
}

/// Every campaign, oldest first.
pub fn list(app: &App) -> Result<Vec<proto::Campaign>> {
    Ok(app.store().campaigns()?.iter().map(campaign_view).collect())
}

/// One campaign and its items.
pub fn show(app: &App, id: i64) -> Result<(proto::Campaign, Vec<proto::ReviewItem>)> {
    let c = app.store().campaign(id)?;
    let items = app.store().campaign_items(&ItemFilter { campaign: Some(id), ..ItemFilter::default() })?;
    Ok((campaign_view(&c), items.iter().map(item_view).collect()))
}

/// The identity a person's name names (an identity id, else a username, case-folded:
/// [`crate::people::resolve`]), else the name itself (a campaign creator who is no identity).
pub fn resolve_person(app: &App, name: &str) -> Result<String> {
    let store = app.store();
    Ok(crate::people::resolve(store.as_ref(), &app.config().schema, name)?
        .map_or_else(|| name.to_string(), |i| i.id.to_string()))
}

/// The review items assigned to `reviewer` (a name, resolved like `--as`), or every one;
/// `open_only`: undecided items of open campaigns.
pub fn reviews(app: &App, reviewer: Option<&str>, open_only: bool) -> Result<Vec<proto::ReviewItem>> {
    let reviewer = reviewer.map(|r| resolve_person(app, r)).transpose()?;
    let items = app.store().campaign_items(&ItemFilter { campaign: None, reviewer, open_only })?;
    Ok(items.iter().map(item_view).collect())
}

/// The item, checked to be open for `who` (already resolved): its campaign open, undecided, and
/// `who` its reviewer, and when `deciding`, not the identity under review (an item a campaign
/// made before that rule may still name its own identity: its reviewer can hand it on). The
/// store checks the same again when it writes.
fn open_item_for(app: &App, item: i64, who: &str, deciding: bool) -> Result<ItemRecord> {
    let i = app.store().campaign_item(item)?;
    if i.campaign_state != CampaignState::Open {
        return Err(conflict(format!("campaign {} is closed: review item {item} can no longer change", i.campaign_id)));
    }
    if let Some(d) = i.decision {
        return Err(conflict(format!(
            "review item {item} was decided already: {d} by `{}` at {}",
            i.decided_by.as_deref().unwrap_or("?"),
            i.decided_at.as_deref().unwrap_or("?")
        )));
    }
    if !crate::people::same_name(&i.reviewer, who) {
        return Err(EngineError::Forbidden(format!(
            "review item {item} is assigned to `{}`; `{who}` may not decide or reassign it",
            i.reviewer
        )));
    }
    if deciding && crate::people::same_name(&i.identity, who) {
        return Err(EngineError::Forbidden(format!(
            "review item {item} is `{who}`'s own access: nobody reviews their own access; hand it on with \
             `tenure review {item} --reassign NAME --note TEXT`"
        )));
    }
    Ok(i)
}

/// Records `as_name`'s decision on `item` with its reason (required), audited with `actor`; a
/// revoke is then carried out through the guard ([`apply_revocations`]).
pub fn decide(
    app: &App,
    item: i64,
    decision: ReviewDecision,
    reason: &str,
    as_name: &str,
    actor: &str,
) -> Result<(proto::ReviewItem, Option<Applied>)> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(invalid("a decision needs a reason (`--reason TEXT`)"));
    }
    check_text("reason", reason)?;
    let who = resolve_person(app, as_name)?;
    let i = open_item_for(app, item, &who, true)?;
    let d = ItemDecision {
        item,
        decision,
        justification: reason.to_string(),
        by: who.clone(),
        reviewer: i.reviewer.clone(),
        actor: actor.to_string(),
    };
    app.store().decide_item(&d)?;
    let applied = if decision == ReviewDecision::Revoke { Some(apply_revocations(app, actor)?) } else { None };
    Ok((item_view(&app.store().campaign_item(item)?), applied))
}

/// Hands `item` from its reviewer (`as_name`) to `to` (an identity id or username of an active
/// identity), with a note (required), audited with `actor`.
pub fn reassign(app: &App, item: i64, to: &str, note: &str, as_name: &str, actor: &str) -> Result<proto::ReviewItem> {
    let note = note.trim();
    if note.is_empty() {
        return Err(invalid("a reassignment needs a note (`--note TEXT`)"));
    }
    check_text("note", note)?;
    let who = resolve_person(app, as_name)?;
    let i = open_item_for(app, item, &who, false)?;
    let to_id = resolve_person(app, to)?;
    match app.store().identity(&app.config().schema, &to_id)? {
        Some(t) if t.status == Status::Active => {}
        Some(t) => return Err(invalid(format!("cannot reassign to `{to}`: identity `{}` is {}", t.id, t.status))),
        None => return Err(invalid(format!("cannot reassign to `{to}`: no identity has that id or username"))),
    }
    if crate::people::same_name(&to_id, &i.identity) {
        return Err(invalid(format!("cannot reassign review item {item} to `{to}`: nobody reviews their own access")));
    }
    if to_id == who {
        return Err(invalid(format!("review item {item} is assigned to `{who}` already")));
    }
    let r = Reassignment { item, from: who, to: to_id, note: note.to_string(), escalation: false };
    let out = app.store().reassign_items(&[r], actor)?;
    out.first().map(item_view).ok_or_else(|| invalid(format!("review item {item} was not reassigned")))
}

/// Closes a campaign, first carrying out its revoke decisions (through the guard); items left
/// unreviewed keep their access and are counted in the audit record.
pub fn close(app: &App, id: i64, by: &str, actor: &str) -> Result<(proto::Campaign, Applied)> {
    let c = app.store().campaign(id)?;
    if c.state != CampaignState::Open {
        return Err(conflict(format!(
            "campaign {id} is closed already (by `{}` at {})",
            c.closed_by.as_deref().unwrap_or("?"),
            c.closed_at.as_deref().unwrap_or("?")
        )));
    }
    let applied = apply_revocations(app, actor)?;
    let c = app.store().close_campaign(id, by, actor)?;
    Ok((campaign_view(&c), applied))
}

/// The CSV columns of `campaign export`: a contract.
pub const CSV_COLUMNS: [&str; 12] = [
    "campaign",
    "item",
    "identity",
    "entitlement",
    "why",
    "reviewer",
    "decision",
    "justification",
    "decided_at",
    "applied_by",
    "applied_at",
    "outcome",
];

/// Writes a campaign's items as CSV, one row per item, every cell through
/// `tenure_core::spreadsheet::safe_cell`. Returns how many rows.
pub fn export_csv(app: &App, id: i64, out: &mut dyn std::io::Write) -> Result<usize> {
    let (c, items) = show(app, id)?;
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| invalid(format!("writing the export failed: {e}"));
    w.write_record(CSV_COLUMNS).map_err(io)?;
    for i in &items {
        let cells = [
            c.name.clone(),
            i.id.to_string(),
            i.identity.clone(),
            i.entitlement.clone(),
            i.why.join("; "),
            i.reviewer.clone(),
            i.decision.map(|d| d.to_string()).unwrap_or_default(),
            i.justification.clone().unwrap_or_default(),
            i.decided_at.clone().unwrap_or_default(),
            i.applied_by.clone().unwrap_or_default(),
            i.applied_at.clone().unwrap_or_default(),
            i.outcome.map(|o| o.to_string()).unwrap_or_default(),
        ];
        w.write_record(cells.iter().map(|c| tenure_core::spreadsheet::safe_cell(c).into_owned())).map_err(io)?;
    }
    w.flush().map_err(|e| invalid(format!("writing the export failed: {e}")))?;
    Ok(items.len())
}

/// What [`apply_revocations`] planned.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Revocations planned (pending, or held with the batch).
    pub operations: usize,
    /// Revoke decisions whose access was already gone.
    pub not_held: usize,
    /// Why the guard held the batch, and the approval that releases it.
    pub held: Option<String>,
    pub approval_id: Option<i64>,
}

/// Plans every revoke decision not carried out yet, as one batch through the guard, audited
/// with `actor` (see the module doc).
pub fn apply_revocations(app: &App, actor: &str) -> Result<Applied> {
    let store = app.store();
    let pending = store.unplanned_revocations()?;
    if pending.is_empty() {
        return Ok(Applied::default());
    }
    let config = app.config();
    let mut revoke = Vec::new();
    let mut not_held = Vec::new();
    let mut holdings: HashMap<String, tenure_core::plan::Holdings> = HashMap::new();
    for i in &pending {
        if !holdings.contains_key(&i.identity) {
            holdings.insert(i.identity.clone(), store.holdings(&i.identity)?);
        }
        let acct = holdings.get(&i.identity).and_then(|h| h.get(&i.target)).filter(|a| a.exists);
        match acct.filter(|a| a.grants.contains(&i.entitlement)) {
            None => not_held.push(i.id),
            Some(a) => revoke.push(ReviewRevocation {
                item: i.id,
                identity: i.identity.clone(),
                target: i.target.clone(),
                entitlement: i.entitlement.clone(),
                account: a.name.clone(),
                rules: i.why.iter().filter(|w| *w != select::UNMANAGED).cloned().collect(),
                owner: i.decided_by.clone().unwrap_or_else(|| i.reviewer.clone()),
                detail: format!(
                    "campaign {} item {}: `{}:{}` revoked by `{}`: {}",
                    i.campaign_id,
                    i.id,
                    i.target,
                    i.entitlement,
                    i.decided_by.as_deref().unwrap_or("?"),
                    i.justification.as_deref().unwrap_or("")
                ),
            }),
        }
    }
    // The guard: identities losing access in this batch and through the review revocations of
    // the window, of the identities not terminated.
    let now = app.clock().now();
    let window = chrono::Duration::seconds(i64::try_from(config.guard.window_secs).unwrap_or(i64::MAX / 1000));
    let since = stamp(now.checked_sub_signed(window).unwrap_or(now));
    let mut losing: BTreeSet<String> = revoke.iter().map(|r| r.identity.clone()).collect();
    let prior = store.recent_review_revocations(&since)?;
    losing.extend(prior);
    let population = store.identities(&config.schema, None)?.iter().filter(|i| i.status != Status::Terminated).count();
    let held = if revoke.is_empty() {
        None
    } else {
        crate::guard::Counts { losses: losing.len(), population, ..Default::default() }.check(&config.guard).map(
            |why| {
                format!(
                    "{why}, counting the review revocations of the last {}",
                    crate::guard::window_text(config.guard.window_secs)
                )
            },
        )
    };
    let r = ReviewRevocations { revoke, not_held, held: held.clone(), actor: actor.to_string() };
    let ids = store.plan_review_revocations(&r)?;
    Ok(Applied { operations: ids.operations, not_held: r.not_held.len(), held, approval_id: ids.approval_id })
}

/// The entitlements reviews revoked, which planning excludes from each identity's desired
/// access (of `identities`, or of all).
pub fn overrides(
    store: &dyn tenure_store::Campaigns,
    identities: Option<&[&str]>,
) -> Result<HashMap<String, BTreeSet<Entitlement>>> {
    Ok(store.review_overrides(identities)?)
}

/// What one pass of the `campaigns` schedule did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Mover micro-review campaigns made.
    pub mover_reviews: Vec<i64>,
    /// Significant movers with requested access and no active manager (nor manager's manager)
    /// to review it: no micro-review is made for them, said once.
    pub mover_unreviewed: Vec<String>,
    /// Reviewers reminded of their open items, a day before a due date.
    pub reminded: usize,
    pub escalated: usize,
    /// Items escalation could not move: their reviewer has no active manager (reported only in a
    /// pass that escalated others).
    pub no_manager: usize,
    pub timed_out: Vec<i64>,
    pub applied: Applied,
}

impl Pass {
    pub fn acted(&self) -> usize {
        self.mover_reviews.len()
            + self.mover_unreviewed.len()
            + self.reminded
            + self.escalated
            + self.timed_out.len()
            + self.applied.operations
            + self.applied.not_held
    }

    pub fn detail(&self) -> String {
        let mut said = Vec::new();
        if !self.mover_reviews.is_empty() {
            let ids: Vec<String> = self.mover_reviews.iter().map(ToString::to_string).collect();
            said.push(format!("mover micro-review campaign(s) {} opened", ids.join(", ")));
        }
        if !self.mover_unreviewed.is_empty() {
            said.push(format!(
                "no mover micro-review for {}: no active manager to review their requested access",
                self.mover_unreviewed.join(", ")
            ));
        }
        if self.reminded > 0 {
            said.push(format!("{} reviewer(s) reminded of their open items", self.reminded));
        }
        if self.escalated > 0 {
            said.push(format!("{} item(s) escalated to the reviewer's manager", self.escalated));
        }
        // Said only beside escalations: items that cannot move stay as they are on every pass.
        if self.no_manager > 0 && self.escalated > 0 {
            said.push(format!("{} item(s) not escalated: their reviewer has no active manager", self.no_manager));
        }
        if !self.timed_out.is_empty() {
            let ids: Vec<String> = self.timed_out.iter().map(ToString::to_string).collect();
            said.push(format!("on_timeout applied to campaign(s) {}", ids.join(", ")));
        }
        if self.applied.operations > 0 {
            said.push(format!("{} review revocation(s) planned", self.applied.operations));
        }
        if let (Some(id), Some(why)) = (self.applied.approval_id, &self.applied.held) {
            said.push(format!("held for approval {id}: {why}"));
        }
        if self.applied.not_held > 0 {
            said.push(format!("{} revoke decision(s) found the access gone", self.applied.not_held));
        }
        if said.is_empty() { "nothing due".to_string() } else { said.join("; ") }
    }
}

/// How long a mover micro-review runs before its due date, and when it escalates.
pub const MOVER_REVIEW_DUE_DAYS: i64 = 14;
pub const MOVER_REVIEW_ESCALATE_DAYS: u64 = 7;

/// Mover micro-reviews: each significant mover (a `[mover] significant` attribute changed)
/// who holds requested (non-birthright) access gets a campaign of their own, `mover:EVENT`, in
/// which their new manager reviews each requested entitlement they hold (why: `request:ID`);
/// birthright access is re-derived by the policy for the new attributes and needs no review.
/// Due in [`MOVER_REVIEW_DUE_DAYS`] days, escalated after [`MOVER_REVIEW_ESCALATE_DAYS`],
/// `on_timeout = keep` (the request's own expiry still ends it). Each mover is checked once.
/// Returns the campaigns made, and the movers with requested access whom nobody can review
/// (neither their manager nor the manager's manager is active).
pub fn mover_reviews(app: &App) -> Result<(Vec<i64>, Vec<String>)> {
    let store = app.store();
    let movers = store.unchecked_movers()?;
    if movers.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let now = app.clock().now();
    let identities = store.identities(&app.config().schema, None)?;
    let people = People::new(&identities, app.config());
    let mut made = Vec::new();
    let mut nothing = Vec::new();
    let mut unreviewed = Vec::new();
    for (event, identity) in movers {
        let held = store.holdings(&identity)?;
        let grants = store.request_grants(Some(&[identity.as_str()]))?.remove(&identity).unwrap_or_default();
        let mut items: Vec<NewItem> = Vec::new();
        // The new manager reviews, else their manager; with neither active nobody can decide a
        // review (the schedule is no person), so none is made and the pass says so.
        let reviewer = people.manager_of(&identity);
        let (who, note) = reviewer.clone().unwrap_or_default();
        for g in grants {
            let live = g.expires_at.as_deref().and_then(parse_stamp).is_none_or(|at| at > now);
            for e in g.entitlements.iter().filter_map(|e| Entitlement::parse(e).ok()).filter(|_| live) {
                let holds = held.get(&e.target).is_some_and(|a| a.exists && a.grants.contains(&e.name));
                if !holds || items.iter().any(|i| i.target == e.target && i.entitlement == e.name) {
                    continue;
                }
                items.push(NewItem {
                    identity: identity.clone(),
                    target: e.target,
                    entitlement: e.name,
                    why: vec![format!("request:{}", g.request_id)],
                    reviewer: who.clone(),
                    note: note.clone(),
                });
            }
        }
        if items.is_empty() || reviewer.is_none() {
            if !items.is_empty() {
                unreviewed.push(identity.clone());
            }
            nothing.push((event, identity));
            continue;
        }
        let c = NewCampaign {
            name: format!("mover review: {identity} (event {event})"),
            scope: format!("mover:{event}"),
            reviewer: "manager".into(),
            due_at: stamp(now + chrono::Duration::days(MOVER_REVIEW_DUE_DAYS)),
            escalate_after_secs: Some(MOVER_REVIEW_ESCALATE_DAYS * 86_400),
            on_timeout: OnTimeout::Keep,
            created_by: SCHEDULE_ACTOR.to_string(),
            actor: SCHEDULE_ACTOR.to_string(),
            items,
            mover_event: Some(event),
        };
        made.push(store.create_campaign(&c)?.id);
    }
    if !nothing.is_empty() {
        store.movers_checked(&nothing)?;
    }
    Ok((made, unreviewed))
}

/// One pass of the `campaigns` schedule, as [`SCHEDULE_ACTOR`]: mover micro-reviews, reminders,
/// escalations past `escalate_after`, `on_timeout` at the due date, then the revoke decisions
/// carried out.
pub fn run_schedule(app: &App) -> Result<Pass> {
    let store = app.store();
    let now = app.clock().now();
    let (made, unreviewed) = mover_reviews(app)?;
    let mut pass = Pass { mover_reviews: made, mover_unreviewed: unreviewed, ..Pass::default() };
    let open: Vec<CampaignRecord> = store.campaigns()?.into_iter().filter(|c| c.state == CampaignState::Open).collect();
    if open.is_empty() {
        pass.applied = apply_revocations(app, SCHEDULE_ACTOR)?;
        return Ok(pass);
    }
    // Who manages whom is read only when a pass escalates something.
    let mut known: Option<People> = None;
    let mut people = |app: &App| -> Result<People> {
        if let Some(p) = &known {
            return Ok(p.clone());
        }
        let p = People::new(&app.store().identities(&app.config().schema, None)?, app.config());
        known = Some(p.clone());
        Ok(p)
    };
    for c in &open {
        let undecided = store.campaign_items(&ItemFilter { campaign: Some(c.id), reviewer: None, open_only: true })?;
        let due = parse_stamp(&c.due_at).is_some_and(|d| now >= d);
        if due && c.timed_out_at.is_none() {
            let justification = format!("not reviewed by the due date {}; on_timeout = {}", c.due_at, c.on_timeout);
            let mut t = Timeout { campaign: c.id, decisions: Vec::new(), escalations: Vec::new() };
            let people = if c.on_timeout == OnTimeout::Escalate && !undecided.is_empty() {
                people(app)?
            } else {
                People::default()
            };
            for i in &undecided {
                let decision = match c.on_timeout {
                    OnTimeout::Revoke => ReviewDecision::Revoke,
                    OnTimeout::Keep => ReviewDecision::Keep,
                    OnTimeout::Escalate => {
                        match people.manager_of(&i.reviewer).filter(|(m, _)| *m != i.identity) {
                            Some((to, _)) => t.escalations.push(Reassignment {
                                item: i.id,
                                from: i.reviewer.clone(),
                                to,
                                note: justification.clone(),
                                escalation: true,
                            }),
                            None => pass.no_manager += 1,
                        }
                        continue;
                    }
                };
                t.decisions.push(ItemDecision {
                    item: i.id,
                    decision,
                    justification: justification.clone(),
                    by: SCHEDULE_ACTOR.to_string(),
                    reviewer: i.reviewer.clone(),
                    actor: SCHEDULE_ACTOR.to_string(),
                });
            }
            pass.escalated += t.escalations.len();
            store.time_out(&t, SCHEDULE_ACTOR)?;
            pass.timed_out.push(c.id);
            continue;
        }
        if !due && c.reminded_at.is_none() && select::reminder_due(parse_stamp(&c.due_at), now) {
            let mut open: BTreeMap<String, usize> = BTreeMap::new();
            for i in &undecided {
                *open.entry(i.reviewer.clone()).or_default() += 1;
            }
            let reviewers: Vec<(String, usize)> = open.into_iter().collect();
            if !reviewers.is_empty() {
                pass.reminded += reviewers.len();
                store.remind(c.id, &reviewers, SCHEDULE_ACTOR)?;
            }
        }
        let created = parse_stamp(&c.created_at).unwrap_or(now);
        let waiting: Vec<&ItemRecord> = undecided.iter().filter(|i| i.escalated_at.is_none()).collect();
        if !due && !waiting.is_empty() && select::escalation_due(created, c.escalate_after_secs, now) {
            let people = people(app)?;
            let mut escalations = Vec::new();
            for i in waiting {
                match people.manager_of(&i.reviewer).filter(|(m, _)| *m != i.identity) {
                    Some((to, _)) => escalations.push(Reassignment {
                        item: i.id,
                        from: i.reviewer.clone(),
                        to,
                        note: format!(
                            "not reviewed within {}: escalated to the reviewer's manager",
                            crate::guard::window_text(c.escalate_after_secs.unwrap_or_default())
                        ),
                        escalation: true,
                    }),
                    None => pass.no_manager += 1,
                }
            }
            if !escalations.is_empty() {
                pass.escalated += escalations.len();
                store.reassign_items(&escalations, SCHEDULE_ACTOR)?;
            }
        }
    }
    pass.applied = apply_revocations(app, SCHEDULE_ACTOR)?;
    Ok(pass)
}
