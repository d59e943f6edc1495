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
/// one host is given, so rotating through its own addresses does not reset the count. The table
/// holds at most [`Throttle::MAX_ADDRESSES`] addresses: past that, an address not seen yet is
/// not recorded (tokens cannot be guessed, so the throttle is a brake on noise, and memory is
/// bounded whatever a client spreads its attempts over).
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: HashMap<IpAddr, (Instant, u32)>,
}

impl Throttle {
    /// The most addresses the table holds.
    pub const MAX_ADDRESSES: usize = 100_000;

    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, failures: HashMap::new() }
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

    /// Whether `addr` is throttled now.
    pub fn blocked(&mut self, addr: IpAddr, now: Instant) -> bool {
        let addr = Self::key(addr);
        match self.failures.get(&addr) {
            Some((since, n)) if now.duration_since(*since) < self.window => *n >= self.limit,
            Some(_) => {
                self.failures.remove(&addr);
                false
            }
            None => false,
        }
    }

    /// Records a failed attempt from `addr`.
    pub fn fail(&mut self, addr: IpAddr, now: Instant) {
        let addr = Self::key(addr);
        let window = self.window;
        if !self.failures.contains_key(&addr) && self.failures.len() >= Self::MAX_ADDRESSES {
            // Forget addresses whose window has passed; if the table is still full, this one
            // goes unrecorded.
            self.failures.retain(|_, (since, _)| now.duration_since(*since) < window);
            if self.failures.len() >= Self::MAX_ADDRESSES {
                return;
            }
        }
        let entry = self.failures.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
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
        assert_eq!(full.failures.len(), Throttle::MAX_ADDRESSES);
        // Once their windows pass, room is made again.
        full.fail([255, 255, 255, 255].into(), t0 + Duration::from_secs(61));
        assert_eq!(full.failures.len(), 1);
    }
}
