//! The starter config and policy: one text, written by `tenure init`, used by the demo, the
//! tests and the benchmarks, each choosing its own guard limits and targets.

/// The `[guard]` limits a config is written with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    pub max_leavers: u64,
    pub max_leaver_fraction: f64,
    /// `None`: leave the key out (its default applies).
    pub max_access_losses: Option<u64>,
    pub max_access_loss_fraction: Option<f64>,
}

impl Guard {
    /// The starter's limits: the defaults, spelled out.
    pub const STARTER: Guard =
        Guard { max_leavers: 25, max_leaver_fraction: 0.05, max_access_losses: None, max_access_loss_fraction: None };

    fn toml(&self) -> String {
        let mut s = format!(
            "[guard]                      # a snapshot past any limit is held until approved\nmax_leavers = {}\nmax_leaver_fraction = {:?}\n",
            self.max_leavers, self.max_leaver_fraction
        );
        if let Some(n) = self.max_access_losses {
            s.push_str(&format!("max_access_losses = {n}\n"));
        }
        if let Some(f) = self.max_access_loss_fraction {
            s.push_str(&format!("max_access_loss_fraction = {f:?}\n"));
        }
        s
    }
}

/// The starter's targets: an LDAP directory, a SCIM app and a PostgreSQL warehouse on the
/// loopback ports a local install would use, secrets from the environment, and a manual payroll
/// app whose entitlements are declared (`declared_payroll`), or not.
pub fn targets(declared_payroll: bool) -> String {
    let mut s = String::from(
        r#"[[target]]
name = "directory"
kind = "ldap"
url = "ldap://127.0.0.1:3389"
bind_dn = "cn=admin,dc=example,dc=com"
password_env = "DIRECTORY_PASSWORD"   # secrets come from the environment or a file, never this file
users_dn = "ou=people,dc=example,dc=com"
groups_dn = "ou=groups,dc=example,dc=com"
disabled_dn = "ou=disabled,dc=example,dc=com"

[[target]]
name = "chat"
kind = "scim"
url = "http://127.0.0.1:8000/scim/v2"
token_env = "CHAT_SCIM_TOKEN"

[[target]]
name = "warehouse"
kind = "postgres"
url_env = "WAREHOUSE_URL"

"#,
    );
    s.push_str(&payroll_target(declared_payroll));
    s
}

/// The manual payroll target.
pub fn payroll_target(declared: bool) -> String {
    let mut s =
        String::from("[[target]]\nname = \"payroll\"\nkind = \"manual\"\nowner = \"payroll-admins\"\nsla_hours = 24\n");
    if declared {
        s.push_str("entitlements = [\"employee-record\", \"create-payment\", \"approve-payment\"]\n");
    }
    s
}

/// A config: the starter's store, server, policy and source sections with `guard` and
/// `targets` (the text of the `[[target]]` tables).
pub fn config_with(comment: &str, guard: &Guard, targets: &str) -> String {
    format!(
        r#"{comment}

[store]
url = "sqlite://tenure-data/tenure.db"      # relative paths are relative to this file

[server]
listen = "127.0.0.1:8080"

[policy]
path = "policy.toml"

{guard}
{source}
{targets}"#,
        guard = guard.toml(),
        source = crate::company::SOURCE_TOML,
    )
}

/// The config `tenure init` writes.
pub fn config() -> String {
    config_with(
        "# Tenure configuration. Every key has a default; `tenure check` validates this file and the policy.",
        &Guard::STARTER,
        &targets(true),
    )
}

pub const POLICY: &str = r#"# Tenure policy: birthright roles, privileged roles, separation of duties.
# Conditions: equality, lists, not, any, prefix, regex and dates relative to today.

[[role]]
id = "staff"
when = { status = "active", employment_type = ["employee", "contractor"] }
grant = ["directory:staff", "chat:everyone"]

[[role]]
id = "payroll-record"
when = { status = "active", employment_type = "employee" }
grant = ["payroll:employee-record"]

# Department roles are for people: a service account inherits its owner's department in the HR
# extract, but gets only what a role names for service accounts.
[[role]]
id = "engineering"
when = { status = "active", kind = ["employee", "contractor"], department = "Engineering" }
grant = ["directory:engineers", "chat:engineering", "warehouse:analyst"]

[[role]]
id = "sales"
when = { status = "active", kind = ["employee", "contractor"], department = "Sales" }
grant = ["directory:sales", "chat:sales"]

[[role]]
id = "finance"
when = { status = "active", kind = ["employee", "contractor"], department = "Finance", not = { title = "Intern" } }
grant = ["directory:finance", "warehouse:finance", "payroll:create-payment"]

[[role]]
id = "finance-leads"
when = { status = "active", kind = ["employee", "contractor"], department = "Finance", title = ["Lead", "Manager", "Director"] }
grant = ["payroll:approve-payment"]

[[role]]
id = "service-accounts"
when = { status = "active", kind = "service" }
grant = ["warehouse:analyst"]

# Privileged roles are requestable: `tenure request warehouse-admin --for ID --reason TEXT`.
# `approval` may list stages in order, e.g. ["manager", "owner:E1000"].
[[role]]
id = "warehouse-admin"
privileged = true
approval = "manager"         # requested, approved by the manager
max_duration = "8h"          # revoked automatically at expiry
grant = ["warehouse:admin"]

[[sod]]
id = "payments"
conflict = ["payroll:create-payment", "payroll:approve-payment"]
action = "block"             # "block" refuses the second grant; "flag" records a finding
# mode = "record"            # for a gradual rollout: record violations, refuse nothing

[mover]
significant = ["department", "cost_center", "employment_type", "location"]

[nhi]
on_owner_leave = "transfer_to_manager"   # or "revoke"
"#;

/// Another policy for `tenure simulate --policy other.toml` in the tour: contractors lose the
/// chat workspace and Sales gets read access to the warehouse.
pub fn other_policy() -> String {
    POLICY
        .replacen(
            "grant = [\"directory:staff\", \"chat:everyone\"]",
            "grant = [\"directory:staff\"]\n\n[[role]]\nid = \"chat\"\nwhen = { status = \"active\", employment_type = \"employee\" }\ngrant = [\"chat:everyone\"]",
            1,
        )
        .replacen(
            "grant = [\"directory:sales\", \"chat:sales\"]",
            "grant = [\"directory:sales\", \"chat:sales\", \"warehouse:analyst\"]",
            1,
        )
        .replacen("# Tenure policy:", "# An alternative Tenure policy, for `tenure simulate --policy other.toml`:", 1)
}
