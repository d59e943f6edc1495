//! `[[target]]`: what each kind of target takes, its defaults, and their validation.
//!
//! Every key documented in `docs/` is read here, and every problem carries the line of the key it
//! is about. The LDAP schema profile is resolved here too ([`LdapSettings::schema`]), so that
//! `tenure check` and the connector agree on what a profile means: one table of defaults, in one
//! place, with no IO.

pub use super::correlation::{CorrelationRule, CorrelationSettings, DEFAULT_MIN_CONFIDENCE, INITIAL_CONFIDENCE};
use super::{Reader, url_problem, valid_name};
use crate::diag::Problems;
use crate::doc::{Node, Table};
use crate::model::{RevocationClass, TargetKind};
use crate::schema::{Schema, Slot};
use crate::template::Template;

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    pub class: RevocationClass,
    /// The declared entitlements, if the target lists them.
    pub entitlements: Option<Vec<String>>,
    /// The attribute that gives the account name (default `username`).
    pub account_attribute: Slot,
    pub concurrency: usize,
    pub max_attempts: u32,
    /// Delete disabled accounts after this many days; `None` keeps them disabled.
    pub delete_after_days: Option<u32>,
    /// How the first import against accounts already in the target links them
    /// (`correlation`, `correlation_min_confidence`).
    pub correlation: CorrelationSettings,
    /// Where this target's rotated secrets go, instead of `[nhi] secret_sink`.
    pub secret_sink: Option<String>,
    pub settings: TargetSettings,
}

#[derive(Debug, Clone)]
pub enum TargetSettings {
    Ldap(LdapSettings),
    Scim(ScimSettings),
    Postgres(PostgresSettings),
    Manual(ManualSettings),
}

/// Where a secret comes from. Never the value itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SecretRef {
    Env(String),
    File(String),
    #[default]
    None,
}

/// How a connector checks the server it talks to over TLS: `ca_file` and `tls_verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// A PEM file of CA certificates trusted *instead of* the system's roots.
    pub ca_file: Option<String>,
    /// Whether the server's certificate (chain and name) is checked; default true. Turning it off
    /// is explicit in the config and warned about on every run.
    pub verify: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self { ca_file: None, verify: true }
    }
}

// ---- listing limits ----

/// How much one listing of a target (every account with its grants, as reconciliation and
/// correlation read it) may hold before it fails: `max_listing_items` entries (accounts and
/// groups), `max_listing_bytes` bytes held (SCIM: the answers' bodies; LDAP: the entries' DNs,
/// attribute names and values; both plus 64 bytes for every value listed — a member, an email,
/// an attribute value — which is what a value costs once decoded), and `max_listing_seconds`
/// seconds in all, however fast each page comes. A target that answers endlessly or slowly
/// fails with the key to raise instead of growing without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingLimits {
    pub max_items: usize,
    pub max_bytes: usize,
    pub max_seconds: u64,
}

pub const DEFAULT_MAX_LISTING_ITEMS: usize = 1_000_000;
pub const DEFAULT_MAX_LISTING_BYTES: usize = 256 * 1024 * 1024;
pub const DEFAULT_MAX_LISTING_SECONDS: u64 = 900;

impl Default for ListingLimits {
    fn default() -> Self {
        Self {
            max_items: DEFAULT_MAX_LISTING_ITEMS,
            max_bytes: DEFAULT_MAX_LISTING_BYTES,
            max_seconds: DEFAULT_MAX_LISTING_SECONDS,
        }
    }
}

// ---- LDAP ----

#[derive(Debug, Clone, Default)]
pub struct LdapSettings {
    /// `ldap://`, `ldaps://` (TLS from the first byte) or `ldapi://`.
    pub url: String,
    pub bind_dn: String,
    pub password: SecretRef,
    pub users_dn: String,
    pub groups_dn: String,
    /// Where disabled accounts move to; required when the profile disables by moving.
    pub disabled_dn: Option<String>,
    pub page_size: i32,
    /// Upgrade an `ldap://` connection with StartTLS (RFC 4511 §4.14) before binding.
    pub starttls: bool,
    pub tls: TlsSettings,
    pub profile: LdapProfile,
    /// Explicit overrides of the profile's schema.
    pub overrides: LdapOverrides,
    /// `[target.attributes]`: LDAP attribute = template, on top of the profile's own.
    pub attributes: Vec<(String, Template)>,
    /// `max_listing_items` and `max_listing_bytes`.
    pub listing: ListingLimits,
}

impl LdapSettings {
    /// Whether the connection is encrypted (`ldaps://`, or StartTLS).
    pub fn uses_tls(&self) -> bool {
        url_scheme(&self.url).as_deref() == Some("ldaps") || self.starttls
    }

    /// The schema the connector uses: the profile's defaults with the overrides applied.
    pub fn schema(&self) -> LdapSchema {
        let o = &self.overrides;
        let p = self.profile;
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (user_classes, group_classes, naming, account, id, member) = match p {
            LdapProfile::OpenLdap => (
                strings(&["top", "person", "organizationalPerson", "inetOrgPerson"]),
                strings(&["top", "groupOfNames"]),
                "uid",
                "uid",
                "employeeNumber",
                "member",
            ),
            LdapProfile::ActiveDirectory => (
                strings(&["top", "person", "organizationalPerson", "user"]),
                strings(&["top", "group"]),
                "cn",
                "sAMAccountName",
                "employeeID",
                "member",
            ),
            LdapProfile::Ds389 => (
                strings(&["top", "person", "organizationalPerson", "inetOrgPerson"]),
                strings(&["top", "groupOfUniqueNames"]),
                "uid",
                "uid",
                "employeeNumber",
                "uniqueMember",
            ),
            LdapProfile::Posix => (
                strings(&["top", "person", "organizationalPerson", "inetOrgPerson", "posixAccount"]),
                strings(&["top", "posixGroup"]),
                "uid",
                "uid",
                "employeeNumber",
                "memberUid",
            ),
        };
        let member_attribute = o.member_attribute.clone().unwrap_or_else(|| member.to_string());
        let member_values =
            if member_attribute.eq_ignore_ascii_case("memberUid") { MemberValues::Name } else { MemberValues::Dn };
        let naming_attribute = o.naming_attribute.clone().unwrap_or_else(|| naming.to_string());
        let mut attributes: Vec<(String, Template)> = Vec::new();
        let t = |s: &str| Template::parse(s).unwrap_or_else(|_| Template::literal(s));
        let full = "{given_name} {family_name}";
        match p {
            LdapProfile::ActiveDirectory => {
                attributes.push(("sn".into(), t("{family_name}")));
                attributes.push(("givenName".into(), t("{given_name}")));
                attributes.push(("displayName".into(), t(full)));
                attributes.push(("mail".into(), t("{email}")));
                if let Some(domain) = dns_domain(&self.users_dn) {
                    attributes.push(("userPrincipalName".into(), t(&format!("{{account}}@{domain}"))));
                }
            }
            _ => {
                attributes.push(("cn".into(), t(full)));
                attributes.push(("sn".into(), t("{family_name}")));
                attributes.push(("displayName".into(), t(full)));
                attributes.push(("givenName".into(), t("{given_name}")));
                attributes.push(("mail".into(), t("{email}")));
                if p == LdapProfile::Posix {
                    attributes.push(("homeDirectory".into(), t("/home/{account}")));
                }
            }
        }
        // The target's own mapping replaces a default of the same name and adds the rest.
        for (attr, tpl) in &self.attributes {
            match attributes.iter_mut().find(|(a, _)| a.eq_ignore_ascii_case(attr)) {
                Some(slot) => slot.1 = tpl.clone(),
                None => attributes.push((attr.clone(), tpl.clone())),
            }
        }
        // The naming attribute always holds the account name; the mapping never sets it.
        attributes.retain(|(a, _)| !a.eq_ignore_ascii_case(&naming_attribute));
        let required = ["cn", "sn"]
            .into_iter()
            .filter(|r| !r.eq_ignore_ascii_case(&naming_attribute))
            .map(str::to_string)
            .collect();
        LdapSchema {
            profile: p,
            user_classes: o.user_object_classes.clone().unwrap_or(user_classes),
            group_classes: o.group_object_classes.clone().unwrap_or(group_classes),
            naming_attribute,
            account_name_attribute: o.account_name_attribute.clone().unwrap_or_else(|| account.to_string()),
            id_attribute: o.id_attribute.clone().unwrap_or_else(|| id.to_string()),
            group_naming_attribute: o.group_naming_attribute.clone().unwrap_or_else(|| "cn".to_string()),
            member_attribute,
            member_values,
            disable: o.disable.unwrap_or(match p {
                LdapProfile::ActiveDirectory => LdapDisable::UserAccountControl,
                _ => LdapDisable::Move,
            }),
            create_groups: o.create_groups.unwrap_or(p != LdapProfile::Posix),
            attributes,
            required,
        }
    }
}

/// The DNS domain named by the `dc=` components of a DN (`ou=People,dc=corp,dc=example,dc=com`
/// gives `corp.example.com`), as Active Directory derives its default UPN suffix.
fn dns_domain(dn: &str) -> Option<String> {
    let labels: Vec<&str> = dn
        .split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.split_once('=')?;
            k.trim().eq_ignore_ascii_case("dc").then_some(v.trim())
        })
        .collect();
    if labels.is_empty() || labels.iter().any(|l| l.is_empty() || l.contains('\\')) {
        return None;
    }
    Some(labels.join("."))
}

/// A directory's schema family: the defaults for classes, attributes and how to disable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LdapProfile {
    /// `inetOrgPerson` accounts named by `uid`, `groupOfNames` groups, disable by moving.
    #[default]
    OpenLdap,
    /// `user` accounts named by `cn` with `sAMAccountName` and `userPrincipalName`, `group`
    /// groups, disable by `userAccountControl`, an initial password by `unicodePwd` (TLS only).
    ActiveDirectory,
    /// 389 Directory Server / Red Hat IdM style: `groupOfUniqueNames` with `uniqueMember`.
    Ds389,
    /// RFC 2307: `posixAccount` accounts, `posixGroup` groups holding `memberUid` names.
    Posix,
}

impl LdapProfile {
    pub const ALL: &'static [(&'static str, LdapProfile)] = &[
        ("openldap", LdapProfile::OpenLdap),
        ("active_directory", LdapProfile::ActiveDirectory),
        ("389ds", LdapProfile::Ds389),
        ("posix", LdapProfile::Posix),
    ];

    pub fn as_str(self) -> &'static str {
        LdapProfile::ALL.iter().find(|(_, p)| *p == self).map_or("openldap", |(n, _)| n)
    }
}

/// The schema-level overrides a target may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdapOverrides {
    pub user_object_classes: Option<Vec<String>>,
    pub group_object_classes: Option<Vec<String>>,
    pub naming_attribute: Option<String>,
    pub account_name_attribute: Option<String>,
    pub id_attribute: Option<String>,
    pub group_naming_attribute: Option<String>,
    pub member_attribute: Option<String>,
    pub disable: Option<LdapDisable>,
    pub create_groups: Option<bool>,
}

/// How an LDAP account is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapDisable {
    /// Move the entry under `disabled_dn` (works on any schema) and remove its `userPassword`.
    Move,
    /// Set the ACCOUNTDISABLE bit (2) of `userAccountControl` (Active Directory).
    UserAccountControl,
}

/// What a group's member attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberValues {
    /// The member's DN (`member`, `uniqueMember`).
    Dn,
    /// The member's account name (`memberUid`).
    Name,
}

/// A resolved LDAP schema: what the connector writes and searches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSchema {
    pub profile: LdapProfile,
    /// Object classes of a new account; the last one is what searches filter on.
    pub user_classes: Vec<String>,
    /// Object classes of a new group; the last one is what searches filter on.
    pub group_classes: Vec<String>,
    /// The RDN attribute of an account entry; its value is the account name.
    pub naming_attribute: String,
    /// The attribute that holds the account name (`uid`, `sAMAccountName`).
    pub account_name_attribute: String,
    /// The attribute that holds Tenure's identity id (the correlation id).
    pub id_attribute: String,
    pub group_naming_attribute: String,
    pub member_attribute: String,
    pub member_values: MemberValues,
    pub disable: LdapDisable,
    /// Whether a grant of a group that does not exist creates it.
    pub create_groups: bool,
    /// Attributes written when an account is created, by template; an empty result is left out.
    pub attributes: Vec<(String, Template)>,
    /// Attributes that must have a value (the `person` class requires `cn` and `sn`): an empty
    /// result falls back to the account name.
    pub required: Vec<String>,
}

impl LdapSchema {
    /// The object class searches for accounts filter on.
    pub fn user_class(&self) -> &str {
        self.user_classes.last().map_or("top", String::as_str)
    }

    pub fn group_class(&self) -> &str {
        self.group_classes.last().map_or("top", String::as_str)
    }

    /// Attributes the profile manages itself, which a mapping may not set.
    pub fn protected(&self) -> Vec<&str> {
        let mut p = vec![
            "objectClass",
            self.naming_attribute.as_str(),
            self.account_name_attribute.as_str(),
            self.id_attribute.as_str(),
            self.member_attribute.as_str(),
            "userPassword",
            "unicodePwd",
            "memberOf",
        ];
        if self.disable == LdapDisable::UserAccountControl || self.profile == LdapProfile::ActiveDirectory {
            p.push("userAccountControl");
        }
        p
    }
}

// ---- SCIM ----

#[derive(Debug, Clone)]
pub struct ScimSettings {
    pub url: String,
    /// A static bearer token (`token_env` / `token_file`).
    pub token: SecretRef,
    /// OAuth 2.0 client credentials, instead of a static token.
    pub oauth: Option<OAuthSettings>,
    pub tls: TlsSettings,
    pub dialect: ScimDialect,
    /// Resources asked for per page when listing (`count`).
    pub page_size: usize,
    /// Listing fails rather than read more pages than this.
    pub max_pages: usize,
    /// No single answer may be larger than this many bytes.
    pub max_response_bytes: usize,
    /// `max_listing_items` and `max_listing_bytes`: what one listing may read in all.
    pub listing: ListingLimits,
    /// Whether granting a group the service lacks creates it (`create_groups`, default true,
    /// as LDAP's). `false`: such a grant fails until a person creates the group, and a group
    /// deleted by hand is never re-created by `--remediate`.
    pub create_groups: bool,
}

pub const DEFAULT_SCIM_PAGE_SIZE: usize = 500;
pub const DEFAULT_SCIM_MAX_PAGES: usize = 10_000;
pub const DEFAULT_SCIM_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

impl Default for ScimSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            token: SecretRef::None,
            oauth: None,
            tls: TlsSettings::default(),
            dialect: ScimDialect::STANDARD,
            page_size: DEFAULT_SCIM_PAGE_SIZE,
            max_pages: DEFAULT_SCIM_MAX_PAGES,
            max_response_bytes: DEFAULT_SCIM_MAX_RESPONSE_BYTES,
            listing: ListingLimits::default(),
            create_groups: true,
        }
    }
}

/// OAuth 2.0 client credentials grant (RFC 6749 §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretRef,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
    /// CA certificates for the token endpoint; the system's roots when unset. The token
    /// endpoint is always verified: it receives the client secret.
    pub token_ca_file: Option<String>,
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`), which every server must support.
    Basic,
    /// In the form body (`client_secret_post`).
    Post,
}

/// How a service provider wants its requests, where providers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScimDialect {
    pub patch_op_case: PatchOpCase,
    /// Send `active` as the strings `"True"`/`"False"`.
    pub active_as_string: bool,
    /// Remove a member with a filtered path (`members[value eq "ID"]`, RFC 7644); otherwise with
    /// `path: "members"` and the member in `value`, as Entra ID does.
    pub filtered_patch_paths: bool,
    /// Change resources with GET + PUT, never PATCH.
    pub put_instead_of_patch: bool,
}

impl ScimDialect {
    pub const STANDARD: ScimDialect = ScimDialect {
        patch_op_case: PatchOpCase::Lower,
        active_as_string: false,
        filtered_patch_paths: true,
        put_instead_of_patch: false,
    };
    /// What apps built for Microsoft Entra ID provisioning expect: `"op": "Replace"`,
    /// `"active": "False"`, members removed by value.
    pub const ENTRA: ScimDialect = ScimDialect {
        patch_op_case: PatchOpCase::Capitalized,
        active_as_string: true,
        filtered_patch_paths: false,
        put_instead_of_patch: false,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpCase {
    /// `add`, `remove`, `replace` (RFC 7644).
    Lower,
    /// `Add`, `Remove`, `Replace`.
    Capitalized,
}

// ---- PostgreSQL ----

#[derive(Debug, Clone, Default)]
pub struct PostgresSettings {
    pub url: SecretRef,
    /// The role that receives a deleted account's objects (`REASSIGN OWNED BY .. TO ..`).
    pub reassign_to: Option<String>,
    /// `sslmode` on the target; the URL's own `sslmode` when unset, else `prefer`.
    pub sslmode: Option<PgSslMode>,
    pub tls: TlsSettings,
}

/// libpq's `sslmode` names. `require` differs from libpq in one way: the certificate is verified
/// (as with `verify-full`) unless `tls_verify = false` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    Disable,
    /// TLS when the server offers it (verified), plain otherwise. libpq's default.
    Prefer,
    Require,
    /// The chain is verified, the host name is not.
    VerifyCa,
    VerifyFull,
}

impl PgSslMode {
    pub const ALL: &'static [(&'static str, PgSslMode)] = &[
        ("disable", PgSslMode::Disable),
        ("prefer", PgSslMode::Prefer),
        ("require", PgSslMode::Require),
        ("verify-ca", PgSslMode::VerifyCa),
        ("verify-full", PgSslMode::VerifyFull),
    ];

    pub fn parse(s: &str) -> Option<PgSslMode> {
        PgSslMode::ALL.iter().find(|(n, _)| *n == s).map(|(_, m)| *m)
    }

    pub fn as_str(self) -> &'static str {
        PgSslMode::ALL.iter().find(|(_, m)| *m == self).map_or("prefer", |(n, _)| n)
    }
}

#[derive(Debug, Clone)]
pub struct ManualSettings {
    pub owner: String,
    pub sla_hours: u32,
}

impl TargetConfig {
    /// What is insecure about this target's settings, to be printed on every run that uses it.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let off = |what: &str| {
            format!(
                "target `{}`: `tls_verify = false`: the {what} certificate is not checked, so anyone on the \
                 network path can impersonate the server and read what Tenure sends it",
                self.name
            )
        };
        match &self.settings {
            TargetSettings::Ldap(s) => {
                if s.uses_tls() && !s.tls.verify {
                    out.push(off("directory's"));
                }
                if !s.uses_tls() && url_scheme(&s.url).as_deref() == Some("ldap") && !is_loopback_url(&s.url) {
                    out.push(format!(
                        "target `{}`: `url` is plain ldap:// to another host without `starttls`: the bind password \
                         and every entry travel unencrypted; use ldaps:// or `starttls = true`",
                        self.name
                    ));
                }
            }
            TargetSettings::Scim(s) => {
                let scheme = url_scheme(&s.url);
                if scheme.as_deref() == Some("https") && !s.tls.verify {
                    out.push(off("SCIM service's"));
                }
                if scheme.as_deref() == Some("http") && !is_loopback_url(&s.url) {
                    out.push(format!(
                        "target `{}`: `url` is plain http to another host: the token travels unencrypted",
                        self.name
                    ));
                }
            }
            TargetSettings::Postgres(s) if !s.tls.verify => out.push(off("database's")),
            _ => {}
        }
        out
    }
}

/// A URL's scheme as it is used: parsed (so leading spaces and upper case do not hide it) and
/// lower case; `None` for text that is not a URL.
pub(crate) fn url_scheme(url: &str) -> Option<String> {
    url::Url::parse(url).ok().map(|u| u.scheme().to_ascii_lowercase())
}

/// Whether a URL names this machine (`localhost`, `127.0.0.0/8`, `::1`). An ldap:// URL's host
/// is opaque to the parser, so an address in it is read here.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

// ---- parsing ----

const COMMON: &[&str] = &[
    "name",
    "kind",
    "class",
    "entitlements",
    "account_attribute",
    "concurrency",
    "max_attempts",
    "delete_after_days",
    "correlation",
    "correlation_min_confidence",
    "secret_sink",
];

const LDAP_KEYS: &[&str] = &[
    "url",
    "bind_dn",
    "password_env",
    "password_file",
    "users_dn",
    "groups_dn",
    "disabled_dn",
    "page_size",
    "starttls",
    "ca_file",
    "tls_verify",
    "profile",
    "user_object_classes",
    "group_object_classes",
    "naming_attribute",
    "account_name_attribute",
    "id_attribute",
    "group_naming_attribute",
    "member_attribute",
    "disable",
    "create_groups",
    "attributes",
    "max_listing_items",
    "max_listing_bytes",
    "max_listing_seconds",
];

const SCIM_KEYS: &[&str] = &[
    "url",
    "token_env",
    "token_file",
    "token_url",
    "client_id",
    "client_secret_env",
    "client_secret_file",
    "scope",
    "client_auth",
    "token_ca_file",
    "ca_file",
    "tls_verify",
    "dialect",
    "patch_op_case",
    "active_as_string",
    "filtered_patch_paths",
    "put_instead_of_patch",
    "page_size",
    "max_pages",
    "max_response_bytes",
    "create_groups",
    "max_listing_items",
    "max_listing_bytes",
    "max_listing_seconds",
];

const POSTGRES_KEYS: &[&str] = &["url_env", "url_file", "reassign_to", "sslmode", "ca_file", "tls_verify"];

/// The identity-side names a template may use besides the schema's attributes.
const TEMPLATE_SPECIALS: &[&str] = &["account", "id"];

pub(super) fn parse_target(at: usize, t: &Table, schema: &Schema, p: &mut Problems<'_>) -> Option<TargetConfig> {
    let kind_str = t.get("kind").and_then(Node::as_str).unwrap_or("");
    let kind: Option<TargetKind> = kind_str.parse().ok();
    let extra: &[&str] = match kind {
        Some(TargetKind::Ldap) => LDAP_KEYS,
        Some(TargetKind::Scim) => SCIM_KEYS,
        Some(TargetKind::Postgres) => POSTGRES_KEYS,
        Some(TargetKind::Manual) => &["owner", "sla_hours"],
        None => &[],
    };
    let allowed: Vec<&str> = COMMON.iter().chain(extra.iter()).copied().collect();
    let mut r = Reader::new(t, "[[target]]", p, &allowed);
    let name = r.required("name", at);
    if !name.is_empty() && !valid_name(&name) {
        r.p.at(at, format!("target name `{name}` must be letters, digits, `-` or `_`"));
    }
    r.what = format!("[[target]] `{name}`");
    let Some(kind) = kind else {
        let at = t.get("kind").map_or(at, Node::start);
        r.p.at(at, format!("{} has unknown kind `{kind_str}`; expected ldap, scim, postgres or manual", r.what));
        return None;
    };
    let class = match r.string("class") {
        None => match kind {
            TargetKind::Scim => RevocationClass::Scim,
            TargetKind::Manual => RevocationClass::Manual,
            _ => RevocationClass::Api,
        },
        Some(c) => c.parse().unwrap_or_else(|e: String| {
            let at = t.get("class").map_or(at, Node::start);
            r.p.at(at, e);
            RevocationClass::Api
        }),
    };
    let entitlements = r.strings("entitlements").map(|v| v.into_iter().map(|(_, s)| s).collect());
    let account_attribute = match r.string("account_attribute") {
        None => schema.slot_of("username"),
        Some(a) => schema.slot(&a).unwrap_or_else(|| {
            let at = t.get("account_attribute").map_or(at, Node::start);
            r.p.at(at, format!("unknown attribute `{a}` in `account_attribute`"));
            0
        }),
    };
    let concurrency = r.int("concurrency", 1, 256).unwrap_or(4).unsigned_abs() as usize;
    let max_attempts = u32::try_from(r.int("max_attempts", 1, 100).unwrap_or(6)).unwrap_or(6);
    let delete_after_days = r.int("delete_after_days", 0, 36_500).and_then(|d| u32::try_from(d).ok());
    let correlation = parse_correlation(at, t, kind, &mut r);
    let secret_sink = r.string("secret_sink").and_then(|dir| match super::nhi::sink_problem(&dir) {
        Some(why) => {
            let at = t.get("secret_sink").map_or(at, Node::start);
            r.p.at(at, format!("`secret_sink` of {} {why}", r.what));
            None
        }
        None => Some(dir),
    });
    let settings = match kind {
        TargetKind::Ldap => TargetSettings::Ldap(parse_ldap(at, t, schema, &mut r)),
        TargetKind::Scim => TargetSettings::Scim(parse_scim(at, t, &mut r)),
        TargetKind::Postgres => TargetSettings::Postgres(parse_postgres(at, t, &mut r)),
        TargetKind::Manual => TargetSettings::Manual(ManualSettings {
            owner: r.required("owner", at),
            sla_hours: u32::try_from(r.int("sla_hours", 1, 24 * 365).unwrap_or(24)).unwrap_or(24),
        }),
    };
    Some(TargetConfig {
        name,
        kind,
        class,
        entitlements,
        account_attribute,
        concurrency,
        max_attempts,
        delete_after_days,
        correlation,
        secret_sink,
        settings,
    })
}

/// `correlation = [...]` and `correlation_min_confidence`, with the kind's defaults.
fn parse_correlation(at: usize, t: &Table, kind: TargetKind, r: &mut Reader<'_, '_, '_>) -> CorrelationSettings {
    let mut out = CorrelationSettings::default_for(kind);
    if let Some(list) = r.strings("correlation") {
        if kind == TargetKind::Manual {
            r.p.at(
                pos(t, "correlation", at),
                format!("`correlation` in {} has no effect: manual targets have no accounts to read", r.what),
            );
        }
        let mut rules = Vec::new();
        for (at, name) in list {
            let Some(rule) = CorrelationRule::ALL.iter().find(|(n, _)| *n == name).map(|(_, rule)| *rule) else {
                let names: Vec<&str> = CorrelationRule::ALL.iter().map(|(n, _)| *n).collect();
                r.p.at(
                    at,
                    format!("unknown correlation rule `{name}` in {}; expected one of: {}", r.what, names.join(", ")),
                );
                continue;
            };
            if rules.contains(&rule) {
                r.p.at(at, format!("correlation rule `{name}` appears twice in {}", r.what));
                continue;
            }
            if rule == CorrelationRule::Email && kind == TargetKind::Postgres {
                r.p.at(
                    at,
                    format!("correlation rule `email` in {} cannot match: PostgreSQL roles have no email", r.what),
                );
                continue;
            }
            rules.push(rule);
        }
        out.rules = rules;
    }
    if let Some(c) = r.float("correlation_min_confidence") {
        if (0.0..=1.0).contains(&c) && c > 0.0 {
            out.min_confidence = c;
        } else {
            r.p.at(
                pos(t, "correlation_min_confidence", at),
                format!("`correlation_min_confidence` in {} is {c}; expected more than 0 and at most 1", r.what),
            );
        }
    }
    out
}

/// The offset of `key` in `t`, else `at`.
fn pos(t: &Table, key: &str, at: usize) -> usize {
    t.get(key).map_or(at, Node::start)
}

/// `ca_file` and `tls_verify`.
fn parse_tls(t: &Table, r: &mut Reader<'_, '_, '_>) -> TlsSettings {
    let ca_file = r.string("ca_file");
    if let Some(f) = &ca_file
        && f.trim().is_empty()
    {
        let at = pos(t, "ca_file", 0);
        r.p.at(at, format!("`ca_file` in {} must not be empty", r.what));
    }
    let verify = r.boolean("tls_verify").unwrap_or(true);
    if !verify && ca_file.is_some() {
        let at = pos(t, "tls_verify", 0);
        r.p.at(
            at,
            format!("{} sets `ca_file` and `tls_verify = false`; a CA file only matters when verifying", r.what),
        );
    }
    TlsSettings { ca_file, verify }
}

/// Reports TLS keys that would have no effect, so nobody believes a connection is protected
/// when it is not.
fn tls_unused(t: &Table, r: &mut Reader<'_, '_, '_>, why: &str) {
    for key in ["ca_file", "tls_verify"] {
        if let Some(n) = t.get(key) {
            r.p.at(n.start(), format!("`{key}` in {} has no effect: {why}", r.what));
        }
    }
}

/// An LDAP attribute description (RFC 4512 §1.4 `descr`): a letter, then letters, digits, `-`.
fn ldap_attr_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic()) && c.all(|x| x.is_ascii_alphanumeric() || x == '-')
}

fn parse_ldap(at: usize, t: &Table, schema: &Schema, r: &mut Reader<'_, '_, '_>) -> LdapSettings {
    let url = r.required("url", at);
    r.check_url(&url, &["ldap", "ldaps", "ldapi"], "use `password_env` or `password_file`");
    let password = r.secret("password");
    let starttls = r.boolean("starttls").unwrap_or(false);
    let scheme = url_scheme(&url);
    if starttls && scheme.as_deref() != Some("ldap") && !url.is_empty() {
        let at = pos(t, "starttls", at);
        r.p.at(at, format!("`starttls` in {} needs an ldap:// url (ldaps:// is TLS from the start)", r.what));
    }
    let tls = parse_tls(t, r);
    if scheme.as_deref() != Some("ldaps") && !starttls {
        tls_unused(t, r, "the connection is not encrypted; use ldaps:// or `starttls = true`");
    }
    let profile = match r.string("profile") {
        None => LdapProfile::OpenLdap,
        Some(s) => LdapProfile::ALL.iter().find(|(n, _)| *n == s).map(|(_, p)| *p).unwrap_or_else(|| {
            let names: Vec<&str> = LdapProfile::ALL.iter().map(|(n, _)| *n).collect();
            r.p.at(pos(t, "profile", at), format!("unknown ldap profile `{s}`; expected one of: {}", names.join(", ")));
            LdapProfile::OpenLdap
        }),
    };
    let attr_key = |r: &mut Reader<'_, '_, '_>, key: &str| -> Option<String> {
        let v = r.string(key)?;
        if !ldap_attr_name(&v) {
            r.p.at(pos(t, key, at), format!("`{key}` in {} is not an LDAP attribute name: `{v}`", r.what));
            return None;
        }
        Some(v)
    };
    let naming_attribute = attr_key(r, "naming_attribute");
    let account_name_attribute = attr_key(r, "account_name_attribute");
    let id_attribute = attr_key(r, "id_attribute");
    let group_naming_attribute = attr_key(r, "group_naming_attribute");
    let member_attribute = attr_key(r, "member_attribute");
    let classes = |r: &mut Reader<'_, '_, '_>, key: &str| -> Option<Vec<String>> {
        let list = r.strings(key)?;
        if list.is_empty() {
            r.p.at(pos(t, key, at), format!("`{key}` in {} must name at least one object class", r.what));
            return None;
        }
        for (off, c) in &list {
            if !ldap_attr_name(c) {
                r.p.at(*off, format!("`{key}` in {} holds `{c}`, which is not an object class name", r.what));
            }
        }
        Some(list.into_iter().map(|(_, c)| c).collect())
    };
    let user_object_classes = classes(r, "user_object_classes");
    let group_object_classes = classes(r, "group_object_classes");
    let disable = match r.string("disable").as_deref() {
        None => None,
        Some("move") => Some(LdapDisable::Move),
        Some("user_account_control") => Some(LdapDisable::UserAccountControl),
        Some(other) => {
            r.p.at(
                pos(t, "disable", at),
                format!("`disable` in {} is `{other}`; expected `move` or `user_account_control`", r.what),
            );
            None
        }
    };
    let create_groups = r.boolean("create_groups");
    let disabled_dn = r.string("disabled_dn").filter(|d| !d.trim().is_empty());
    let mut attributes = Vec::new();
    if let Some(node) = t.get("attributes") {
        match node.as_table() {
            None => {
                r.p.at(node.start(), format!("`attributes` in {} must be a table of attribute = \"template\"", r.what))
            }
            Some(table) => {
                for e in &table.entries {
                    if !ldap_attr_name(&e.key) {
                        r.p.at(e.key_span.start, format!("`{}` is not an LDAP attribute name", e.key));
                        continue;
                    }
                    let Some(text) = e.node.as_str() else {
                        r.p.at(e.node.start(), format!("the template for `{}` must be a string", e.key));
                        continue;
                    };
                    match Template::parse(text) {
                        Ok(tpl) => {
                            for v in tpl.vars() {
                                if !TEMPLATE_SPECIALS.contains(&v) && schema.slot(v).is_none() {
                                    r.p.at(
                                        e.node.start(),
                                        format!(
                                            "the template for `{}` uses unknown attribute `{v}`; declare it under \
                                             [attributes] or use one of: {}, {}",
                                            e.key,
                                            TEMPLATE_SPECIALS.join(", "),
                                            schema.names().collect::<Vec<_>>().join(", ")
                                        ),
                                    );
                                }
                            }
                            attributes.push((e.key.clone(), tpl));
                        }
                        Err(why) => r.p.at(e.node.start(), format!("the template for `{}`: {why}", e.key)),
                    }
                }
            }
        }
    }
    let settings = LdapSettings {
        url,
        bind_dn: r.required("bind_dn", at),
        password,
        users_dn: r.required("users_dn", at),
        groups_dn: r.required("groups_dn", at),
        disabled_dn,
        page_size: i32::try_from(r.int("page_size", 1, 10_000).unwrap_or(500)).unwrap_or(500),
        starttls,
        tls,
        profile,
        overrides: LdapOverrides {
            user_object_classes,
            group_object_classes,
            naming_attribute,
            account_name_attribute,
            id_attribute,
            group_naming_attribute,
            member_attribute,
            disable,
            create_groups,
        },
        attributes,
        listing: listing_limits(r),
    };
    let resolved = settings.schema();
    if resolved.disable == LdapDisable::Move && settings.disabled_dn.is_none() {
        r.p.at(
            at,
            format!(
                "{} is missing `disabled_dn`: profile `{}` disables an account by moving it there",
                r.what,
                profile.as_str()
            ),
        );
    }
    let protected = resolved.protected();
    if let Some(table) = t.get("attributes").and_then(Node::as_table) {
        for e in &table.entries {
            if let Some(p) = protected.iter().find(|p| p.eq_ignore_ascii_case(&e.key)) {
                r.p.at(
                    e.key_span.start,
                    format!("`{}` is managed by the `{}` profile and cannot be mapped", p, profile.as_str()),
                );
            }
        }
    }
    if profile == LdapProfile::Posix {
        for need in ["uidNumber", "gidNumber"] {
            if !settings.attributes.iter().any(|(a, _)| a.eq_ignore_ascii_case(need)) {
                r.p.at(
                    at,
                    format!(
                        "{} (profile `posix`) needs `{need}` under [target.attributes], from an identity attribute \
                         such as `{need} = \"{{{}}}\"` declared in [attributes]",
                        r.what,
                        if need == "uidNumber" { "uid_number" } else { "gid_number" }
                    ),
                );
            }
        }
    }
    if profile == LdapProfile::ActiveDirectory && !settings.uses_tls() && !settings.url.is_empty() {
        r.p.at(
            pos(t, "url", at),
            format!(
                "{} (profile `active_directory`) sets initial passwords through `unicodePwd`, which Active \
                 Directory accepts only over TLS: use an ldaps:// url or `starttls = true`",
                r.what
            ),
        );
    }
    settings
}

fn parse_scim(at: usize, t: &Table, r: &mut Reader<'_, '_, '_>) -> ScimSettings {
    let url = r.required("url", at);
    r.check_url(&url, &["http", "https"], "use `token_env` or `token_file`");
    let token = r.secret("token");
    let token_url = r.string("token_url");
    let oauth = match token_url {
        None => {
            for key in ["client_id", "client_secret_env", "client_secret_file", "scope", "client_auth", "token_ca_file"]
            {
                if let Some(n) = t.get(key) {
                    r.p.at(
                        n.start(),
                        format!("`{key}` in {} needs `token_url` (OAuth 2.0 client credentials)", r.what),
                    );
                }
            }
            None
        }
        Some(token_url) => {
            let at_url = pos(t, "token_url", at);
            if let Some(why) =
                url_problem(&token_url, &["http", "https"], "use `client_secret_env` or `client_secret_file`")
            {
                r.p.at(at_url, format!("`token_url` of {} {why}", r.what));
            } else if url_scheme(&token_url).as_deref() == Some("http") && !is_loopback_url(&token_url) {
                r.p.at(
                    at_url,
                    format!("`token_url` of {} must be https: the client secret would travel unencrypted", r.what),
                );
            }
            if token != SecretRef::None {
                r.p.at(
                    at_url,
                    format!("{} sets both a static token and `token_url`; choose one way to authenticate", r.what),
                );
            }
            let client_id = r.required("client_id", at_url);
            let client_secret = r.secret("client_secret");
            if client_secret == SecretRef::None {
                r.p.at(at_url, format!("{} needs `client_secret_env` or `client_secret_file`", r.what));
            }
            let client_auth = match r.string("client_auth").as_deref() {
                None | Some("basic") => ClientAuth::Basic,
                Some("post") => ClientAuth::Post,
                Some(other) => {
                    r.p.at(
                        pos(t, "client_auth", at),
                        format!("`client_auth` in {} is `{other}`; expected `basic` or `post`", r.what),
                    );
                    ClientAuth::Basic
                }
            };
            Some(OAuthSettings {
                token_url,
                client_id,
                client_secret,
                scope: r.string("scope").filter(|s| !s.trim().is_empty()),
                client_auth,
                token_ca_file: r.string("token_ca_file"),
            })
        }
    };
    let tls = parse_tls(t, r);
    if url_scheme(&url).as_deref() == Some("http") {
        tls_unused(t, r, "the url is plain http; use https://");
    }
    let mut dialect = match r.string("dialect").as_deref() {
        None | Some("standard") => ScimDialect::STANDARD,
        Some("entra") => ScimDialect::ENTRA,
        Some(other) => {
            r.p.at(
                pos(t, "dialect", at),
                format!("unknown dialect `{other}` in {}; expected `standard` or `entra`", r.what),
            );
            ScimDialect::STANDARD
        }
    };
    match r.string("patch_op_case").as_deref() {
        None => {}
        Some("lower") => dialect.patch_op_case = PatchOpCase::Lower,
        Some("capitalized") => dialect.patch_op_case = PatchOpCase::Capitalized,
        Some(other) => r.p.at(
            pos(t, "patch_op_case", at),
            format!("`patch_op_case` in {} is `{other}`; expected `lower` or `capitalized`", r.what),
        ),
    }
    if let Some(b) = r.boolean("active_as_string") {
        dialect.active_as_string = b;
    }
    if let Some(b) = r.boolean("filtered_patch_paths") {
        dialect.filtered_patch_paths = b;
    }
    if let Some(b) = r.boolean("put_instead_of_patch") {
        dialect.put_instead_of_patch = b;
    }
    let size = |r: &mut Reader<'_, '_, '_>, key: &str, min: i64, max: i64, default: usize| {
        r.int(key, min, max).and_then(|n| usize::try_from(n).ok()).unwrap_or(default)
    };
    ScimSettings {
        url,
        token,
        oauth,
        tls,
        dialect,
        page_size: size(r, "page_size", 1, 10_000, DEFAULT_SCIM_PAGE_SIZE),
        max_pages: size(r, "max_pages", 1, 10_000_000, DEFAULT_SCIM_MAX_PAGES),
        max_response_bytes: size(r, "max_response_bytes", 4096, 1 << 32, DEFAULT_SCIM_MAX_RESPONSE_BYTES),
        listing: listing_limits(r),
        create_groups: r.boolean("create_groups").unwrap_or(true),
    }
}

/// `max_listing_items` (at least 1), `max_listing_bytes` (at least 4 KiB) and
/// `max_listing_seconds` (1 s to a week), with the defaults.
fn listing_limits(r: &mut Reader<'_, '_, '_>) -> ListingLimits {
    let mut size = |key: &str, min: i64, max: i64, default: usize| {
        r.int(key, min, max).and_then(|n| usize::try_from(n).ok()).unwrap_or(default)
    };
    let max_items = size("max_listing_items", 1, 1_000_000_000, DEFAULT_MAX_LISTING_ITEMS);
    let max_bytes = size("max_listing_bytes", 4096, 1 << 40, DEFAULT_MAX_LISTING_BYTES);
    let max_seconds = r
        .int("max_listing_seconds", 1, 7 * 24 * 3600)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(DEFAULT_MAX_LISTING_SECONDS);
    ListingLimits { max_items, max_bytes, max_seconds }
}

fn parse_postgres(at: usize, t: &Table, r: &mut Reader<'_, '_, '_>) -> PostgresSettings {
    let url = r.secret("url");
    if url == SecretRef::None {
        r.p.at(at, format!("{} needs `url_env` or `url_file` (the connection URL holds a password)", r.what));
    }
    let sslmode = r.string("sslmode").and_then(|s| {
        PgSslMode::parse(&s).or_else(|| {
            let names: Vec<&str> = PgSslMode::ALL.iter().map(|(n, _)| *n).collect();
            r.p.at(
                pos(t, "sslmode", at),
                format!("`sslmode` in {} is `{s}`; expected one of: {}", r.what, names.join(", ")),
            );
            None
        })
    });
    let tls = parse_tls(t, r);
    match sslmode {
        Some(PgSslMode::Disable) => tls_unused(t, r, "`sslmode = \"disable\"` turns TLS off"),
        Some(m @ (PgSslMode::VerifyCa | PgSslMode::VerifyFull)) if !tls.verify => {
            r.p.at(
                pos(t, "tls_verify", at),
                format!(
                    "{} sets `sslmode = \"{}\"` and `tls_verify = false`; use `sslmode = \"require\"` to skip \
                     verification",
                    r.what,
                    m.as_str()
                ),
            );
        }
        _ => {}
    }
    PostgresSettings { url, reassign_to: r.string("reassign_to"), sslmode, tls }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const BASE: &str = r#"
[attributes]
uid_number = "string"

[[target]]
name = "t"
"#;

    /// Parses a config with one target made of `body` and returns its settings or the problems
    /// (as `line: message`).
    fn load(body: &str) -> Result<TargetSettings, Vec<String>> {
        let text = format!("{BASE}{body}\n");
        match parse("tenure.toml", &text) {
            Ok(c) => Ok(c.targets.into_iter().next().map(|t| t.settings).ok_or_else(Vec::new)?),
            Err(p) => Err(p.iter().map(|p| format!("{}: {}", p.line, p.message)).collect()),
        }
    }

    const LDAP: &str = "kind = \"ldap\"\nurl = \"ldap://127.0.0.1:389\"\nbind_dn = \"cn=admin,dc=example,dc=com\"\n\
                        password_env = \"P\"\nusers_dn = \"ou=people,dc=example,dc=com\"\n\
                        groups_dn = \"ou=groups,dc=example,dc=com\"\ndisabled_dn = \"ou=disabled,dc=example,dc=com\"\n";
    const AD: &str = "kind = \"ldap\"\nprofile = \"active_directory\"\nurl = \"ldaps://dc1.corp.example.com\"\n\
                      bind_dn = \"cn=tenure,ou=svc,dc=corp,dc=example,dc=com\"\npassword_env = \"P\"\n\
                      users_dn = \"ou=People,dc=corp,dc=example,dc=com\"\ngroups_dn = \"ou=Groups,dc=corp,dc=example,dc=com\"\n";
    const SCIM: &str = "kind = \"scim\"\nurl = \"https://app.example.com/scim/v2\"\n";
    const PG: &str = "kind = \"postgres\"\nurl_env = \"U\"\n";

    /// Expects a problem on line `line` (counted in `body`, from 1; 0 is the `[[target]]` line)
    /// containing `want`.
    fn check_problem(body: &str, line: usize, want: &str) {
        let offset = BASE.lines().count();
        let line = if line == 0 { line + offset - 1 } else { line + offset };
        match load(body) {
            Ok(_) => panic!("accepted: {body}"),
            Err(p) => assert!(
                p.iter().any(|p| p.starts_with(&format!("{line}: ")) && p.contains(want)),
                "wanted line {line} `{want}`, got {p:#?}"
            ),
        }
    }

    fn ldap(body: &str) -> LdapSettings {
        match load(body) {
            Ok(TargetSettings::Ldap(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    fn scim(body: &str) -> ScimSettings {
        match load(body) {
            Ok(TargetSettings::Scim(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    fn pg(body: &str) -> PostgresSettings {
        match load(body) {
            Ok(TargetSettings::Postgres(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ldap_profiles_resolve_to_their_schemas() {
        let s = ldap(LDAP).schema();
        assert_eq!((s.user_class(), s.group_class()), ("inetOrgPerson", "groupOfNames"));
        assert_eq!((s.naming_attribute.as_str(), s.id_attribute.as_str()), ("uid", "employeeNumber"));
        assert_eq!((s.disable, s.member_values, s.create_groups), (LdapDisable::Move, MemberValues::Dn, true));
        let attrs: Vec<&str> = s.attributes.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(attrs, ["cn", "sn", "displayName", "givenName", "mail"]);

        let s = ldap(AD).schema();
        assert_eq!((s.user_class(), s.group_class()), ("user", "group"));
        assert_eq!(s.naming_attribute, "cn");
        assert_eq!(s.account_name_attribute, "sAMAccountName");
        assert_eq!(s.id_attribute, "employeeID");
        assert_eq!(s.disable, LdapDisable::UserAccountControl);
        let upn = s.attributes.iter().find(|(a, _)| a == "userPrincipalName").map(|(_, t)| t.to_string());
        assert_eq!(upn.as_deref(), Some("{account}@corp.example.com"));
        assert!(!s.attributes.iter().any(|(a, _)| a == "cn"), "cn is the naming attribute in AD");

        let s = ldap(&format!("{LDAP}profile = \"389ds\"")).schema();
        assert_eq!((s.group_class(), s.member_attribute.as_str()), ("groupOfUniqueNames", "uniqueMember"));

        let posix = format!(
            "{LDAP}profile = \"posix\"\n[target.attributes]\nuidNumber = \"{{uid_number}}\"\ngidNumber = \"100\"\n"
        );
        let s = ldap(&posix).schema();
        assert_eq!((s.user_class(), s.group_class()), ("posixAccount", "posixGroup"));
        assert_eq!((s.member_attribute.as_str(), s.member_values), ("memberUid", MemberValues::Name));
        assert!(!s.create_groups);
        let attrs: Vec<&str> = s.attributes.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(attrs, ["cn", "sn", "displayName", "givenName", "mail", "homeDirectory", "gidNumber", "uidNumber"]);
    }

    #[test]
    fn ldap_overrides_and_mapping_apply_over_the_profile() {
        let body = format!(
            "{LDAP}user_object_classes = [\"top\", \"person\", \"organizationalPerson\", \"inetOrgPerson\", \"acmePerson\"]\n\
             naming_attribute = \"cn\"\nid_attribute = \"acmeId\"\nmember_attribute = \"uniqueMember\"\n\
             group_object_classes = [\"groupOfUniqueNames\"]\ncreate_groups = false\ndisable = \"move\"\n\
             [target.attributes]\nmail = \"{{username}}@example.com\"\ndisplayName = \"{{family_name}}, {{given_name}}\"\n\
             title = \"{{title}}\"\ncn = \"ignored: naming attribute\"\n"
        );
        let s = ldap(&body.replace("cn = \"ignored: naming attribute\"\n", "")).schema();
        assert_eq!(s.user_class(), "acmePerson");
        assert_eq!((s.naming_attribute.as_str(), s.id_attribute.as_str()), ("cn", "acmeId"));
        assert_eq!(
            (s.group_class(), s.member_attribute.as_str(), s.create_groups),
            ("groupOfUniqueNames", "uniqueMember", false)
        );
        let attrs: Vec<(String, String)> = s.attributes.iter().map(|(a, t)| (a.clone(), t.to_string())).collect();
        assert!(attrs.contains(&("mail".into(), "{username}@example.com".into())), "{attrs:?}");
        assert!(attrs.contains(&("displayName".into(), "{family_name}, {given_name}".into())), "{attrs:?}");
        assert!(attrs.contains(&("title".into(), "{title}".into())), "{attrs:?}");
        assert!(!attrs.iter().any(|(a, _)| a == "cn"), "{attrs:?}");
        assert_eq!(s.required, ["sn"]);
        // The naming attribute cannot be mapped.
        check_problem(&body, 19, "`cn` is managed by the `openldap` profile");
    }

    /// The correlation settings of the one target made of `body`.
    fn correlation(body: &str) -> CorrelationSettings {
        let text = format!("{BASE}{body}\n");
        match parse("tenure.toml", &text) {
            Ok(c) => c.targets.into_iter().next().map(|t| t.correlation).unwrap(),
            Err(p) => panic!("{p:#?}"),
        }
    }

    #[test]
    fn correlation_rules_default_per_kind_and_load_in_order() {
        use CorrelationRule::*;
        assert_eq!(correlation(LDAP).rules, [EmployeeNumber, Username, Email, Name]);
        assert_eq!(correlation(SCIM).rules, [EmployeeNumber, Username, Email, Name]);
        assert_eq!(correlation(PG).rules, [EmployeeNumber, Username]);
        assert_eq!(correlation(LDAP).min_confidence, DEFAULT_MIN_CONFIDENCE);
        let c = correlation(&format!(
            "{SCIM}correlation = [\"email\", \"external_id\"]\ncorrelation_min_confidence = 0.75"
        ));
        assert_eq!((c.rules, c.min_confidence), (vec![Email, EmployeeNumber], 0.75));
        assert!(correlation(&format!("{LDAP}correlation = []")).rules.is_empty(), "`[]` turns it off");
    }

    #[test]
    fn correlation_problems_name_the_line_and_reason() {
        check_problem(&format!("{LDAP}correlation = [\"username\", \"phone\"]"), 8, "unknown correlation rule `phone`");
        check_problem(&format!("{LDAP}correlation = [\"email\", \"email\"]"), 8, "appears twice");
        check_problem(&format!("{PG}correlation = [\"email\"]"), 3, "PostgreSQL roles have no email");
        check_problem(&format!("{LDAP}correlation = \"username\""), 8, "must be an array of strings");
        check_problem(&format!("{LDAP}correlation_min_confidence = 1.5"), 8, "expected more than 0 and at most 1");
        check_problem(&format!("{LDAP}correlation_min_confidence = \"high\""), 8, "must be a number");
    }

    #[test]
    fn ldap_problems_name_the_line_and_reason() {
        check_problem(&format!("{LDAP}profile = \"novell\""), 8, "unknown ldap profile `novell`");
        check_problem(&format!("{LDAP}[target.attributes]\nmail = \"{{emial}}\""), 9, "uses unknown attribute `emial`");
        check_problem(&format!("{LDAP}[target.attributes]\nmail = \"{{email\""), 9, "is not closed");
        check_problem(&format!("{LDAP}[target.attributes]\nuserPassword = \"x\""), 9, "`userPassword` is managed");
        check_problem(&format!("{LDAP}[target.attributes]\n\"bad name\" = \"x\""), 9, "not an LDAP attribute name");
        check_problem(&format!("{LDAP}naming_attribute = \"u id\""), 8, "not an LDAP attribute name");
        check_problem(&format!("{LDAP}user_object_classes = []"), 8, "at least one object class");
        check_problem(&format!("{LDAP}disable = \"lock\""), 8, "expected `move` or `user_account_control`");
        check_problem(&format!("{LDAP}starttls = \"yes\""), 8, "true or false");
        check_problem(
            &LDAP.replace("disabled_dn = \"ou=disabled,dc=example,dc=com\"\n", ""),
            0,
            "missing `disabled_dn`",
        );
        check_problem(&format!("{LDAP}profile = \"posix\""), 0, "needs `uidNumber`");
        check_problem(&format!("{LDAP}profile = \"posix\""), 0, "needs `gidNumber`");
        // TLS keys that would do nothing are refused.
        check_problem(&format!("{LDAP}ca_file = \"/etc/ca.pem\""), 8, "has no effect: the connection is not encrypted");
        check_problem(&format!("{LDAP}tls_verify = false"), 8, "has no effect");
        let ldaps = LDAP.replace("ldap://127.0.0.1:389", "ldaps://127.0.0.1:636");
        check_problem(&format!("{ldaps}starttls = true"), 8, "needs an ldap:// url");
        check_problem(&format!("{ldaps}ca_file = \"ca.pem\"\ntls_verify = false"), 9, "only matters when verifying");
        // Active Directory takes passwords only over TLS.
        check_problem(&AD.replace("ldaps://", "ldap://"), 3, "accepts only over TLS");
    }

    #[test]
    fn ldap_tls_settings_load() {
        let s = ldap(&format!("{LDAP}starttls = true\nca_file = \"/etc/tenure/ca.pem\""));
        assert!(s.starttls && s.uses_tls());
        assert_eq!(s.tls, TlsSettings { ca_file: Some("/etc/tenure/ca.pem".into()), verify: true });
        let ad = ldap(AD);
        assert!(ad.uses_tls() && ad.tls.verify && ad.disabled_dn.is_none());
        let ad_starttls = ldap(&format!("{}starttls = true", AD.replace("ldaps://", "ldap://")));
        assert!(ad_starttls.uses_tls());
    }

    #[test]
    fn scim_auth_dialect_and_paging_load_with_defaults() {
        let s = scim(&format!("{SCIM}token_env = \"T\""));
        assert_eq!(s.token, SecretRef::Env("T".into()));
        assert_eq!(s.oauth, None);
        assert_eq!(s.dialect, ScimDialect::STANDARD);
        assert_eq!(
            (s.page_size, s.max_pages, s.max_response_bytes),
            (DEFAULT_SCIM_PAGE_SIZE, DEFAULT_SCIM_MAX_PAGES, DEFAULT_SCIM_MAX_RESPONSE_BYTES)
        );
        let s = scim(&format!(
            "{SCIM}token_url = \"https://login.example.com/oauth2/token\"\nclient_id = \"tenure\"\n\
             client_secret_file = \"/run/secrets/app\"\nscope = \"scim.write\"\nclient_auth = \"post\"\n\
             dialect = \"entra\"\nfiltered_patch_paths = true\npage_size = 100\nmax_pages = 50\n\
             max_response_bytes = 1048576\nca_file = \"/etc/app-ca.pem\""
        ));
        assert_eq!(
            s.oauth,
            Some(OAuthSettings {
                token_url: "https://login.example.com/oauth2/token".into(),
                client_id: "tenure".into(),
                client_secret: SecretRef::File("/run/secrets/app".into()),
                scope: Some("scim.write".into()),
                client_auth: ClientAuth::Post,
                token_ca_file: None,
            })
        );
        assert_eq!(s.dialect, ScimDialect { filtered_patch_paths: true, ..ScimDialect::ENTRA });
        assert_eq!((s.page_size, s.max_pages, s.max_response_bytes), (100, 50, 1_048_576));
        assert!(s.create_groups, "groups are created on a grant unless `create_groups = false`");
        assert!(!scim(&format!("{SCIM}token_env = \"T\"\ncreate_groups = false")).create_groups);
        assert_eq!(s.tls.ca_file.as_deref(), Some("/etc/app-ca.pem"));
    }

    #[test]
    fn issue15_listing_caps_load_per_target_with_documented_defaults() {
        let s = scim(&format!("{SCIM}token_env = \"T\""));
        assert_eq!(s.listing, ListingLimits { max_items: 1_000_000, max_bytes: 256 << 20, max_seconds: 900 });
        let s = scim(&format!(
            "{SCIM}token_env = \"T\"\nmax_listing_items = 10\nmax_listing_bytes = 5000\nmax_listing_seconds = 30"
        ));
        assert_eq!(s.listing, ListingLimits { max_items: 10, max_bytes: 5000, max_seconds: 30 });
        let l = ldap(&format!("{LDAP}max_listing_items = 7\nmax_listing_bytes = 8192\nmax_listing_seconds = 5"));
        assert_eq!(l.listing, ListingLimits { max_items: 7, max_bytes: 8192, max_seconds: 5 });
        check_problem(&format!("{LDAP}max_listing_seconds = 0"), 8, "`max_listing_seconds` in [[target]] `t` is 0");
        assert_eq!(ldap(LDAP).listing, ListingLimits::default());
        check_problem(&format!("{SCIM}max_listing_items = 0"), 3, "`max_listing_items` in [[target]] `t` is 0");
        check_problem(&format!("{SCIM}max_listing_bytes = 10"), 3, "expected 4096");
    }

    #[test]
    fn scim_problems_name_the_line_and_reason() {
        let oauth = format!("{SCIM}token_url = \"https://idp.example.com/token\"\nclient_id = \"c\"\n");
        check_problem(&oauth, 3, "needs `client_secret_env` or `client_secret_file`");
        check_problem(&format!("{oauth}client_secret_env = \"S\"\ntoken_env = \"T\""), 3, "both a static token");
        check_problem(
            &format!(
                "{SCIM}token_url = \"http://idp.example.com/token\"\nclient_id = \"c\"\nclient_secret_env = \"S\""
            ),
            3,
            "must be https",
        );
        check_problem(
            &format!(
                "{SCIM}token_url = \"https://idp.example.com/token?client_secret=abc\"\nclient_id = \"c\"\nclient_secret_env = \"S\""
            ),
            3,
            "carries a secret in its query",
        );
        check_problem(&format!("{SCIM}client_id = \"c\""), 3, "needs `token_url`");
        check_problem(
            &format!("{oauth}client_secret_env = \"S\"\nclient_auth = \"jwt\""),
            6,
            "expected `basic` or `post`",
        );
        check_problem(&format!("{oauth}client_secret = \"hunter2\""), 5, "secrets never go in the config");
        check_problem(&format!("{SCIM}dialect = \"okta\""), 3, "unknown dialect `okta`");
        check_problem(&format!("{SCIM}patch_op_case = \"upper\""), 3, "expected `lower` or `capitalized`");
        check_problem(&format!("{SCIM}page_size = 0"), 3, "expected 1 to 10000");
        check_problem(&format!("{SCIM}max_response_bytes = 10"), 3, "expected 4096");
        let http = SCIM.replace("https://app.example.com", "http://127.0.0.1:8000");
        check_problem(&format!("{http}ca_file = \"ca.pem\""), 3, "has no effect: the url is plain http");
        // A loopback token endpoint may be plain http (a local sidecar); others may not.
        let local =
            format!("{http}token_url = \"http://127.0.0.1:9000/token\"\nclient_id = \"c\"\nclient_secret_env = \"S\"");
        assert!(scim(&local).oauth.is_some());
    }

    #[test]
    fn postgres_sslmode_loads_and_contradictions_are_refused() {
        assert_eq!(pg(PG).sslmode, None);
        assert_eq!(
            pg(&format!("{PG}sslmode = \"verify-full\"\nca_file = \"ca.pem\"")).sslmode,
            Some(PgSslMode::VerifyFull)
        );
        let s = pg(&format!("{PG}sslmode = \"require\"\ntls_verify = false"));
        assert_eq!((s.sslmode, s.tls.verify), (Some(PgSslMode::Require), false));
        check_problem(&format!("{PG}sslmode = \"allow\""), 3, "expected one of: disable, prefer");
        check_problem(&format!("{PG}sslmode = \"verify-full\"\ntls_verify = false"), 4, "use `sslmode = \"require\"`");
        check_problem(&format!("{PG}sslmode = \"disable\"\nca_file = \"ca.pem\""), 4, "turns TLS off");
    }

    #[test]
    fn insecure_settings_are_warned_about() {
        let text = format!(
            "{BASE}{}tls_verify = false\n\n[[target]]\nname = \"app\"\n{SCIM}token_env = \"T\"\n\n[[target]]\nname = \"plain\"\n\
             kind = \"scim\"\nurl = \"http://scim.example.com/v2\"\ntoken_env = \"T\"\n\n[[target]]\nname = \"local\"\n\
             kind = \"scim\"\nurl = \"http://127.0.0.1:8000/v2\"\n",
            LDAP.replace("ldap://", "ldaps://")
        );
        let c = parse("tenure.toml", &text).unwrap_or_else(|p| panic!("{p:#?}"));
        let warnings: Vec<String> = c.targets.iter().flat_map(TargetConfig::warnings).collect();
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(warnings[0].starts_with("target `t`: `tls_verify = false`"), "{warnings:#?}");
        assert!(warnings[1].contains("target `plain`") && warnings[1].contains("unencrypted"), "{warnings:#?}");
    }

    #[test]
    fn issue15_schemes_are_compared_as_parsed_so_case_and_spaces_hide_nothing() {
        for url in ["HTTP://idp.example.com/token", " http://idp.example.com/token", "Http://idp.example.com/token"] {
            check_problem(
                &format!("{SCIM}token_url = \"{url}\"\nclient_id = \"c\"\nclient_secret_env = \"S\""),
                3,
                "must be https",
            );
        }
        // A plain-http SCIM url in capitals is warned about and its `ca_file` is refused.
        let text = format!("{BASE}kind = \"scim\"\nurl = \"HTTP://scim.example.com/v2\"\ntoken_env = \"T\"\n");
        let c = parse("tenure.toml", &text).unwrap_or_else(|p| panic!("{p:#?}"));
        let w = c.targets[0].warnings();
        assert!(w.len() == 1 && w[0].contains("plain http to another host"), "{w:#?}");
        let http = SCIM.replace("https://app.example.com", "HTTP://127.0.0.1:8000");
        check_problem(&format!("{http}ca_file = \"ca.pem\""), 3, "has no effect: the url is plain http");
        // `LDAPS://` is TLS, `LDAP://` with `starttls` is allowed.
        assert!(ldap(&LDAP.replace("ldap://", "LDAPS://")).uses_tls());
        assert!(ldap(&format!("{}starttls = true", LDAP.replace("ldap://", "LDAP://"))).starttls);
    }

    #[test]
    fn issue15_plain_ldap_to_another_host_is_warned_about() {
        let warn = |ldap: &str| {
            let c = parse("tenure.toml", &format!("{BASE}{ldap}")).unwrap_or_else(|p| panic!("{p:#?}"));
            c.targets[0].warnings()
        };
        let w = warn(&LDAP.replace("ldap://127.0.0.1:389", "ldap://dir.example.com"));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].starts_with("target `t`: `url` is plain ldap:// to another host"), "{w:#?}");
        assert!(w[0].contains("bind password"), "{w:#?}");
        assert_eq!(warn(&LDAP.replace("ldap://127.0.0.1:389", "LDAP://10.0.0.5")).len(), 1);
        // This machine, StartTLS, ldaps:// and ldapi:// are not.
        assert!(warn(LDAP).is_empty());
        assert!(warn(&LDAP.replace("127.0.0.1", "localhost")).is_empty());
        assert!(warn(&LDAP.replace("127.0.0.1:389", "[::1]:389")).is_empty());
        assert!(warn(&format!("{}starttls = true\n", LDAP.replace("127.0.0.1", "dir.example.com"))).is_empty());
        assert!(warn(&LDAP.replace("ldap://127.0.0.1:389", "ldaps://dir.example.com")).is_empty());
        assert!(warn(&LDAP.replace("ldap://127.0.0.1:389", "ldapi://%2Fvar%2Frun%2Fslapd.sock")).is_empty());
    }

    /// Every key in a `| key |` table of `docs/<kind>.md` is one the loader reads for that kind,
    /// so the docs never promise a key `tenure check` would refuse.
    #[test]
    fn every_key_the_docs_document_exists() {
        let docs: [(&str, &str, &[&str]); 5] = [
            ("ldap.md", include_str!("../../../../docs/ldap.md"), LDAP_KEYS),
            ("active-directory.md", include_str!("../../../../docs/active-directory.md"), LDAP_KEYS),
            ("scim.md", include_str!("../../../../docs/scim.md"), SCIM_KEYS),
            ("postgres.md", include_str!("../../../../docs/postgres.md"), POSTGRES_KEYS),
            ("manual.md", include_str!("../../../../docs/manual.md"), &["owner", "sla_hours"]),
        ];
        let mut checked = 0;
        for (file, text, keys) in docs {
            let mut in_table = false;
            for line in text.lines() {
                if line.starts_with("| key |") {
                    in_table = true;
                    continue;
                }
                if !line.starts_with('|') {
                    in_table = false;
                }
                if !in_table || line.starts_with("| ---") {
                    continue;
                }
                let first = line.split('|').nth(1).unwrap_or_default();
                for key in first.split('`').skip(1).step_by(2) {
                    if key.starts_with('[') {
                        continue;
                    }
                    assert!(
                        keys.contains(&key) || COMMON.contains(&key),
                        "{file} documents `{key}`, which is not a key"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "only {checked} keys found in the docs");
    }

    #[test]
    fn documented_configs_load() {
        // The minimal configs of the docs, with the schema they use.
        for (file, text) in [
            ("ldap.md", include_str!("../../../../docs/ldap.md")),
            ("active-directory.md", include_str!("../../../../docs/active-directory.md")),
            ("scim.md", include_str!("../../../../docs/scim.md")),
            ("postgres.md", include_str!("../../../../docs/postgres.md")),
            ("manual.md", include_str!("../../../../docs/manual.md")),
        ] {
            for block in text.split("```toml\n").skip(1) {
                let toml = block.split("```").next().unwrap_or_default();
                if !toml.contains("[[target]]") {
                    continue;
                }
                if let Err(p) = parse(file, toml) {
                    panic!("{file}: a documented config does not load: {p:#?}");
                }
            }
        }
    }

    #[test]
    fn dns_domains_come_from_dc_components() {
        assert_eq!(dns_domain("OU=People,DC=corp,DC=example,DC=com").as_deref(), Some("corp.example.com"));
        assert_eq!(dns_domain("ou=people,o=acme"), None);
    }
}
