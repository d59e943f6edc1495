//! Non-human identities: credential rotation on request
//! (`tenure rotate`), on a schedule for credentials past their `credential_max_age`, and the
//! findings reconciliation reports about them (`stale_credential`, `nhi_without_owner`).
//!
//! A credential's age is measured from the later of the source's `credential_rotated` date and
//! Tenure's last verified `rotate_credential` of that account. An account with neither has an
//! unknown age, which counts as stale once a maximum age applies: a credential nobody can date
//! cannot be shown to be fresh. The maximum is the identity's `credential_max_age` attribute
//! (`90d`, `12h`), else `[nhi] credential_max_age`; without either, nothing is stale.
//!
//! Which accounts have a credential to rotate: the identity's enabled accounts, as recorded in
//! its holdings, in targets that can rotate one (PostgreSQL and LDAP). Rotation itself is the
//! executor's (`executor::rotate`): the secret is generated there and goes only to the secret
//! sink (`sink`).

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tenure_core::clock::parse_stamp;
use tenure_core::config::Config;
use tenure_core::plan::Holdings;
use tenure_core::{FindingKind, Identity, OpKind, Status};
use tenure_proto as proto;
use tenure_store::{Finding, Planned, RotationIn, Rotations};

/// The accounts of `identity` whose credential can be rotated: `(target, account name)`.
pub fn rotatable(config: &Config, holdings: &Holdings) -> Vec<(String, Option<String>)> {
    holdings
        .iter()
        .filter(|(t, a)| {
            a.exists && a.enabled && config.target(t).is_some_and(|t| t.kind.supports(OpKind::RotateCredential))
        })
        .map(|(t, a)| (t.clone(), a.name.clone()))
        .collect()
}

/// The maximum credential age of `identity` in seconds: its own attribute, else the config's.
/// An attribute that is not a duration is reported as the reason, never ignored.
pub fn max_age(config: &Config, identity: &Identity) -> Result<Option<u64>, String> {
    match identity.attr(&config.schema, "credential_max_age").filter(|v| !v.trim().is_empty()) {
        Some(v) => tenure_core::config::max_age_secs(v).map(Some).ok_or_else(|| {
            format!("`credential_max_age` `{}` is not a duration like `90d`", tenure_core::text::escape(v))
        }),
        None => Ok(config.nhi.credential_max_age_secs),
    }
}

/// When `identity`'s credential in `target` was last rotated, as far as anyone knows.
pub fn rotated_at(
    config: &Config,
    identity: &Identity,
    target: &str,
    last: &HashMap<(String, String), String>,
) -> Option<DateTime<Utc>> {
    let source = identity
        .attr(&config.schema, "credential_rotated")
        .and_then(tenure_core::date::parse_date)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc());
    let ours = last.get(&(identity.id.to_string(), target.to_string())).and_then(|s| parse_stamp(s));
    source.max(ours)
}

/// A stale credential: its account, its age (`None`: unknown) and the maximum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub identity: String,
    pub target: String,
    pub account: Option<String>,
    pub age_secs: Option<i64>,
    pub max_secs: u64,
}

impl Stale {
    pub fn describe(&self) -> String {
        let age = match self.age_secs {
            Some(s) => format!("{} day(s) old", s / 86_400),
            None => "of unknown age (never rotated by Tenure, no `credential_rotated`)".to_string(),
        };
        format!("credential in `{}` is {age}; the maximum is {} day(s)", self.target, self.max_secs / 86_400)
    }
}

/// The stale credentials of active non-human identities at `now`. Without IO: `holdings` and
/// `last` (verified rotations) come from the store.
pub fn stale(
    config: &Config,
    identities: &[Identity],
    holdings: &HashMap<String, Holdings>,
    last: &HashMap<(String, String), String>,
    now: DateTime<Utc>,
) -> Vec<Stale> {
    let mut out = Vec::new();
    for i in identities.iter().filter(|i| i.is_nhi() && i.status == Status::Active) {
        let Ok(Some(max)) = max_age(config, i) else { continue };
        let Some(h) = holdings.get(&*i.id) else { continue };
        for (target, account) in rotatable(config, h) {
            let age = rotated_at(config, i, &target, last).map(|t| (now - t).num_seconds());
            if age.is_none_or(|a| a > i64::try_from(max).unwrap_or(i64::MAX)) {
                out.push(Stale { identity: i.id.to_string(), target, account, age_secs: age, max_secs: max });
            }
        }
    }
    out
}

/// Why a non-human identity has no active owner, if it has none: no `owner_id`, an owner Tenure
/// does not know, or one who is not active.
pub fn ownerless(config: &Config, nhi: &Identity, by_id: &HashMap<&str, &Identity>) -> Option<String> {
    if !nhi.is_nhi() || nhi.status == Status::Terminated {
        return None;
    }
    match nhi.attr(&config.schema, "owner_id").filter(|o| !o.trim().is_empty()) {
        None => Some(format!("`{}` ({}) has no owner", nhi.id, nhi.kind)),
        Some(owner) => match by_id.get(owner) {
            None => Some(format!("`{}` ({}) is owned by `{owner}`, who is not a known identity", nhi.id, nhi.kind)),
            Some(o) if o.status != Status::Active => {
                Some(format!("`{}` ({}) is owned by `{owner}`, who is {}", nhi.id, nhi.kind, o.status))
            }
            Some(_) => None,
        },
    }
}

/// Reconciliation's findings about non-human identities with an enabled account in `target`:
/// stale credentials (or a `credential_max_age` that is not a duration) and owners who are not
/// active. Without IO: everything comes from the store, read once per reconciliation.
pub fn findings(
    config: &Config,
    target: &str,
    identities: &HashMap<String, Identity>,
    holdings: &HashMap<String, Holdings>,
    last: &HashMap<(String, String), String>,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let by_id: HashMap<&str, &Identity> = identities.iter().map(|(k, i)| (k.as_str(), i)).collect();
    let mut nhis: Vec<&Identity> = identities
        .values()
        .filter(|i| i.is_nhi())
        .filter(|i| holdings.get(&*i.id).and_then(|h| h.get(target)).is_some_and(|a| a.exists && a.enabled))
        .collect();
    nhis.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = Vec::new();
    for i in &nhis {
        let account = holdings.get(&*i.id).and_then(|h| h.get(target)).and_then(|a| a.name.clone());
        let finding = |kind, detail| Finding {
            kind,
            target: target.to_string(),
            account: account.clone(),
            identity: Some(i.id.to_string()),
            entitlement: None,
            detail,
        };
        if let Some(why) = ownerless(config, i, &by_id) {
            out.push(finding(
                FindingKind::NhiWithoutOwner,
                format!("{why}; its account in `{target}` is still enabled"),
            ));
        }
        if let Err(why) = max_age(config, i) {
            out.push(finding(
                FindingKind::StaleCredential,
                format!("`{}`: {why}, so its credential's age cannot be judged", i.id),
            ));
        }
    }
    let active: Vec<Identity> = nhis.into_iter().cloned().collect();
    for s in stale(config, &active, holdings, last, now).into_iter().filter(|s| s.target == target) {
        out.push(Finding {
            kind: FindingKind::StaleCredential,
            target: target.to_string(),
            account: s.account.clone(),
            identity: Some(s.identity.clone()),
            entitlement: None,
            detail: format!("`{}`: {}", s.identity, s.describe()),
        });
    }
    out
}

/// Plans the rotation of `id`'s credentials (in `target` only, if given), audited as `actor`.
/// Refused, changing nothing: an unknown identity, one that is not a service or bot, one that is
/// not active, an unknown target, or nothing to rotate there.
pub fn rotate(
    config: &Config,
    store: &dyn tenure_store::Backend,
    id: &str,
    target: Option<&str>,
    actor: &str,
    why: &str,
) -> crate::Result<Vec<proto::Rotation>> {
    use crate::EngineError::Invalid;
    if let Some(t) = target
        && config.target(t).is_none()
    {
        let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        return Err(crate::EngineError::UnknownTarget(t.to_string(), names.join(", ")));
    }
    let identity = store
        .identity(&config.schema, id)?
        .ok_or_else(|| tenure_store::StoreError::NotFound(format!("identity `{}`", tenure_core::text::escape(id))))?;
    if !identity.is_nhi() {
        return Err(Invalid(format!(
            "`{id}` is {} {}: only service and bot identities have credentials Tenure rotates",
            if identity.kind.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" },
            identity.kind
        )));
    }
    if identity.status != Status::Active {
        return Err(Invalid(format!(
            "`{id}` is {}: only an active identity's credentials are rotated",
            identity.status
        )));
    }
    let holdings = store.holdings(id)?;
    let mut accounts = rotatable(config, &holdings);
    if let Some(t) = target {
        accounts.retain(|(name, _)| name == t);
    }
    if accounts.is_empty() {
        return Err(Invalid(match target {
            Some(t) => format!("`{id}` has no enabled account in `{t}` whose credential can be rotated"),
            None => format!("`{id}` has no enabled account in a target that can rotate credentials (postgres, ldap)"),
        }));
    }
    let ops: Vec<RotationIn> = accounts
        .iter()
        .map(|(t, a)| RotationIn {
            identity: id.to_string(),
            target: t.clone(),
            account: a.clone(),
            why: why.to_string(),
        })
        .collect();
    let planned = store.plan_rotations(&Rotations { actor: actor.to_string(), ops })?;
    Ok(accounts
        .into_iter()
        .zip(planned)
        .map(|((target, account), p)| {
            let (operation, queued) = match p {
                Planned::Queued { operation, .. } => (operation, true),
                Planned::AlreadyQueued { operation } => (operation, false),
            };
            proto::Rotation { identity: id.to_string(), target, account, operation, queued }
        })
        .collect())
}

/// The schedule's pass: every stale credential of an active NHI planned for rotation, audited
/// as `actor` (`schedule:credentials`). Returns how many operations were added.
pub fn rotate_stale(config: &Config, store: &dyn tenure_store::Backend, actor: &str) -> crate::Result<usize> {
    let now = store.clock().now();
    let identities: Vec<Identity> = store
        .identities(&config.schema, None)?
        .into_iter()
        .filter(|i| i.is_nhi() && i.status == Status::Active)
        .collect();
    if identities.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = identities.iter().map(|i| &*i.id).collect();
    let mut holdings = HashMap::with_capacity(ids.len());
    for id in &ids {
        holdings.insert((*id).to_string(), store.holdings(id)?);
    }
    let last = store.last_rotations(Some(&ids))?;
    let ops: Vec<RotationIn> = stale(config, &identities, &holdings, &last, now)
        .into_iter()
        .map(|s| RotationIn { why: s.describe(), identity: s.identity, target: s.target, account: s.account })
        .collect();
    if ops.is_empty() {
        return Ok(0);
    }
    let planned = store.plan_rotations(&Rotations { actor: actor.to_string(), ops })?;
    Ok(planned.iter().filter(|p| matches!(p, Planned::Queued { .. })).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_core::plan::AccountView;
    use tenure_core::{Attrs, Kind};

    fn config(default_max: &str) -> Config {
        let text = format!(
            "[nhi]\n{default_max}\n\n[[target]]\nname = \"warehouse\"\nkind = \"postgres\"\nurl_env = \"WAREHOUSE_URL\"\n\n\
             [[target]]\nname = \"chat\"\nkind = \"scim\"\nurl = \"https://chat.example.com/scim/v2\"\ntoken_env = \"CHAT_TOKEN\"\n"
        );
        tenure_core::config::parse("tenure.toml", &text).unwrap()
    }

    /// An identity of `kind` with `attrs` as `(name, value)`.
    fn who(c: &Config, id: &str, kind: Kind, status: Status, attrs: &[(&str, &str)]) -> Identity {
        let mut a = Attrs::new(&c.schema);
        for (name, value) in attrs {
            a.set(c.schema.slot_of(name), Some(value));
        }
        Identity::new(id, kind, status, a)
    }

    fn accounts(enabled: bool) -> Holdings {
        ["warehouse", "chat"]
            .iter()
            .map(|t| {
                let v = AccountView { exists: true, enabled, grants: Default::default(), name: Some("svc".into()) };
                (t.to_string(), v)
            })
            .collect()
    }

    fn now() -> DateTime<Utc> {
        parse_stamp("2026-12-01T12:00:00Z").unwrap()
    }

    /// `(identity, credential_rotated, credential_max_age, last verified rotation)` -> stale?
    fn check(default_max: &str, cases: &[(&str, &str, &str, Option<&str>, bool)]) {
        let c = config(default_max);
        let mut ids = Vec::new();
        let mut holdings = HashMap::new();
        let mut last = HashMap::new();
        for (id, rotated, max, ours, _) in cases {
            let attrs: Vec<(&str, &str)> = [("credential_rotated", *rotated), ("credential_max_age", *max)]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect();
            ids.push(who(&c, id, Kind::Service, Status::Active, &attrs));
            holdings.insert(id.to_string(), accounts(true));
            if let Some(at) = ours {
                last.insert((id.to_string(), "warehouse".to_string()), at.to_string());
            }
        }
        let got: Vec<String> = stale(&c, &ids, &holdings, &last, now()).into_iter().map(|s| s.identity).collect();
        let want: Vec<String> = cases.iter().filter(|c| c.4).map(|c| c.0.to_string()).collect();
        assert_eq!(got, want, "{default_max}");
    }

    #[test]
    fn a_credential_is_stale_past_its_max_age_from_the_later_of_the_source_and_tenure() {
        check(
            "credential_max_age = \"30d\"",
            &[
                ("FRESH", "2026-11-20", "", None, false),
                ("OLD", "2026-10-01", "", None, true),
                ("OLD-BUT-ROTATED", "2026-10-01", "", Some("2026-11-30T00:00:00.000000Z"), false),
                ("OWN-LIMIT", "2026-11-20", "7d", None, true),
                ("UNKNOWN-AGE", "", "", None, true),
                ("LONGER-OWN-LIMIT", "2026-10-01", "90d", None, false),
            ],
        );
        // Without any maximum nothing is stale, and only the identity's own limit applies.
        check("", &[("OLD", "2020-01-01", "", None, false), ("OWN", "2026-10-01", "30d", None, true)]);
    }

    #[test]
    fn only_active_nhis_enabled_accounts_in_targets_that_rotate_count() {
        let c = config("credential_max_age = \"1d\"");
        let people = [
            who(&c, "PERSON", Kind::Employee, Status::Active, &[]),
            who(&c, "GONE", Kind::Service, Status::Terminated, &[]),
            who(&c, "BOT", Kind::Bot, Status::Active, &[]),
            who(&c, "OFF", Kind::Service, Status::Active, &[]),
        ];
        let holdings: HashMap<String, Holdings> =
            [("PERSON", accounts(true)), ("GONE", accounts(true)), ("BOT", accounts(true)), ("OFF", accounts(false))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let s = stale(&c, &people, &holdings, &HashMap::new(), now());
        let got: Vec<(&str, &str)> = s.iter().map(|s| (s.identity.as_str(), s.target.as_str())).collect();
        assert_eq!(
            got,
            [("BOT", "warehouse")],
            "SCIM cannot rotate; people, leavers and disabled accounts are not asked"
        );
        assert_eq!(s[0].age_secs, None);
        assert!(s[0].describe().contains("unknown age"), "{}", s[0].describe());
    }

    #[test]
    fn an_nhi_without_an_active_owner_and_a_bad_max_age_are_findings() {
        let c = config("");
        let ids: HashMap<String, Identity> = [
            who(&c, "E1", Kind::Employee, Status::Active, &[]),
            who(&c, "E2", Kind::Employee, Status::Suspended, &[]),
            who(&c, "S-OK", Kind::Service, Status::Active, &[("owner_id", "E1")]),
            who(&c, "S-LEAVE", Kind::Service, Status::Active, &[("owner_id", "E2")]),
            who(&c, "S-GHOST", Kind::Service, Status::Active, &[("owner_id", "E404")]),
            who(&c, "S-NONE", Kind::Bot, Status::Active, &[]),
            who(&c, "S-BAD", Kind::Service, Status::Active, &[("owner_id", "E1"), ("credential_max_age", "soon")]),
        ]
        .into_iter()
        .map(|i| (i.id.to_string(), i))
        .collect();
        let holdings: HashMap<String, Holdings> = ids.keys().map(|k| (k.clone(), accounts(true))).collect();
        let f = findings(&c, "warehouse", &ids, &holdings, &HashMap::new(), now());
        let got: Vec<(FindingKind, &str, &str)> =
            f.iter().map(|f| (f.kind, f.identity.as_deref().unwrap_or(""), f.detail.as_str())).collect();
        let kinds: Vec<(FindingKind, &str)> = got.iter().map(|(k, i, _)| (*k, *i)).collect();
        assert_eq!(
            kinds,
            [
                (FindingKind::StaleCredential, "S-BAD"),
                (FindingKind::NhiWithoutOwner, "S-GHOST"),
                (FindingKind::NhiWithoutOwner, "S-LEAVE"),
                (FindingKind::NhiWithoutOwner, "S-NONE"),
            ]
        );
        for (_, id, detail) in &got {
            let want = match *id {
                "S-BAD" => "`credential_max_age` `soon` is not a duration",
                "S-GHOST" => "owned by `E404`, who is not a known identity",
                "S-LEAVE" => "owned by `E2`, who is suspended",
                _ => "has no owner",
            };
            assert!(detail.contains(want), "{id}: {detail}");
        }
    }
}
