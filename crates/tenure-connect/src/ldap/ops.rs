//! The LDAP requests each profile sends, built as data before anything is sent.
//!
//! The connector decides *what* to send here, from the target's resolved schema
//! ([`LdapSchema`]) and what it has read from the directory, and only then sends it. That split
//! keeps the exact operations of every profile reviewable and unit-tested without a server
//! (there is no Active Directory on the test machine), while the answers to them (result codes,
//! idempotency) are tested against a real slapd.
//!
//! Values are bytes because `unicodePwd` is not text: Active Directory takes a password only as
//! the UTF-16LE encoding of the password in double quotes, in a `replace` (or in the `add` that
//! creates the account), and only over an encrypted connection. Such a value is a
//! [`Value::Secret`], which renders as its length only, so no test output or log holds it.

use super::dn;
use std::fmt::{self, Write as _};
use tenure_core::config::{LdapDisable, LdapProfile, LdapSchema, MemberValues};

use crate::AccountSpec;

/// The attribute an account's email is read from, for correlation (`inetOrgPerson` and Active
/// Directory both keep it here).
pub(crate) const MAIL: &str = "mail";

/// `userAccountControl` flags (MS-ADTS §2.2.16).
pub(crate) const UAC_ACCOUNTDISABLE: i64 = 0x2;
pub(crate) const UAC_NORMAL_ACCOUNT: i64 = 0x200;

/// Where an account's entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Enabled,
    Disabled,
}

/// A target's containers and schema: everything needed to name entries and build requests.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) schema: LdapSchema,
    pub(crate) users_dn: String,
    pub(crate) groups_dn: String,
    pub(crate) disabled_dn: Option<String>,
}

/// One attribute value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(String),
    /// A value never shown: rendered as its length.
    Secret(Vec<u8>),
}

impl Value {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Value::Text(t) => t.as_bytes(),
            Value::Secret(b) => b,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(t) => write!(f, "{t:?}"),
            Value::Secret(b) => write!(f, "<secret, {} bytes>", b.len()),
        }
    }
}

fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

/// One change within a modify request (RFC 4511 §4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Add(String, Vec<Value>),
    /// With no values: delete the attribute.
    Delete(String, Vec<Value>),
    /// Replace every value; with none, remove the attribute (and succeed if it is absent).
    Replace(String, Vec<Value>),
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    Add {
        dn: String,
        attrs: Vec<(String, Vec<Value>)>,
    },
    Modify {
        dn: String,
        changes: Vec<Change>,
    },
    /// Rename within or move to `superior` (modify DN, keeping no old RDN).
    ModDn {
        dn: String,
        rdn: String,
        superior: String,
    },
    Delete {
        dn: String,
    },
}

impl Op {
    pub(crate) fn dn(&self) -> &str {
        match self {
            Op::Add { dn, .. } | Op::Modify { dn, .. } | Op::ModDn { dn, .. } | Op::Delete { dn } => dn,
        }
    }

    /// What the request does, for messages: `adding `DN``.
    pub(crate) fn what(&self) -> String {
        match self {
            Op::Add { dn, .. } => format!("creating `{dn}`"),
            Op::Modify { dn, .. } => format!("modifying `{dn}`"),
            Op::ModDn { dn, superior, .. } => format!("moving `{dn}` to `{superior}`"),
            Op::Delete { dn } => format!("deleting `{dn}`"),
        }
    }
}

/// An LDIF-like rendering, one line per value, for tests and reviews; secrets show as lengths.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |v: &Value| match v {
            Value::Text(t) => t.clone(),
            Value::Secret(b) => format!("<secret, {} bytes>", b.len()),
        };
        match self {
            Op::Add { dn, attrs } => {
                writeln!(f, "add {dn}")?;
                for (a, vals) in attrs {
                    for x in vals {
                        writeln!(f, "  {a}: {}", v(x))?;
                    }
                }
            }
            Op::Modify { dn, changes } => {
                writeln!(f, "modify {dn}")?;
                for c in changes {
                    let (op, a, vals) = match c {
                        Change::Add(a, x) => ("add", a, x),
                        Change::Delete(a, x) => ("delete", a, x),
                        Change::Replace(a, x) => ("replace", a, x),
                    };
                    if vals.is_empty() {
                        writeln!(f, "  {op} {a}")?;
                    }
                    for x in vals {
                        writeln!(f, "  {op} {a}: {}", v(x))?;
                    }
                }
            }
            Op::ModDn { dn, rdn, superior } => writeln!(f, "moddn {dn}\n  newrdn {rdn}\n  newsuperior {superior}")?,
            Op::Delete { dn } => writeln!(f, "delete {dn}")?,
        }
        Ok(())
    }
}

/// Why an account cannot be created as asked; permanent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused(pub(crate) String);

impl Layout {
    fn container(&self, place: Place) -> &str {
        match (place, &self.disabled_dn) {
            (Place::Disabled, Some(d)) => d,
            _ => &self.users_dn,
        }
    }

    /// The RDN of an account: `<naming attribute>=<account, escaped>`.
    pub(crate) fn rdn(&self, account: &str) -> String {
        format!("{}={}", self.schema.naming_attribute, dn::dn_value(account))
    }

    pub(crate) fn account_dn(&self, account: &str, place: Place) -> String {
        format!("{},{}", self.rdn(account), self.container(place))
    }

    /// The places an account may be: both containers when disabling moves entries, else one.
    pub(crate) fn places(&self) -> &'static [Place] {
        if self.disabled_dn.is_some() { &[Place::Enabled, Place::Disabled] } else { &[Place::Enabled] }
    }

    pub(crate) fn group_dn(&self, group: &str) -> String {
        format!("{}={},{}", self.schema.group_naming_attribute, dn::dn_value(group), self.groups_dn)
    }

    /// The value that makes `account` a member of a group: its enabled DN, or its name.
    pub(crate) fn member_value(&self, account: &str) -> String {
        match self.schema.member_values {
            MemberValues::Dn => self.account_dn(account, Place::Enabled),
            MemberValues::Name => account.to_string(),
        }
    }

    /// Every value by which `account` may be listed in a group (its DN in either container, or
    /// its name).
    pub(crate) fn member_values(&self, account: &str) -> Vec<String> {
        match self.schema.member_values {
            MemberValues::Dn => self.places().iter().map(|p| self.account_dn(account, *p)).collect(),
            MemberValues::Name => vec![account.to_string()],
        }
    }

    /// The filter for the groups directly under `groups_dn` that list any of `values`.
    pub(crate) fn groups_filter(&self, values: &[String]) -> String {
        let mut f = format!("(&(objectClass={})(|", dn::filter_value(self.schema.group_class()));
        for v in values {
            let _ = write!(f, "({}={})", self.schema.member_attribute, dn::filter_value(v));
        }
        f.push_str("))");
        f
    }

    /// The filter for account entries. Active Directory's computer objects are `user`s too.
    pub(crate) fn accounts_filter(&self) -> String {
        let class = dn::filter_value(self.schema.user_class());
        if self.schema.profile == LdapProfile::ActiveDirectory {
            format!("(&(objectClass={class})(!(objectClass=computer)))")
        } else {
            format!("(objectClass={class})")
        }
    }

    /// The filter for group entries.
    pub(crate) fn groups_only_filter(&self) -> String {
        format!("(objectClass={})", dn::filter_value(self.schema.group_class()))
    }

    /// The member that keeps an otherwise empty group valid where the schema requires a
    /// member: the `groups_dn` itself (see the module docs of `ldap`).
    pub(crate) fn placeholder(&self) -> &str {
        &self.groups_dn
    }

    /// Whether an account's `enabled` comes from `userAccountControl`.
    pub(crate) fn by_uac(&self) -> bool {
        self.schema.disable == LdapDisable::UserAccountControl
    }

    /// The attributes read back for an account.
    pub(crate) fn read_attrs(&self) -> Vec<String> {
        let mut a = vec![self.schema.id_attribute.clone(), MAIL.to_string()];
        if self.by_uac() {
            a.push("userAccountControl".into());
        }
        a
    }

    /// The account's mapped attributes (`tenure_core::attributes::ldap`).
    pub(crate) fn desired(&self, spec: &AccountSpec) -> tenure_core::attributes::Desired {
        tenure_core::attributes::ldap(&self.schema, |name| spec.lookup(name))
    }

    /// The attributes read back to compare with [`Layout::desired`].
    pub(crate) fn mapped_attrs(&self) -> Vec<String> {
        let mut a: Vec<String> = self.schema.attributes.iter().map(|(a, _)| a.clone()).collect();
        for r in &self.schema.required {
            if !a.iter().any(|x| x.eq_ignore_ascii_case(r)) {
                a.push(r.clone());
            }
        }
        a
    }

    // ---- requests ----

    /// The `add` that creates `spec`'s account. `password` is the initial password, which the
    /// Active Directory profile sets (as `unicodePwd`, with the account enabled in the same
    /// request) and the others never do.
    pub(crate) fn create(&self, spec: &AccountSpec, password: Option<&str>) -> Result<Op, Refused> {
        let s = &self.schema;
        let account = spec.account.as_str();
        let ad = s.profile == LdapProfile::ActiveDirectory;
        if ad {
            check_sam_account_name(account)?;
        }
        let mut attrs: Vec<(String, Vec<Value>)> =
            vec![("objectClass".into(), s.user_classes.iter().map(|c| text(c.as_str())).collect())];
        let put = |attrs: &mut Vec<(String, Vec<Value>)>, name: &str, value: Value| {
            if !attrs.iter().any(|(a, _)| a.eq_ignore_ascii_case(name)) {
                attrs.push((name.to_string(), vec![value]));
            }
        };
        put(&mut attrs, &s.naming_attribute, text(account));
        put(&mut attrs, &s.account_name_attribute, text(account));
        // The mapped attributes, exactly as `update_attributes` and `explain` see them.
        for (attr, value) in self.desired(spec) {
            if !value.is_empty() {
                put(&mut attrs, &attr, text(value));
            }
        }
        if !spec.identity_id.is_empty() {
            put(&mut attrs, &s.id_attribute, text(spec.identity_id.as_str()));
        }
        if ad {
            let Some(password) = password else {
                return Err(Refused(
                    "an Active Directory account needs an initial password, which is only sent over TLS".into(),
                ));
            };
            put(&mut attrs, "unicodePwd", Value::Secret(unicode_pwd(password)));
        }
        if self.by_uac() {
            put(&mut attrs, "userAccountControl", text(UAC_NORMAL_ACCOUNT.to_string()));
        }
        Ok(Op::Add { dn: self.account_dn(account, Place::Enabled), attrs })
    }

    /// Replaces the mapped attributes that differ (`update_attributes`) on the entry `dn`.
    pub(crate) fn replace_attributes(&self, dn: &str, changes: &[tenure_core::attributes::Change]) -> Op {
        Op::Modify {
            dn: dn.to_string(),
            changes: changes
                .iter()
                .map(|c| Change::Replace(c.attribute.clone(), c.desired.iter().map(|v| text(v.as_str())).collect()))
                .collect(),
        }
    }

    /// Adds `account` to `group`.
    /// Adds `member` (the account's value as [`Self::member_value`] or the located entry's)
    /// to `group`.
    pub(crate) fn grant(&self, member: &str, group: &str) -> Op {
        Op::Modify {
            dn: self.group_dn(group),
            changes: vec![Change::Add(self.schema.member_attribute.clone(), vec![text(member)])],
        }
    }

    /// Creates `group` with `account` as its first member, for a grant of a group that does not
    /// exist yet.
    pub(crate) fn create_group(&self, group: &str, member: &str) -> Op {
        let s = &self.schema;
        let mut attrs: Vec<(String, Vec<Value>)> = vec![
            ("objectClass".into(), s.group_classes.iter().map(|c| text(c.as_str())).collect()),
            (s.group_naming_attribute.clone(), vec![text(group)]),
        ];
        if s.profile == LdapProfile::ActiveDirectory {
            attrs.push(("sAMAccountName".into(), vec![text(group)]));
        }
        attrs.push((s.member_attribute.clone(), vec![text(member)]));
        Op::Add { dn: self.group_dn(group), attrs }
    }

    /// Removes one member value from a group entry.
    pub(crate) fn remove_member(&self, group_dn: &str, value: &str) -> Op {
        Op::Modify {
            dn: group_dn.to_string(),
            changes: vec![Change::Delete(self.schema.member_attribute.clone(), vec![text(value)])],
        }
    }

    /// Removes the last member of a group whose schema requires one, adding the placeholder in
    /// the same request.
    pub(crate) fn remove_last_member(&self, group_dn: &str, value: &str) -> Op {
        let m = &self.schema.member_attribute;
        Op::Modify {
            dn: group_dn.to_string(),
            changes: vec![
                Change::Add(m.clone(), vec![text(self.placeholder())]),
                Change::Delete(m.clone(), vec![text(value)]),
            ],
        }
    }

    /// Moves an account between its containers.
    pub(crate) fn move_account(&self, account: &str, from: Place, to: Place) -> Op {
        Op::ModDn {
            dn: self.account_dn(account, from),
            rdn: self.rdn(account),
            superior: self.container(to).to_string(),
        }
    }

    /// Removes an entry's `userPassword`, so a moved (disabled) entry cannot bind.
    pub(crate) fn drop_password(&self, dn: &str) -> Op {
        Op::Modify { dn: dn.to_string(), changes: vec![Change::Delete("userPassword".into(), vec![])] }
    }

    /// Sets or clears ACCOUNTDISABLE as a read-modify-write of `userAccountControl`: deleting
    /// the value that was read and adding the new one in one request fails
    /// (`noSuchAttribute`) if someone changed the value in between, so no flag set by someone
    /// else is ever lost.
    pub(crate) fn set_disabled(&self, dn: &str, read: i64, disabled: bool) -> Option<Op> {
        let new = if disabled { read | UAC_ACCOUNTDISABLE } else { read & !UAC_ACCOUNTDISABLE };
        (new != read).then(|| Op::Modify {
            dn: dn.to_string(),
            changes: vec![
                Change::Delete("userAccountControl".into(), vec![text(read.to_string())]),
                Change::Add("userAccountControl".into(), vec![text(new.to_string())]),
            ],
        })
    }
}

/// The `unicodePwd` value for `password`: the password in double quotes, UTF-16LE.
pub(crate) fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Active Directory's rules for `sAMAccountName` (the pre-Windows 2000 logon name): at most 20
/// characters, none of `" / \ [ ] : ; | = , + * ? < >` or `@`, not only dots and spaces.
fn check_sam_account_name(name: &str) -> Result<(), Refused> {
    const FORBIDDEN: &[char] = &['"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@'];
    if name.chars().count() > 20 {
        return Err(Refused(format!(
            "`{name}` is longer than the 20 characters Active Directory allows in `sAMAccountName`"
        )));
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(c) || c.is_control()) {
        return Err(Refused(format!(
            "`{name}` holds `{}`, which Active Directory does not allow in `sAMAccountName`",
            c.escape_default()
        )));
    }
    if name.chars().all(|c| c == '.' || c == ' ') {
        return Err(Refused(format!("`{name}` is not a valid `sAMAccountName`")));
    }
    Ok(())
}

/// A random initial password that meets Active Directory's default complexity rules (three of
/// upper, lower, digit, symbol; here all four) and length. It is never shown or kept: the person
/// sets their own through the organisation's reset process.
pub(crate) fn random_password() -> String {
    use rand::Rng as _;
    use rand::seq::SliceRandom as _;
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#%&()*+-.:=?@^_~";
    let mut rng = rand::rng();
    let mut pick = |set: &[u8]| set.get(rng.random_range(0..set.len())).copied().unwrap_or(b'x');
    let mut chars: Vec<u8> = vec![pick(UPPER), pick(LOWER), pick(DIGIT), pick(SYMBOL)];
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    while chars.len() < 32 {
        chars.push(pick(&all));
    }
    chars.shuffle(&mut rand::rng());
    String::from_utf8_lossy(&chars).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_core::config::{LdapOverrides, LdapSettings, TlsSettings};
    use tenure_core::template::Template;

    fn layout(profile: LdapProfile, mapping: &[(&str, &str)], disabled: bool) -> Layout {
        let base =
            if profile == LdapProfile::ActiveDirectory { "dc=corp,dc=example,dc=com" } else { "dc=example,dc=com" };
        let settings = LdapSettings {
            url: "ldaps://dir.example.com".into(),
            users_dn: format!("ou=people,{base}"),
            groups_dn: format!("ou=groups,{base}"),
            disabled_dn: disabled.then(|| format!("ou=disabled,{base}")),
            profile,
            tls: TlsSettings::default(),
            overrides: LdapOverrides::default(),
            attributes: mapping
                .iter()
                .map(|(a, t)| ((*a).to_string(), Template::parse(t).unwrap_or_else(|e| panic!("{e}"))))
                .collect(),
            ..LdapSettings::default()
        };
        Layout {
            schema: settings.schema(),
            users_dn: settings.users_dn.clone(),
            groups_dn: settings.groups_dn.clone(),
            disabled_dn: settings.disabled_dn.clone(),
        }
    }

    fn ann() -> AccountSpec {
        AccountSpec {
            identity_id: "E100".into(),
            account: "ann".into(),
            given_name: Some("Ann".into()),
            family_name: Some("O'Lee, Jr".into()),
            email: Some("ann@example.com".into()),
            attributes: [("department".to_string(), "Engineering".to_string()), ("uid_number".into(), "10001".into())]
                .into(),
        }
    }

    fn render(ops: &[Op]) -> String {
        ops.iter().map(ToString::to_string).collect()
    }

    /// The requests for a joiner (create, grant `staff`, grant a new group `eng` after the
    /// first grant met `noSuchObject`), a mover (grant `sales`, revoke `eng`, whose last member
    /// ann was) and a leaver (disable: memberships first, then the profile's way of disabling)
    /// against `expect`, line for line.
    fn check(l: &Layout, expect: &str) {
        let spec = ann();
        let mut ops = Vec::new();
        // Joiner.
        ops.push(l.create(&spec, Some("Pa55-word")).unwrap_or_else(|e| panic!("{e:?}")));
        ops.push(l.grant(&l.member_value("ann"), "staff"));
        ops.push(l.create_group("eng", &l.member_value("ann")));
        // Mover.
        ops.push(l.grant(&l.member_value("ann"), "sales"));
        ops.push(l.remove_last_member(&l.group_dn("eng"), &l.member_value("ann")));
        // Leaver.
        for g in ["staff", "sales"] {
            ops.push(l.remove_member(&l.group_dn(g), &l.member_value("ann")));
        }
        if l.by_uac() {
            ops.extend(l.set_disabled(&l.account_dn("ann", Place::Enabled), 512, true));
            if l.disabled_dn.is_some() {
                ops.push(l.move_account("ann", Place::Enabled, Place::Disabled));
            }
        } else {
            ops.push(l.move_account("ann", Place::Enabled, Place::Disabled));
            ops.push(l.drop_password(&l.account_dn("ann", Place::Disabled)));
        }
        let got = render(&ops);
        let norm = |s: &str| s.lines().map(str::trim).filter(|x| !x.is_empty()).collect::<Vec<_>>().join("\n");
        assert_eq!(norm(&got), norm(expect), "\n--- got ---\n{got}");
    }

    #[test]
    fn openldap_joiner_mover_leaver_requests() {
        check(
            &layout(LdapProfile::OpenLdap, &[("title", "{department} engineer")], true),
            r"
            add uid=ann,ou=people,dc=example,dc=com
              objectClass: top
              objectClass: person
              objectClass: organizationalPerson
              objectClass: inetOrgPerson
              uid: ann
              cn: Ann O'Lee, Jr
              sn: O'Lee, Jr
              displayName: Ann O'Lee, Jr
              givenName: Ann
              mail: ann@example.com
              title: Engineering engineer
              employeeNumber: E100
            modify cn=staff,ou=groups,dc=example,dc=com
              add member: uid=ann,ou=people,dc=example,dc=com
            add cn=eng,ou=groups,dc=example,dc=com
              objectClass: top
              objectClass: groupOfNames
              cn: eng
              member: uid=ann,ou=people,dc=example,dc=com
            modify cn=sales,ou=groups,dc=example,dc=com
              add member: uid=ann,ou=people,dc=example,dc=com
            modify cn=eng,ou=groups,dc=example,dc=com
              add member: ou=groups,dc=example,dc=com
              delete member: uid=ann,ou=people,dc=example,dc=com
            modify cn=staff,ou=groups,dc=example,dc=com
              delete member: uid=ann,ou=people,dc=example,dc=com
            modify cn=sales,ou=groups,dc=example,dc=com
              delete member: uid=ann,ou=people,dc=example,dc=com
            moddn uid=ann,ou=people,dc=example,dc=com
              newrdn uid=ann
              newsuperior ou=disabled,dc=example,dc=com
            modify uid=ann,ou=disabled,dc=example,dc=com
              delete userPassword
            ",
        );
    }

    #[test]
    fn active_directory_joiner_mover_leaver_requests() {
        check(
            &layout(LdapProfile::ActiveDirectory, &[("department", "{department}")], false),
            r"
            add cn=ann,ou=people,dc=corp,dc=example,dc=com
              objectClass: top
              objectClass: person
              objectClass: organizationalPerson
              objectClass: user
              cn: ann
              sAMAccountName: ann
              sn: O'Lee, Jr
              givenName: Ann
              displayName: Ann O'Lee, Jr
              mail: ann@example.com
              userPrincipalName: ann@corp.example.com
              department: Engineering
              employeeID: E100
              unicodePwd: <secret, 22 bytes>
              userAccountControl: 512
            modify cn=staff,ou=groups,dc=corp,dc=example,dc=com
              add member: cn=ann,ou=people,dc=corp,dc=example,dc=com
            add cn=eng,ou=groups,dc=corp,dc=example,dc=com
              objectClass: top
              objectClass: group
              cn: eng
              sAMAccountName: eng
              member: cn=ann,ou=people,dc=corp,dc=example,dc=com
            modify cn=sales,ou=groups,dc=corp,dc=example,dc=com
              add member: cn=ann,ou=people,dc=corp,dc=example,dc=com
            modify cn=eng,ou=groups,dc=corp,dc=example,dc=com
              add member: ou=groups,dc=corp,dc=example,dc=com
              delete member: cn=ann,ou=people,dc=corp,dc=example,dc=com
            modify cn=staff,ou=groups,dc=corp,dc=example,dc=com
              delete member: cn=ann,ou=people,dc=corp,dc=example,dc=com
            modify cn=sales,ou=groups,dc=corp,dc=example,dc=com
              delete member: cn=ann,ou=people,dc=corp,dc=example,dc=com
            modify cn=ann,ou=people,dc=corp,dc=example,dc=com
              delete userAccountControl: 512
              add userAccountControl: 514
            ",
        );
        // With a `disabled_dn`, a disabled AD account is also moved there.
        let l = layout(LdapProfile::ActiveDirectory, &[], true);
        assert_eq!(
            l.move_account("ann", Place::Enabled, Place::Disabled).to_string(),
            "moddn cn=ann,ou=people,dc=corp,dc=example,dc=com\n  newrdn cn=ann\n  newsuperior ou=disabled,dc=corp,dc=example,dc=com\n"
        );
    }

    #[test]
    fn ds389_and_posix_joiner_mover_leaver_requests() {
        check(
            &layout(LdapProfile::Ds389, &[], true),
            r"
            add uid=ann,ou=people,dc=example,dc=com
              objectClass: top
              objectClass: person
              objectClass: organizationalPerson
              objectClass: inetOrgPerson
              uid: ann
              cn: Ann O'Lee, Jr
              sn: O'Lee, Jr
              displayName: Ann O'Lee, Jr
              givenName: Ann
              mail: ann@example.com
              employeeNumber: E100
            modify cn=staff,ou=groups,dc=example,dc=com
              add uniqueMember: uid=ann,ou=people,dc=example,dc=com
            add cn=eng,ou=groups,dc=example,dc=com
              objectClass: top
              objectClass: groupOfUniqueNames
              cn: eng
              uniqueMember: uid=ann,ou=people,dc=example,dc=com
            modify cn=sales,ou=groups,dc=example,dc=com
              add uniqueMember: uid=ann,ou=people,dc=example,dc=com
            modify cn=eng,ou=groups,dc=example,dc=com
              add uniqueMember: ou=groups,dc=example,dc=com
              delete uniqueMember: uid=ann,ou=people,dc=example,dc=com
            modify cn=staff,ou=groups,dc=example,dc=com
              delete uniqueMember: uid=ann,ou=people,dc=example,dc=com
            modify cn=sales,ou=groups,dc=example,dc=com
              delete uniqueMember: uid=ann,ou=people,dc=example,dc=com
            moddn uid=ann,ou=people,dc=example,dc=com
              newrdn uid=ann
              newsuperior ou=disabled,dc=example,dc=com
            modify uid=ann,ou=disabled,dc=example,dc=com
              delete userPassword
            ",
        );
        let posix = layout(LdapProfile::Posix, &[("uidNumber", "{uid_number}"), ("gidNumber", "100")], true);
        let create = posix.create(&ann(), None).unwrap_or_else(|e| panic!("{e:?}")).to_string();
        assert!(create.contains("  objectClass: posixAccount\n"), "{create}");
        assert!(create.contains("  homeDirectory: /home/ann\n  uidNumber: 10001\n  gidNumber: 100\n"), "{create}");
        assert_eq!(
            posix.grant("ann", "wheel").to_string(),
            "modify cn=wheel,ou=groups,dc=example,dc=com\n  add memberUid: ann\n"
        );
        assert_eq!(posix.member_values("ann"), ["ann"]);
        assert_eq!(
            posix.groups_filter(&posix.member_values("x)(uid=*")),
            "(&(objectClass=posixGroup)(|(memberUid=x\\29\\28uid=\\2a)))"
        );
    }

    #[test]
    fn a_mover_replaces_only_the_mapped_attributes_that_differ_and_never_the_naming_attribute() {
        let l = layout(LdapProfile::OpenLdap, &[("title", "{department} lead")], true);
        let spec = ann();
        let desired = l.desired(&spec);
        assert!(!desired.iter().any(|(a, _)| a == "uid"), "{desired:?}");
        let live: tenure_core::attributes::Live = [
            ("cn".to_string(), vec!["Ann O'Lee, Jr".to_string()]),
            ("sn".to_string(), vec!["O'Lee, Jr".to_string()]),
            ("displayName".to_string(), vec!["Ann Old".to_string()]),
            ("givenName".to_string(), vec!["Ann".to_string()]),
            ("mail".to_string(), vec!["ANN@example.com".to_string()]),
            ("title".to_string(), vec![]),
        ]
        .into();
        let changes = tenure_core::attributes::changes(&desired, &live);
        let dn = l.account_dn("ann", Place::Disabled);
        assert_eq!(
            l.replace_attributes(&dn, &changes).to_string(),
            "modify uid=ann,ou=disabled,dc=example,dc=com\n  replace displayName: Ann O'Lee, Jr\n  replace title: Engineering lead\n"
        );
        let gone =
            [tenure_core::attributes::Change { attribute: "title".into(), live: vec!["x".into()], desired: None }];
        assert_eq!(l.replace_attributes(&dn, &gone).to_string(), format!("modify {dn}\n  replace title\n"));
    }

    #[test]
    fn hostile_names_are_escaped_in_dns_and_filters_for_every_profile() {
        for profile in [LdapProfile::OpenLdap, LdapProfile::ActiveDirectory, LdapProfile::Ds389] {
            let l = layout(profile, &[], true);
            let dn = l.account_dn("a,b+c", Place::Enabled);
            assert!(dn.starts_with(&format!("{}=a\\2Cb\\2Bc,ou=people,", l.schema.naming_attribute)), "{dn}");
            let f = l.groups_filter(&l.member_values("x)(cn=*"));
            assert!(f.contains("=x\\29\\28") && f.contains("\\2a") && !f.contains(")(cn=*"), "{f}");
            assert_eq!(l.group_dn("g,1"), format!("cn=g\\2C1,{}", l.groups_dn));
        }
    }

    #[test]
    fn active_directory_refuses_what_it_would_refuse() {
        let l = layout(LdapProfile::ActiveDirectory, &[], false);
        let long = AccountSpec { account: "a".repeat(21), ..ann() };
        assert!(l.create(&long, Some("x")).is_err_and(|e| e.0.contains("20 characters")));
        let at = AccountSpec { account: "ann@corp".into(), ..ann() };
        assert!(l.create(&at, Some("x")).is_err_and(|e| e.0.contains("`@`")));
        assert!(l.create(&ann(), None).is_err_and(|e| e.0.contains("only sent over TLS")));
        // The flag is read, modified and written back; other flags survive.
        let dn = l.account_dn("ann", Place::Enabled);
        let op = l.set_disabled(&dn, 0x10200, true).map(|o| o.to_string());
        assert_eq!(
            op.as_deref(),
            Some(&*format!("modify {dn}\n  delete userAccountControl: 66048\n  add userAccountControl: 66050\n"))
        );
        assert_eq!(l.set_disabled(&dn, 514, true), None);
        assert_eq!(l.set_disabled(&dn, 512, false), None);
        assert!(l.set_disabled(&dn, 514, false).is_some_and(|o| o.to_string().contains("add userAccountControl: 512")));
        assert_eq!(l.accounts_filter(), "(&(objectClass=user)(!(objectClass=computer)))");
    }

    #[test]
    fn unicode_pwd_is_the_quoted_password_in_utf16le_and_never_rendered() {
        assert_eq!(unicode_pwd("Ab1!"), b"\"\0A\0b\x001\0!\0\"\0");
        assert_eq!(unicode_pwd("é").len(), 6);
        let op = layout(LdapProfile::ActiveDirectory, &[], false)
            .create(&ann(), Some("Sup3r-Secret"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!op.to_string().contains("Sup3r") && !format!("{op:?}").contains("Sup3r"));
        let p = random_password();
        assert_eq!(p.len(), 32);
        assert!(p.chars().any(|c| c.is_ascii_uppercase()) && p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()) && p.chars().any(|c| !c.is_ascii_alphanumeric()));
    }
}
