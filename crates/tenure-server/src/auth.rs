//! API tokens, scopes and what each scope may do (the design's section 10), and the throttle on failed
//! attempts.
//!
//! A token is `tnr_` followed by 32 random bytes in base64url; it is shown once at creation and
//! only its SHA-256 is stored. Tokens carry 256 bits of entropy, so a fast hash is enough: there
//! is nothing to brute-force, and a lookup by hash reveals nothing about other tokens.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What a token may do; the kinds live in `tenure-core`, so the store keeps them as an enum.
pub use tenure_core::Scope;

/// What a route does, for authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read lifecycle state: identities, plans, cases, approvals, findings, exceptions.
    Read,
    /// Change state as operations staff do: imports, events, apply, reconcile, tasks.
    Operate,
    /// Decide: approve or reject, requests, reviews.
    Approve,
    /// Verify and export the audit trail.
    Audit,
    /// Push records for one source (webhook, SCIM).
    Push { source: &'a str },
    /// Manage tokens and other administration.
    Administer,
}

/// Whether a token with `scope` (bound to `source` for source tokens) may perform `action`.
pub fn allowed(scope: Scope, source: Option<&str>, action: Action<'_>) -> bool {
    match (scope, action) {
        (Scope::Admin, _) => true,
        (Scope::Source, Action::Push { source: s }) => source == Some(s),
        (Scope::Source, _) => false,
        (_, Action::Push { .. } | Action::Administer) => false,
        (Scope::Operator, a) => matches!(a, Action::Read | Action::Operate),
        (Scope::Approver, a) => matches!(a, Action::Read | Action::Approve),
        (Scope::Auditor, a) => matches!(a, Action::Read | Action::Audit),
    }
}

/// A new token's text, its stored hash, and the shape check before any lookup: the engine's
/// (`tenure token create` makes tokens there), named here for the server.
pub use tenure_engine::tokens::{generate as generate_token, hash as token_hash, looks_like as looks_like_token};

/// Failed authentication attempts per client address: after `limit` failures within `window`,
/// that address's failing attempts are answered 429 until the window has passed (a valid token
/// from it is still served: see [`crate::access`]). An IPv6 client counts by its /64, the block
/// one host is given, so rotating through its own addresses does not reset the count.
///
/// The table is two generations, swapped once per window: failures are counted in the current
/// one, an address from the previous one is still seen (and moved over when it fails again),
/// and at the swap the previous generation is dropped whole. Every call is O(1), so a flood of
/// failures from new addresses never holds the lock (which valid tokens also take) for a sweep.
/// Each generation holds at most half of [`Throttle::MAX_ADDRESSES`]: past that, an address
/// not seen yet is not recorded until the next swap (tokens cannot be guessed, so the throttle
/// is a brake on noise, and memory is bounded whatever a client spreads its attempts over).
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    current: HashMap<IpAddr, (Instant, u32)>,
    previous: HashMap<IpAddr, (Instant, u32)>,
    /// When `current` was started (`None` before the first failure).
    started: Option<Instant>,
    /// Generations swapped so far.
    swaps: u64,
}

impl Throttle {
    /// The most addresses the table holds.
    pub const MAX_ADDRESSES: usize = 100_000;

    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, current: HashMap::new(), previous: HashMap::new(), started: None, swaps: 0 }
    }

    /// The key an address counts under: IPv4 as is (also when written as IPv6), IPv6 by its /64.
    fn key(addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(_) => addr,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            },
        }
    }

    /// Swaps the generations once `current` is a window old (both go once it is two).
    fn age(&mut self, now: Instant) {
        let Some(started) = self.started else { return };
        let age = now.saturating_duration_since(started);
        if age < self.window {
            return;
        }
        self.previous =
            if age < self.window.saturating_mul(2) { std::mem::take(&mut self.current) } else { HashMap::new() };
        self.current = HashMap::new();
        self.started = Some(now);
        self.swaps += 1;
    }

    /// An address's failures still within the window.
    fn count(&self, addr: IpAddr, now: Instant) -> Option<(Instant, u32)> {
        let found = self.current.get(&addr).or_else(|| self.previous.get(&addr)).copied()?;
        (now.saturating_duration_since(found.0) < self.window).then_some(found)
    }

    /// Whether `addr` is throttled now.
    pub fn blocked(&mut self, addr: IpAddr, now: Instant) -> bool {
        self.age(now);
        self.count(Self::key(addr), now).is_some_and(|(_, n)| n >= self.limit)
    }

    /// Records a failed attempt from `addr`.
    pub fn fail(&mut self, addr: IpAddr, now: Instant) {
        let addr = Self::key(addr);
        self.age(now);
        if self.started.is_none() {
            self.started = Some(now);
        }
        let (since, n) = self.count(addr, now).unwrap_or((now, 0));
        if !self.current.contains_key(&addr) {
            if self.current.len() >= Self::MAX_ADDRESSES / 2 {
                return;
            }
            self.previous.remove(&addr);
        }
        self.current.insert(addr, (since, n.saturating_add(1)));
    }

    /// Addresses held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_what_the_design_says() {
        use Action::*;
        let cases: &[(Scope, Option<&str>, Action<'_>, bool)] = &[
            (Scope::Admin, None, Administer, true),
            (Scope::Admin, None, Push { source: "hr" }, true),
            (Scope::Operator, None, Operate, true),
            (Scope::Operator, None, Approve, false),
            (Scope::Operator, None, Audit, false),
            (Scope::Operator, None, Administer, false),
            (Scope::Approver, None, Approve, true),
            (Scope::Approver, None, Operate, false),
            (Scope::Auditor, None, Audit, true),
            (Scope::Auditor, None, Read, true),
            (Scope::Auditor, None, Operate, false),
            (Scope::Source, Some("hr"), Push { source: "hr" }, true),
            (Scope::Source, Some("hr"), Push { source: "crm" }, false),
            (Scope::Source, Some("hr"), Read, false),
            (Scope::Operator, None, Push { source: "hr" }, false),
        ];
        for (scope, source, action, want) in cases {
            assert_eq!(allowed(*scope, *source, *action), *want, "{scope:?} {source:?} {action:?}");
        }
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert!(!looks_like_token("tnr_short"));
        assert!(!looks_like_token("Bearer x"));
        assert_eq!(token_hash(&a).len(), 64);
        assert!(!token_hash(&a).contains(&a[4..]));
    }

    #[test]
    fn failures_throttle_an_address_for_a_window() {
        let mut t = Throttle::new(3, Duration::from_secs(60));
        let ip: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(!t.blocked(ip, t0));
            t.fail(ip, t0);
        }
        assert!(t.blocked(ip, t0 + Duration::from_secs(10)));
        assert!(!t.blocked(other, t0), "only the failing address");
        assert!(!t.blocked(ip, t0 + Duration::from_secs(61)), "the window passes");
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_the_table_is_bounded() {
        let mut t = Throttle::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        t.fail("2001:db8:1:2::1".parse().unwrap(), t0);
        t.fail("2001:db8:1:2:ffff::9".parse().unwrap(), t0);
        assert!(t.blocked("2001:db8:1:2::77".parse().unwrap(), t0), "the same /64");
        assert!(!t.blocked("2001:db8:1:3::1".parse().unwrap(), t0), "another /64");
        let mut full = Throttle::new(1, Duration::from_secs(60));
        for i in 0..=u32::try_from(Throttle::MAX_ADDRESSES).unwrap() {
            full.fail(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(full.len() <= Throttle::MAX_ADDRESSES);
        // Once a window passes, room is made again; after two, the old addresses are gone.
        full.fail([255, 255, 255, 255].into(), t0 + Duration::from_secs(61));
        assert!(full.blocked([255, 255, 255, 255].into(), t0 + Duration::from_secs(62)));
        full.fail([255, 255, 255, 254].into(), t0 + Duration::from_secs(125));
        assert_eq!(full.len(), 2, "the flood's addresses are gone, the two recent ones kept");
    }

    #[test]
    fn a_flood_of_failures_from_new_addresses_costs_one_swap_per_window() {
        // A full table and 200,000 more failures from addresses never seen, all in one window:
        // no sweep of the table happens per failure, only one swap at the window's end.
        let mut t = Throttle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..300_000u32 {
            t.fail(IpAddr::from(i.to_be_bytes()), t0 + Duration::from_millis(u64::from(i) / 10));
        }
        assert_eq!(t.swaps, 0, "no swap within the window");
        assert!(t.len() <= Throttle::MAX_ADDRESSES);
        for i in 0..1000u32 {
            t.fail(IpAddr::from((i + 1_000_000).to_be_bytes()), t0 + Duration::from_secs(61));
        }
        assert_eq!(t.swaps, 1, "one swap for a thousand failures after the window");
        // An address failing across the swap keeps its count while the window lasts.
        let ip: IpAddr = [10, 9, 9, 9].into();
        let mut u = Throttle::new(3, Duration::from_secs(60));
        u.fail([1, 1, 1, 1].into(), t0);
        u.fail(ip, t0 + Duration::from_secs(50));
        u.fail(ip, t0 + Duration::from_secs(55));
        u.fail(ip, t0 + Duration::from_secs(70));
        assert_eq!(u.swaps, 1, "the generation started at t0 was swapped");
        assert!(u.blocked(ip, t0 + Duration::from_secs(71)), "three failures within 20 s");
        assert!(!u.blocked(ip, t0 + Duration::from_secs(111)), "its window passed");
    }
}
