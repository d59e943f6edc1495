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
}

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
        Overrides { grants, ended: Vec::new(), revoked: self.revoked.clone() }
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty() && self.ended.is_empty() && self.revoked.is_empty()
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
    Ok(out)
}

/// Desired entitlements of one identity, the policy's and its `overrides`' grants less what they
/// revoked, with the SoD rules applied against what it holds. A terminated identity desires
/// nothing.
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
