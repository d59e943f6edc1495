//! All real peers at once, with a `tenure.toml` that points at them. Used by `tenure demo` and
//! by the end-to-end tests.

use crate::peers::{Ldap, Postgres, Scim, run};
use anyhow::{Context, Result, anyhow};
use std::process::Command;

pub struct Stack {
    pub ldap: Ldap,
    pub scim: Scim,
    pub pg: Postgres,
}

impl Stack {
    /// Starts slapd, scim2-server and PostgreSQL (in parallel), installing what is missing, and
    /// creates `pg_roles` as NOLOGIN roles (the warehouse's entitlements).
    pub fn start(pg_roles: &[&str]) -> Result<Stack> {
        let ldap = std::thread::spawn(Ldap::start);
        let scim = std::thread::spawn(Scim::start);
        let pg = std::thread::spawn(Postgres::start);
        let join = |what: &str| anyhow!("the {what} peer's start-up thread panicked");
        let ldap = ldap.join().map_err(|_| join("LDAP"))?.context("starting OpenLDAP (slapd)")?;
        let scim = scim.join().map_err(|_| join("SCIM"))?.context("starting scim2-server")?;
        let pg = pg.join().map_err(|_| join("PostgreSQL"))?.context("starting PostgreSQL")?;
        let stack = Stack { ldap, scim, pg };
        for role in pg_roles {
            stack.psql(&format!("CREATE ROLE \"{}\" NOLOGIN", role.replace('"', "\"\"")))?;
        }
        Ok(stack)
    }

    /// Runs SQL on the PostgreSQL peer as its superuser, returning unaligned output.
    pub fn psql(&self, sql: &str) -> Result<String> {
        let psql = ["/usr/bin/psql", "/usr/local/bin/psql"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("psql");
        run(Command::new(psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.pg.port().to_string())
            .env("PGUSER", "postgres")
            .env("PGDATABASE", "postgres")
            .env("PGPASSWORD", self.pg.password()))
    }

    /// A config whose targets are these peers (secrets in the peers' files) plus a manual
    /// `payroll` target.
    pub fn config_toml(&self, max_leavers: u64) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let targets = format!(
            r#"[[target]]
name = "directory"
kind = "ldap"
url = "{ldap_url}"
bind_dn = "{bind_dn}"
password_file = "{ldap_pw}"
users_dn = "{users}"
groups_dn = "{groups}"
disabled_dn = "{disabled}"
concurrency = 4
max_attempts = 8

[[target]]
name = "chat"
kind = "scim"
url = "{scim_url}"
token_file = "{scim_token}"
concurrency = 4
max_attempts = 8

[[target]]
name = "warehouse"
kind = "postgres"
url_file = "{pg_url}"
concurrency = 4
max_attempts = 8

{payroll}"#,
            ldap_url = esc(&self.ldap.url),
            bind_dn = esc(&self.ldap.bind_dn),
            ldap_pw = esc(&self.ldap.password_file.to_string_lossy()),
            users = esc(&self.ldap.users_dn),
            groups = esc(&self.ldap.groups_dn),
            disabled = esc(&self.ldap.disabled_dn),
            scim_url = esc(&self.scim.url()),
            scim_token = esc(&self.scim.token_file().to_string_lossy()),
            pg_url = esc(self.pg.url_file()),
            payroll = tenure_sample::starter::payroll_target(true),
        );
        // Small demo companies: one mover and one leaver are 15% of people.
        let guard = tenure_sample::starter::Guard {
            max_leavers,
            max_leaver_fraction: 0.2,
            max_access_losses: Some(max_leavers),
            max_access_loss_fraction: Some(0.2),
        };
        tenure_sample::starter::config_with(
            "# Tenure configuration for the real peers the test kit started (secrets in their files).",
            &guard,
            &targets,
        )
    }
}
