//! Mapped attributes: what an identity's account should say about the person in each target.
//!
//! One pure function, [`desired`], turns an identity (through a lookup of its attribute values)
//! and a target's settings into the target's attribute name -> value, in the target's order. It
//! is the single definition of "the mapped attributes": the LDAP connector's `add` and the SCIM
//! connector's `POST /Users` are built from it, `tenure explain --live` compares it with what the
//! live account holds ([`changes`]), and `update_attributes` operations bring an existing account
//! to it, so what is created, what is explained and what is synchronised cannot disagree.
//!
//! - **LDAP**: the resolved schema's attribute templates (the profile's defaults with the
//!   target's `[target.attributes]` on top), then the attributes the `person` class requires
//!   (`cn`, `sn`), which fall back to the account name when their template renders empty. The
//!   naming attribute, the account-name attribute and the correlation id are not mapped
//!   attributes: they name the account and never change (renames are out of scope).
//! - **SCIM**: `displayName` (given and family name, else the account name), `name.givenName`,
//!   `name.familyName`, `emails` (the one work email, primary) and `title`, from the identity's
//!   `given_name`, `family_name`, `email` and `title`.
//! - **PostgreSQL and manual** targets keep no attributes about the person: nothing.
//!
//! An empty value means "absent": the account should not have the attribute.

use crate::config::{LdapSchema, TargetSettings};
use std::collections::BTreeMap;

/// The SCIM attribute names [`desired`] uses (paths into a core User, RFC 7643 §4.1).
pub mod scim {
    pub const DISPLAY_NAME: &str = "displayName";
    pub const GIVEN_NAME: &str = "name.givenName";
    pub const FAMILY_NAME: &str = "name.familyName";
    /// The primary email's value.
    pub const EMAILS: &str = "emails";
    pub const TITLE: &str = "title";
}

/// A target's mapped attributes for one account, in the target's order: (name, value), an
/// empty value meaning the attribute should be absent.
pub type Desired = Vec<(String, String)>;

/// The mapped attributes of an LDAP account under a resolved schema (see [`desired`]).
pub fn ldap<'a>(schema: &LdapSchema, lookup: impl Fn(&str) -> Option<&'a str>) -> Desired {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let account = get("account").unwrap_or_default().to_string();
    let mut out: Desired = Vec::with_capacity(schema.attributes.len() + 2);
    for (attr, template) in &schema.attributes {
        let mut value = template.render(get);
        if value.is_empty() && schema.required.iter().any(|r| r.eq_ignore_ascii_case(attr)) {
            value.clone_from(&account);
        }
        out.push((attr.clone(), value));
    }
    for r in &schema.required {
        if !out.iter().any(|(a, _)| a.eq_ignore_ascii_case(r)) {
            out.push((r.clone(), account.clone()));
        }
    }
    out
}

/// Attribute values as read from a live account: name -> values (none when absent). Holds
/// exactly the names [`desired`] gives for the target.
pub type Live = BTreeMap<String, Vec<String>>;

/// The mapped attributes an identity's account in a target should hold. `lookup` gives a
/// template name's value: `account` (the account name), `id`, or an identity attribute; empty
/// values count as missing.
pub fn desired<'a>(settings: &TargetSettings, lookup: impl Fn(&str) -> Option<&'a str>) -> Desired {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    match settings {
        TargetSettings::Ldap(s) => ldap(&s.schema(), &lookup),
        TargetSettings::Scim(_) => {
            let given = get("given_name");
            let family = get("family_name");
            let display = match (given, family) {
                (Some(g), Some(f)) => format!("{g} {f}"),
                (Some(n), None) | (None, Some(n)) => n.to_string(),
                (None, None) => get("account").unwrap_or_default().to_string(),
            };
            let owned = |v: Option<&str>| v.unwrap_or_default().to_string();
            vec![
                (scim::DISPLAY_NAME.into(), display),
                (scim::GIVEN_NAME.into(), owned(given)),
                (scim::FAMILY_NAME.into(), owned(family)),
                (scim::EMAILS.into(), owned(get("email"))),
                (scim::TITLE.into(), owned(get("title"))),
            ]
        }
        TargetSettings::Postgres(_) | TargetSettings::Manual(_) => Vec::new(),
    }
}

/// One mapped attribute whose live value differs from the desired one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub attribute: String,
    /// The values the live account holds (none when it lacks the attribute).
    pub live: Vec<String>,
    /// The value it should hold; `None` when it should not have the attribute.
    pub desired: Option<String>,
}

/// The mapped attributes whose live values differ from `desired`, in `desired`'s order.
/// Attribute names compare without case (LDAP's do); values compare exactly, except email
/// addresses (`mail`, `emails`), which compare without ASCII case because servers often fold
/// them. A live attribute holding several values differs from any single desired value.
pub fn changes(desired: &[(String, String)], live: &Live) -> Vec<Change> {
    let mut out = Vec::new();
    for (attr, want) in desired {
        let have: &[String] =
            live.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).map_or(&[], |(_, v)| v.as_slice());
        let folds = attr.eq_ignore_ascii_case("mail") || attr.eq_ignore_ascii_case(scim::EMAILS);
        let same = match (have, want.is_empty()) {
            ([], true) => true,
            ([one], false) => one == want || (folds && one.eq_ignore_ascii_case(want)),
            _ => false,
        };
        if !same {
            out.push(Change {
                attribute: attr.clone(),
                live: have.to_vec(),
                desired: (!want.is_empty()).then(|| want.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LdapProfile, LdapSettings, ScimSettings};
    use crate::template::Template;

    fn ldap(profile: LdapProfile, mapping: &[(&str, &str)]) -> TargetSettings {
        TargetSettings::Ldap(LdapSettings {
            users_dn: "ou=people,dc=corp,dc=example,dc=com".into(),
            profile,
            attributes: mapping
                .iter()
                .map(|(a, t)| ((*a).to_string(), Template::parse(t).unwrap_or_else(|e| panic!("{e}"))))
                .collect(),
            ..LdapSettings::default()
        })
    }

    fn render(settings: &TargetSettings, attrs: &[(&str, &str)]) -> String {
        desired(settings, |n| attrs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
            .iter()
            .map(|(a, v)| format!("{a}={v}\n"))
            .collect()
    }

    const ANN: &[(&str, &str)] = &[
        ("account", "ann"),
        ("id", "E1"),
        ("given_name", "Ann"),
        ("family_name", "Lee"),
        ("email", "ann@example.com"),
        ("title", "Engineer"),
    ];

    #[test]
    fn each_target_kind_maps_the_identity() {
        assert_eq!(
            render(&ldap(LdapProfile::OpenLdap, &[("title", "{title}")]), ANN),
            "cn=Ann Lee\nsn=Lee\ndisplayName=Ann Lee\ngivenName=Ann\nmail=ann@example.com\ntitle=Engineer\n"
        );
        // Required attributes fall back to the account name; others render empty (absent).
        assert_eq!(
            render(&ldap(LdapProfile::OpenLdap, &[]), &[("account", "svc")]),
            "cn=svc\nsn=svc\ndisplayName=\ngivenName=\nmail=\n"
        );
        // Active Directory: `cn` names the entry, so it is not a mapped attribute.
        assert_eq!(
            render(&ldap(LdapProfile::ActiveDirectory, &[]), ANN),
            "sn=Lee\ngivenName=Ann\ndisplayName=Ann Lee\nmail=ann@example.com\nuserPrincipalName=ann@corp.example.com\n"
        );
        let scim = TargetSettings::Scim(ScimSettings::default());
        assert_eq!(
            render(&scim, ANN),
            "displayName=Ann Lee\nname.givenName=Ann\nname.familyName=Lee\nemails=ann@example.com\ntitle=Engineer\n"
        );
        assert_eq!(
            render(&scim, &[("account", "bot"), ("title", " ")]),
            "displayName=bot\nname.givenName=\nname.familyName=\nemails=\ntitle=\n"
        );
        let pg = TargetSettings::Postgres(crate::config::PostgresSettings::default());
        assert_eq!(render(&pg, ANN), "");
    }

    #[test]
    fn changes_name_what_differs() {
        let want: Desired = vec![
            ("title".into(), "Manager".into()),
            ("displayName".into(), "Ann Lee".into()),
            ("mail".into(), "ann@example.com".into()),
            ("cn".into(), "Ann Lee".into()),
            ("givenName".into(), String::new()),
            ("sn".into(), "Lee".into()),
        ];
        let live: Live = [
            ("title".to_string(), vec!["Engineer".to_string()]),
            ("DisplayName".to_string(), vec!["Ann Lee".to_string()]),
            ("mail".to_string(), vec!["Ann@Example.com".to_string()]),
            ("cn".to_string(), vec!["Ann Lee".to_string(), "Annie".to_string()]),
            ("givenName".to_string(), vec!["Ann".to_string()]),
            ("sn".to_string(), vec![]),
        ]
        .into();
        let got: Vec<String> =
            changes(&want, &live).iter().map(|c| format!("{}: {:?} -> {:?}", c.attribute, c.live, c.desired)).collect();
        assert_eq!(
            got,
            [
                r#"title: ["Engineer"] -> Some("Manager")"#,
                r#"cn: ["Ann Lee", "Annie"] -> Some("Ann Lee")"#,
                r#"givenName: ["Ann"] -> None"#,
                r#"sn: [] -> Some("Lee")"#,
            ]
        );
        assert_eq!(changes(&want[1..2], &live), vec![]);
    }
}
