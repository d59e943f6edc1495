//! `tenure init`: a working starter config, policy and sample HR snapshot.

use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::ExitCode;
use tenure_testkit::company::{Company, Options};

const CONFIG_TEMPLATE: &str = r#"# Tenure configuration. Every key has a default; `tenure check` validates this file and the policy.

[store]
url = "sqlite://tenure-data/tenure.db"      # relative paths are relative to this file

[server]
listen = "127.0.0.1:8080"

[policy]
path = "policy.toml"

[guard]                      # a snapshot whose leavers exceed either limit is held until approved
max_leavers = 25
max_leaver_fraction = 0.05

{SOURCE}
[[target]]
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

[[target]]
name = "payroll"
kind = "manual"
owner = "payroll-admins"
sla_hours = 24
entitlements = ["employee-record", "create-payment", "approve-payment"]
"#;

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

/// The starter config: the sample HR file's column mapping plus the four demo targets.
pub fn config() -> String {
    CONFIG_TEMPLATE.replace("{SOURCE}", tenure_testkit::company::SOURCE_TOML)
}

pub fn init(dir: Option<&Path>, force: bool) -> Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let today = crate::context::today()?;
    let mut opts = Options::new(24, today);
    opts.departments = 4;
    opts.service_accounts = 2;
    let hr = Company::generate(&opts).to_csv();
    let files = [
        ("tenure.toml", config()),
        ("policy.toml", POLICY.to_string()),
        ("other.toml", other_policy()),
        ("hr.csv", hr),
    ];
    if !force {
        for (name, _) in &files {
            if dir.join(name).exists() {
                bail!("`{}` already exists; use --force to overwrite", dir.join(name).display());
            }
        }
    }
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).with_context(|| format!("cannot write `{}`", dir.join(name).display()))?;
        outln!("wrote {}", dir.join(name).display());
    }
    crate::audit::init_signing_key(dir)?;
    outln!("next: cd {} && tenure check && tenure import --source hr hr.csv && tenure plan", dir.display());
    Ok(ExitCode::SUCCESS)
}
