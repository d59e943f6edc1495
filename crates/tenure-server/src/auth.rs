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
/// that address is answered 429 until the window has passed.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: HashMap<IpAddr, (Instant, u32)>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, failures: HashMap::new() }
    }

    /// Whether `addr` is throttled now.
    pub fn blocked(&mut self, addr: IpAddr, now: Instant) -> bool {
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
        let window = self.window;
        let entry = self.failures.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        // Bound the table: forget addresses whose window has passed.
        if self.failures.len() > 10_000 {
            self.failures.retain(|_, (since, _)| now.duration_since(*since) < window);
        }
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
}
