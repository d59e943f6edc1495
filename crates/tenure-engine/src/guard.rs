//! The guard: the limits past which a batch is held whole for a person to approve.
//!
//! Pure decisions over counts the caller made. Imports, pushes and reconciliation fixes all
//! pass the same limits, so a broken feed, a poisoned webhook and a bad remediation run are
//! stopped the same way.

use std::collections::HashSet;
use tenure_core::config::GuardConfig;
use tenure_policy::Policy;

/// Entitlements that a `privileged` role grants, as `(target, name)`.
pub fn privileged_entitlements(policy: &Policy) -> HashSet<(&str, &str)> {
    policy
        .roles
        .iter()
        .filter(|r| r.privileged)
        .flat_map(|r| r.grant.iter().map(|e| (e.target.as_str(), e.name.as_str())))
        .collect()
}

/// A window length as the config writes it (`1h`, `30m`, `1d`, `90s`).
pub fn window_text(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What a batch would do, counted per identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Identities leaving (terminated).
    pub leavers: usize,
    /// Identities losing any access: leavers, suspensions, movers losing a grant, queued
    /// provisioning withdrawn, accounts disabled or grants revoked by a fix.
    pub losses: usize,
    /// Identities gaining a privileged entitlement (or a request for a privileged role that its
    /// condition opened).
    pub privileged: usize,
    /// The population the fractions are of.
    pub population: usize,
}

impl Counts {
    /// Why the batch must be held, if it must.
    pub fn check(&self, g: &GuardConfig) -> Option<String> {
        let population = self.population;
        let check = |n: usize, what: &str, max: u64, key: &str, fraction: f64, fkey: &str| -> Option<String> {
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            if n > max {
                return Some(format!("{n} {what} exceed {key} = {max}"));
            }
            let share = if population > 0 { n as f64 / population as f64 } else { 0.0 };
            (population > 0 && share > fraction).then(|| {
                format!("{n} {what} are {:.1}% of {population} identities, over {fkey} = {fraction}", share * 100.0)
            })
        };
        let max_privileged = usize::try_from(g.max_privileged_grants).unwrap_or(usize::MAX);
        check(self.leavers, "leavers", g.max_leavers, "max_leavers", g.max_leaver_fraction, "max_leaver_fraction")
            .or_else(|| {
                check(
                    self.losses,
                    "identities losing access",
                    g.max_access_losses,
                    "max_access_losses",
                    g.max_access_loss_fraction,
                    "max_access_loss_fraction",
                )
            })
            .or_else(|| {
                (self.privileged > max_privileged).then(|| {
                    format!(
                        "{} identities gaining privileged access exceed max_privileged_grants = {max_privileged}",
                        self.privileged
                    )
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(counts: Counts, want: Option<&str>) {
        let got = counts.check(&GuardConfig::default());
        match want {
            None => assert_eq!(got, None, "{counts:?}"),
            Some(w) => assert!(got.as_deref().is_some_and(|g| g.contains(w)), "{counts:?}: {got:?}"),
        }
    }

    #[test]
    fn each_limit_holds_a_batch() {
        let base = Counts { population: 1000, ..Counts::default() };
        check(base, None);
        check(Counts { leavers: 25, losses: 25, ..base }, None);
        check(Counts { leavers: 26, losses: 26, ..base }, Some("26 leavers exceed max_leavers = 25"));
        check(Counts { leavers: 6, population: 100, ..base }, Some("over max_leaver_fraction = 0.05"));
        check(Counts { losses: 101, ..base }, Some("exceed max_access_losses = 100"));
        check(Counts { losses: 11, population: 100, ..base }, Some("over max_access_loss_fraction = 0.1"));
        check(Counts { privileged: 5, ..base }, None);
        check(Counts { privileged: 6, ..base }, Some("6 identities gaining privileged access"));
        // The first import has no population: only the absolute limits apply.
        check(Counts { leavers: 0, losses: 0, privileged: 0, population: 0 }, None);
        check(Counts { privileged: 100, population: 0, ..base }, Some("privileged"));
    }
}
