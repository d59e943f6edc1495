//! Desired state: which entitlements each identity should hold under the policy, plus the
//! per-identity [`Overrides`] every planning path passes: approved access requests add to it,
//! certification reviews' revoke decisions take from it.
//!
//! Every path that plans an identity (import, push and the date schedules through it, the
//! release of a held batch, an access request's grant, expiry and revocation, `explain`,
//! `simulate`) reads the overrides with [`overrides`] and passes them to [`for_identity`], so a
//! later import never revokes a requested grant, an expired one is revoked by whichever path
//! plans the identity next, and access a reviewer revoked is never granted again while its
//! `manual_override` exception stands. Reconciliation compares the targets with the committed
//! holdings, which already include what an override granted (and lack what a review revoked), so
//! it needs none.

use crate::{Engine, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenure_core::plan::Holdings;
use tenure_core::{Entitlement, Identity, Status};
use tenure_policy::compiled::Scratch;
use tenure_policy::{Desired, SodHit};

/// What one identity's desired state has beyond (or, later, short of) what the policy's
/// birthright roles give it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Approved, unexpired requested grants: desired, with their reason (`request:ID`) in place
    /// of a role id.
    pub grants: Vec<OverrideGrant>,
    /// Grants in force until now that are no longer (a request past its expiry, or the one
    /// being revoked): not desired; only named as the reason of their revocation.
    pub ended: Vec<OverrideGrant>,
    /// Entitlements a certification review revoked (while the review's `manual_override`
    /// exception is not resolved): never desired, whatever the roles or a request say.
    pub revoked: BTreeSet<Entitlement>,
    /// The identity's open access requests (pending or granted): a role with `approval` whose
    /// birthright condition matches gets a request only when none is open for it, and the ones
    /// the policy opened end when the condition stops matching.
    pub requests: Vec<OpenRequest>,
}

/// An open access request of an identity, as planning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    pub id: i64,
    pub role: String,
    pub state: tenure_core::RequestState,
    /// Opened by the policy because the role's birthright condition matched (not asked by a
    /// person): it ends when the condition stops matching.
    pub birthright: bool,
}

/// The `via` of a request the policy opens for a role with `approval` whose `when` matches.
pub const BIRTHRIGHT_VIA: &str = "birthright";
/// The requester of such a request.
pub const BIRTHRIGHT_REQUESTER: &str = "policy";

/// One entitlement an override adds, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideGrant {
    pub entitlement: Entitlement,
    /// What the plan's operation names as its rule: `request:ID`.
    pub reason: String,
}

impl Overrides {
    /// The overrides as they stood before the plan: what was granted, ended ones included (the
    /// reasons of revocations).
    pub fn before(&self) -> Overrides {
        let mut grants = self.grants.clone();
        grants.extend(self.ended.iter().cloned());
        Overrides { grants, ended: Vec::new(), revoked: self.revoked.clone(), requests: self.requests.clone() }
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty() && self.ended.is_empty() && self.revoked.is_empty() && self.requests.is_empty()
    }
}

/// The overrides of the given identities (or of every identity), by identity: each granted
/// request's entitlements, in `grants` until its expiry and in `ended` from then on (by the
/// store's clock), until the `grant_expiry` job ends the request; and what reviews revoked.
pub fn overrides(engine: &Engine<'_>, identities: Option<&[&str]>) -> Result<HashMap<String, Overrides>> {
    let grants = engine.store.request_grants(identities)?;
    let now = engine.store.clock().now();
    let mut out: HashMap<String, Overrides> = HashMap::with_capacity(grants.len());
    for (identity, list) in grants {
        let o = out.entry(identity).or_default();
        for g in list {
            let live = g.expires_at.as_deref().and_then(tenure_core::clock::parse_stamp).is_none_or(|at| at > now);
            for e in &g.entitlements {
                let Ok(entitlement) = Entitlement::parse(e) else { continue };
                let grant = OverrideGrant { entitlement, reason: format!("request:{}", g.request_id) };
                if live { o.grants.push(grant) } else { o.ended.push(grant) }
            }
        }
    }
    for (identity, revoked) in crate::campaigns::overrides(engine.store, identities)? {
        out.entry(identity).or_default().revoked = revoked;
    }
    // Only a policy with a birthright role that needs approval plans from the open requests.
    if engine.policy.roles.iter().any(gated) {
        let wanted: Option<std::collections::HashSet<&str>> = identities.map(|ids| ids.iter().copied().collect());
        for r in engine.store.requests(true)? {
            if wanted.as_ref().is_some_and(|w| !w.contains(r.identity.as_str())) {
                continue;
            }
            let birthright = r.via == BIRTHRIGHT_VIA && r.requester == BIRTHRIGHT_REQUESTER;
            out.entry(r.identity.clone()).or_default().requests.push(OpenRequest {
                id: r.id,
                role: r.role,
                state: r.state,
                birthright,
            });
        }
    }
    Ok(out)
}

/// Whether a role's birthright condition grants nothing by itself: it has a `when` and an
/// `approval`, so a match becomes an access request, granted only once approved.
pub fn gated(role: &tenure_policy::Role) -> bool {
    role.when.is_some() && !role.approval.is_empty()
}

/// The roles with `approval` whose birthright condition `identity` matches (none for a
/// terminated identity), as indices into the policy's roles.
pub fn gated_roles(engine: &Engine<'_>, identity: &Identity, scratch: &mut Scratch) -> Vec<usize> {
    if identity.status == Status::Terminated || !engine.policy.roles.iter().any(gated) {
        return Vec::new();
    }
    let mut roles = Vec::new();
    engine.compiled.matching_roles(identity, scratch, &mut roles);
    roles.retain(|&r| engine.policy.roles.get(r).is_some_and(gated));
    roles
}

/// Desired entitlements of one identity, the policy's and its `overrides`' grants less what they
/// revoked, with the SoD rules applied against what it holds. A terminated identity desires
/// nothing. A role with `approval` grants nothing by its condition ([`gated`]): only its
/// approved request does.
pub fn for_identity(
    engine: &Engine<'_>,
    identity: &Identity,
    held: &Holdings,
    overrides: &Overrides,
    scratch: &mut Scratch,
) -> (Desired, Vec<SodHit>) {
    if identity.status == Status::Terminated {
        return (Desired::new(), Vec::new());
    }
    let mut roles = Vec::new();
    engine.compiled.matching_roles(identity, scratch, &mut roles);
    // INVARIANT: a role with `approval` is never granted by its condition alone: a match becomes
    // an access request (`import::plan_event`), and only an approved, unexpired one is desired
    // (through `overrides.grants`).
    roles.retain(|&r| engine.policy.roles.get(r).is_none_or(|role| !gated(role)));
    let mut desired = engine.policy.desired(&roles);
    for g in &overrides.grants {
        let why =
            desired.entry(g.entitlement.target.clone()).or_default().entry(g.entitlement.name.clone()).or_default();
        if !why.contains(&g.reason) {
            why.push(g.reason.clone());
        }
    }
    // Only targets that exist in the config can be planned; policy load guarantees this, but a
    // config edit could remove a target after the fact.
    desired.retain(|t, _| engine.config.target(t).is_some());
    for e in &overrides.revoked {
        if let Some(names) = desired.get_mut(&e.target) {
            names.remove(&e.name);
        }
    }
    desired.retain(|_, names| !names.is_empty());
    let held_set: BTreeSet<Entitlement> = held
        .iter()
        .flat_map(|(t, a)| a.grants.iter().map(move |g| Entitlement { target: t.clone(), name: g.clone() }))
        .collect();
    let hits = engine.policy.apply_sod(&mut desired, &held_set);
    (desired, hits)
}

/// Entitlement names per target, the shape the planner wants.
pub fn names(desired: &Desired) -> BTreeMap<String, BTreeSet<String>> {
    desired.iter().map(|(t, m)| (t.clone(), m.keys().cloned().collect())).collect()
}

/// Recomputes the desired entitlements of every identity, in parallel over the available
/// cores. Returns the number of entitlements assigned in total. Used by `simulate` and the
/// recompute benchmark.
pub fn recompute_all(engine: &Engine<'_>, identities: &[Identity]) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).max(1);
    let chunk = identities.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = identities
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut scratch = Scratch::default();
                    let mut roles = Vec::new();
                    let mut seen: Vec<u32> = Vec::new();
                    let mut total = 0usize;
                    for identity in part {
                        if identity.status == Status::Terminated {
                            continue;
                        }
                        roles.clear();
                        engine.compiled.matching_roles(identity, &mut scratch, &mut roles);
                        seen.clear();
                        for &r in &roles {
                            if let Some(role) = engine.policy.roles.get(r) {
                                seen.extend(role.grant_ids.iter().copied());
                            }
                        }
                        seen.sort_unstable();
                        seen.dedup();
                        total += seen.len();
                    }
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    })
}
