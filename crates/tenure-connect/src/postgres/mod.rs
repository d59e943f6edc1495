//! The PostgreSQL connector: accounts are login roles, entitlements are group roles.
//!
//! # Model
//! - An **account** is a role with `LOGIN`, created as `CREATE ROLE "name" LOGIN` and tagged with
//!   `COMMENT ON ROLE "name" IS 'tenure:<identity id>'`. The tag is the correlation id
//!   ([`AccountState::external_id`] is the part after `tenure:`). Disabling sets `NOLOGIN`, so a
//!   disabled account is told apart from a group role by its tag: [`Connector::list_accounts`]
//!   returns every non-system `LOGIN` role plus every `NOLOGIN` role tagged `tenure:`.
//! - An **entitlement** is a role the account is a direct member of (`GRANT "ent" TO "acct"`).
//!   [`Connector::list_entitlements`] returns the non-system `NOLOGIN` roles without a Tenure tag.
//!   Tenure never creates entitlement roles: granting one that does not exist is a permanent
//!   error naming it, because a grant of a missing group is a finding for a human,
//!   and silently creating roles would turn a policy typo into new, empty access.
//! - System roles (names starting `pg_`), superusers and the role Tenure connects as are never
//!   listed. Operations that would lock Tenure out (disabling, deleting or rotating the
//!   credential of its own role, or ending its own sessions) are refused.
//!
//! # Idempotency
//! PostgreSQL only emits a NOTICE for a repeated `GRANT` or a `REVOKE` of a missing membership,
//! so each operation reads the catalog first (one round trip) and answers
//! [`Applied::AlreadyDone`] when the role is already in the requested state. `create_account` is
//! the exception: `CREATE ROLE` of an existing role fails with SQLSTATE 42710 and changes
//! nothing, so it is sent at once and only that failure reads the role (half the round trips of
//! reading first, in the common case of a new account). Before any other operation the role of
//! the account's name is read, and one tagged for another identity is refused before anything is
//! sent. A removal of a role missing by name acts on the role tagged for this identity under
//! another name (renamed by hand), and `read_account` reads that one back. Roles missing both
//! ways are "already done"
//! for `disable`, `revoke`, `revoke_sessions`, `transfer_ownership` and `delete_account`. `create_account` of a role that exists with this identity's tag is already
//! done; a role of the same name that is untagged or tagged for another identity is a permanent
//! error (adopting it would hand an unknown role's access to this identity).
//! `rotate_credential` always sets the password it is given (the executor generates it, hands it
//! to the secret sink and reads it back with [`Connector::verify_secret`], a login as the account
//! on a connection of its own), so it answers [`Applied::Changed`] each time; a missing role is
//! an error for it, since a rotation that changed nothing must not be verified.
//!
//! # SQL safety
//! Every value goes through a bind parameter wherever PostgreSQL takes one (all catalog look-ups,
//! `pg_stat_activity`, ...). Role DDL and `COMMENT` take none, so names are quoted by
//! `sql::quote_ident` and the comment is an `E''` literal from `sql::quote_literal`; names the
//! server would reject or silently truncate (empty, NUL, longer than 63 bytes) are refused first.
//! Statements that belong together (`CREATE ROLE` + `COMMENT`; `REASSIGN OWNED` + `DROP OWNED` +
//! `DROP ROLE`) are sent as one simple-query message, which PostgreSQL runs as one transaction.
//!
//! # Secrets
//! The URL comes from [`crate::resolve_secret`]; it legitimately carries a password, so it is
//! only ever parsed (a `postgres://` URL first by the `url` crate, so that an unencoded `/` in the
//! password is refused instead of being guessed at) and appears in messages only through
//! [`crate::redact`]. Every message the connector makes, the driver's and the server's text
//! included, is scrubbed of the password (`crate::redact::Scrubber`). A rotated password arrives
//! as a `NewSecret`, is never returned or logged, is scrubbed from every message made while it
//! is in use, and is sent to the server as a SCRAM-SHA-256 verifier computed here, so it cannot
//! surface in the server's statement log either.
//!
//! # Limits
//! - `REASSIGN OWNED` and `DROP OWNED` act on the database in the URL (plus shared objects). If
//!   the role owns objects or holds privileges in another database, `DROP ROLE` fails with
//!   SQLSTATE 2BP01, reported as a permanent error that says so.
//! - TLS follows libpq's `sslmode` names (the target's `sslmode` key, or the URL's `sslmode`
//!   and `sslrootcert`; both is an error unless they agree), with rustls: `disable`; `prefer`
//!   (the default: TLS when the server offers it, plain otherwise); `require`; `verify-ca`
//!   (chain only); `verify-full`. Unlike libpq, `prefer` and `require` verify the certificate
//!   fully unless `tls_verify = false` says not to, which is warned about on every run. The
//!   trust anchors are `ca_file` (or the URL's `sslrootcert`), else the system's roots.
//! - A new password is only sent (`rotate_credential`, and the login of `verify_secret`) when
//!   the target requires TLS (`require`, `verify-ca`, `verify-full`) or every host is on this
//!   machine (a unix socket, `localhost`, 127.0.0.0/8, `::1`; `hostaddr` decides when given):
//!   under `prefer` a connection may fall back to plain, and a server asking for cleartext
//!   password authentication would be handed the secret. Otherwise both are refused
//!   (permanently, before connecting), as the LDAP connector refuses rotation without TLS.
//! - Memberships are read and revoked as direct grants. On PostgreSQL 16+, a membership granted
//!   by a role other than the connecting one survives a plain `REVOKE`; the connector re-reads
//!   after revoking and reports that case as a permanent error instead of claiming success.
//! - The connecting role needs `CREATEROLE` (or superuser), `pg_signal_backend` and
//!   `pg_read_all_stats` (to see and end other roles' sessions), and ownership rights for
//!   `REASSIGN OWNED`; a superuser is simplest.
//!
//! # Connections
//! Up to `concurrency` connections are opened lazily by a small pool (`pool`), so a target
//! that is down when Tenure starts only fails the operations that need it (transiently), and a
//! pooled connection that died is replaced when taken. An operation that fails on a pooled
//! connection found dead afterwards is retried once on a fresh one: every operation is idempotent
//! (see above), so the retry is too.

mod pool;
mod sql;

use crate::redact::{Scrubber, redact};
use crate::tls::Verify;
use crate::{
    AccountSpec, AccountState, Applied, Capability, Connector, ConnectorError, Request, Result, resolve_secret,
};
use pool::{Conn, DEFAULT_CONNECT_TIMEOUT, Pool};
use sql::{classify, quote_ident, quote_literal};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tenure_core::OpKind;
use tenure_core::config::PgSslMode;
use tenure_core::config::PostgresSettings;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The prefix of the role comment that tags a role as a Tenure account.
const TAG_PREFIX: &str = "tenure:";

/// How long `revoke_sessions` waits for terminated backends to exit.
const SESSION_EXIT_WAIT: Duration = Duration::from_secs(5);

const CAPABILITIES: &[Capability] = &[
    Capability::CreateAccount,
    Capability::Enable,
    Capability::Disable,
    Capability::DeleteAccount,
    Capability::Grant,
    Capability::Revoke,
    Capability::RevokeSessions,
    Capability::RotateCredential,
    Capability::TransferOwnership,
    Capability::ListAccounts,
    Capability::ListGrants,
    Capability::ReadBack,
];

/// One role, as the write operations need it.
const ROLE_SQL: &str = "SELECT r.oid, r.rolcanlogin, (SELECT d.description FROM pg_shdescription d \
         WHERE d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass), \
     r.rolname IN (current_user, session_user) \
     FROM pg_roles r WHERE r.rolname = $1";

/// The roles tagged for one identity (at most two are read: more than one is an error).
const BY_TAG_SQL: &str = "SELECT r.rolname::text FROM pg_roles r JOIN pg_shdescription d \
     ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass \
     WHERE d.description = $1 ORDER BY 1 LIMIT 2";

/// An account, an entitlement and whether the first is a direct member of the second.
const MEMBERSHIP_SQL: &str = "SELECT a.oid, g.oid, \
     EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = a.oid AND m.roleid = g.oid) \
     FROM (SELECT 1) AS one \
     LEFT JOIN pg_roles a ON a.rolname = $1 \
     LEFT JOIN pg_roles g ON g.rolname = $2";

/// Another session's backends of a role, and whether the role is the one Tenure connects as.
/// Whether a role is unfit to be an entitlement: `(admin attributes, can log in, built in,
/// tagged as a Tenure account)`.
const ENTITLEMENT_CHECK_SQL: &str = "SELECT r.rolsuper OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls, \
     r.rolcanlogin, r.rolname ~ '^pg_', \
     COALESCE((SELECT d.description FROM pg_shdescription d \
               WHERE d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass) LIKE 'tenure:%', false) \
     FROM pg_roles r WHERE r.oid = $1";

const SESSIONS_SQL: &str = "SELECT (SELECT count(*) FROM pg_stat_activity \
     WHERE usename = $1 AND pid <> pg_backend_pid()), \
     $1 = current_user OR $1 = session_user";

const TERMINATE_SQL: &str = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
     WHERE usename = $1 AND pid <> pg_backend_pid()";

/// Whether a role owns anything `REASSIGN OWNED` run here would move: objects in this database
/// and shared objects (databases, tablespaces).
const OWNS_SQL: &str = "SELECT EXISTS (SELECT 1 FROM pg_shdepend \
     WHERE refclassid = 'pg_authid'::regclass AND refobjid = $1 AND deptype = 'o' \
     AND dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())))";

/// One account with its tag, direct grants and live sessions.
/// The tag is read with a subquery rather than `shobj_description`, a SQL function whose body
/// is planned again on every call (about as costly as the rest of the query).
const READ_SQL: &str = "SELECT r.rolname::text, r.rolcanlogin, (SELECT d.description FROM pg_shdescription d \
         WHERE d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass), \
     ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
           WHERE m.member = r.oid ORDER BY 1), \
     (SELECT count(*) FROM pg_stat_activity s WHERE s.usename = r.rolname AND s.pid <> pg_backend_pid()) \
     FROM pg_roles r WHERE r.rolname = $1";

/// Every account in one query: login roles and roles tagged by Tenure (disabled accounts),
/// without system roles, superusers and the connecting role.
const LIST_SQL: &str = "WITH d AS (SELECT objoid, description FROM pg_shdescription \
         WHERE classoid = 'pg_authid'::regclass), \
     g AS (SELECT m.member, array_agg(r.rolname::text ORDER BY r.rolname) AS grants \
         FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid GROUP BY m.member), \
     s AS (SELECT usename, count(*) AS n FROM pg_stat_activity \
         WHERE usename IS NOT NULL AND pid <> pg_backend_pid() GROUP BY usename) \
     SELECT r.rolname::text, r.rolcanlogin, d.description, \
         coalesce(g.grants, '{}'::text[]), coalesce(s.n, 0) \
     FROM pg_roles r \
     LEFT JOIN d ON d.objoid = r.oid \
     LEFT JOIN g ON g.member = r.oid \
     LEFT JOIN s ON s.usename = r.rolname \
     WHERE NOT r.rolsuper AND r.rolname !~ '^pg_' \
       AND r.rolname <> current_user AND r.rolname <> session_user \
       AND (r.rolcanlogin OR d.description LIKE 'tenure:%') \
     ORDER BY r.rolname";

/// Group roles: non-system `NOLOGIN` roles that are not disabled Tenure accounts.
const ENTITLEMENTS_SQL: &str = "SELECT r.rolname::text FROM pg_roles r \
     LEFT JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass \
     WHERE NOT r.rolcanlogin AND NOT r.rolsuper AND r.rolname !~ '^pg_' \
       AND (d.description IS NULL OR d.description NOT LIKE 'tenure:%') \
     ORDER BY 1";

/// A PostgreSQL target. See the module docs for the model and its limits.
pub struct PostgresConnector {
    name: String,
    pool: Pool,
    /// The quoted role that receives a deleted account's objects; `CURRENT_USER` when unset.
    reassign_to: Option<String>,
    /// Erases the connection password from every message.
    scrub: Scrubber,
    /// Why a password must not be sent over this target's connections, when it must not: TLS is
    /// not required (`sslmode` below `require`) and a host is not on this machine.
    plain_wire: Option<String>,
}

/// Whether every address the connection may use is on this machine (a unix socket, `localhost`,
/// 127.0.0.0/8 or `::1`), so that what is sent crosses no wire. `hostaddr`, when given, is what
/// is connected to, so it decides; no host at all is not taken as loopback.
fn only_loopback(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    if !config.get_hostaddrs().is_empty() {
        return config.get_hostaddrs().iter().all(std::net::IpAddr::is_loopback);
    }
    !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(|h| match h {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                let name = name.trim_start_matches('[').trim_end_matches(']');
                name.eq_ignore_ascii_case("localhost")
                    || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
        })
}

/// The connection URL as messages show it: redacted, or for a `key=value` connection string,
/// the first host, port and database only.
fn shown(url: &str, config: &tokio_postgres::Config) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return redact(url);
    }
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("host={host} port={port} dbname={}", config.get_dbname().unwrap_or_default())
}

/// Takes libpq's `sslmode` and `sslrootcert` out of a `postgres://` URL (tokio-postgres reads
/// neither `verify-ca` nor `verify-full`), returning the rest of the URL and what they said. A
/// `key=value` connection string is returned as it is.
fn split_ssl_params(url: &str) -> std::result::Result<(String, Option<PgSslMode>, Option<String>), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok((url.to_string(), None, None));
    }
    let Ok(mut parsed) = url::Url::parse(url) else { return Ok((url.to_string(), None, None)) };
    let mut mode = None;
    let mut root = None;
    let mut rest: Vec<(String, String)> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslmode" => {
                mode = Some(PgSslMode::parse(&v).ok_or_else(|| {
                    let names: Vec<&str> = PgSslMode::ALL.iter().map(|(n, _)| *n).collect();
                    format!("the connection URL's `sslmode` is not one of: {}", names.join(", "))
                })?);
            }
            "sslrootcert" => root = Some(v.into_owned()),
            _ => rest.push((k.into_owned(), v.into_owned())),
        }
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok((parsed.to_string(), mode, root))
}

/// A role as the write operations see it.
struct RoleRow {
    oid: u32,
    login: bool,
    comment: Option<String>,
    /// The role Tenure connects as.
    is_self: bool,
}

impl PostgresConnector {
    /// Why a password could cross the network in cleartext on this target's connections
    /// (`sslmode` `disable` or `prefer`, which an attacker on the path can downgrade, to a host
    /// off this machine), if it could.
    pub fn plain_wire(&self) -> Option<&str> {
        self.plain_wire.as_deref()
    }

    /// Builds the connector without connecting: connections open on first use, so a target
    /// that is down only fails (transiently) the operations that reach it.
    pub async fn new(name: &str, s: &PostgresSettings, concurrency: usize) -> Result<Self> {
        let what = format!("target `{name}`");
        let url = resolve_secret(&s.url, &what)?;
        if url.is_empty() {
            return Err(ConnectorError::permanent(format!("{what}: no connection URL; set `url_env` or `url_file`")));
        }
        if (url.starts_with("postgres://") || url.starts_with("postgresql://"))
            && let Err(e) = url::Url::parse(&url)
        {
            return Err(ConnectorError::permanent(format!(
                "{what}: the connection URL is not a valid URL ({e}); percent-encode reserved characters \
                 in the user name and password (`/` as `%2F`, `@` as `%40`)"
            )));
        }
        let (url, url_mode, url_root) =
            split_ssl_params(&url).map_err(|why| ConnectorError::permanent(format!("{what}: {why}")))?;
        let mode = match (s.sslmode, url_mode) {
            (Some(a), Some(b)) if a != b => {
                return Err(ConnectorError::permanent(format!(
                    "{what}: the connection URL says `sslmode={}` and the target `sslmode = \"{}\"`; keep one",
                    b.as_str(),
                    a.as_str()
                )));
            }
            (Some(m), _) | (None, Some(m)) => m,
            (None, None) => PgSslMode::Prefer,
        };
        // The parse error is not passed on: some of its messages quote part of the input.
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            let hint = if url.contains("sslmode=verify") {
                "; `verify-ca` and `verify-full` go in the target's `sslmode` key"
            } else {
                ""
            };
            ConnectorError::permanent(format!(
                "{what}: the connection URL is not a valid PostgreSQL URL or connection string{hint}"
            ))
        })?;
        config.ssl_mode(match mode {
            PgSslMode::Disable => SslMode::Disable,
            PgSslMode::Prefer => SslMode::Prefer,
            PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
        });
        let verify = match mode {
            PgSslMode::Disable => None,
            PgSslMode::Prefer | PgSslMode::Require => Some(Verify::from_flag(s.tls.verify)),
            PgSslMode::VerifyCa => Some(Verify::ChainOnly),
            PgSslMode::VerifyFull => Some(Verify::Full),
        };
        let ca_file = s.tls.ca_file.clone().or(url_root);
        let tls = match verify {
            Some(v) => Some(MakeRustlsConnect::new(crate::tls::client_config(name, "ca_file", ca_file.as_deref(), v)?)),
            None => None,
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tenure");
        }
        let reassign_to = match &s.reassign_to {
            Some(role) => Some(
                quote_ident(role)
                    .map_err(|e| ConnectorError::permanent(format!("{what}: `reassign_to`: {}", e.message)))?,
            ),
            None => None,
        };
        let password = config.get_password().map(String::from_utf8_lossy).unwrap_or_default();
        let scrub = Scrubber::new([password.as_ref()]);
        let shown = shown(&url, &config);
        let tls_required = matches!(mode, PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull);
        let plain_wire = (!tls_required && !only_loopback(&config)).then(|| {
            format!(
                "the connection does not require TLS (`sslmode = \"{}\"`) and `{shown}` is not on this machine, so \
                 a password could cross the network in cleartext; set `sslmode` to `require`, `verify-ca` or \
                 `verify-full`",
                mode.as_str()
            )
        });
        Ok(Self {
            name: name.to_string(),
            pool: Pool::new(name, config, concurrency, &shown, scrub.clone(), tls),
            reassign_to,
            scrub,
            plain_wire,
        })
    }

    /// Refuses to send `account`'s new password (to set it, or to log in with it) over a
    /// connection that may be plain and leave this machine: a server that asks for cleartext
    /// password authentication would be handed the secret.
    fn require_tls(&self, what: &str, account: &str) -> Result<()> {
        match &self.plain_wire {
            None => Ok(()),
            Some(why) => Err(self.permanent(format!("refusing to {what} `{account}`: {why}"))),
        }
    }

    fn err(&self, what: &str, e: &tokio_postgres::Error) -> ConnectorError {
        let mut e = classify(&self.name, what, e);
        e.message = self.scrub.clean(&e.message);
        e
    }

    fn permanent(&self, message: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::permanent(self.scrub.clean(&format!("target `{}`: {message}", self.name)))
    }

    fn col<'a, T: FromSql<'a>>(&self, row: &'a Row, idx: usize) -> Result<T> {
        row.try_get(idx).map_err(|e| self.err("reading the catalog", &e))
    }

    async fn role(&self, conn: &mut Conn<'_>, account: &str) -> Result<Option<RoleRow>> {
        let what = "looking up the role";
        let statement = conn.prepared(ROLE_SQL, &[Type::NAME]).await.map_err(|e| self.err(what, &e))?;
        let row = conn.client().query_opt(&statement, &[&account]).await.map_err(|e| self.err(what, &e))?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RoleRow {
            oid: self.col(&row, 0)?,
            login: self.col(&row, 1)?,
            comment: self.col(&row, 2)?,
            is_self: self.col(&row, 3)?,
        }))
    }

    /// The role tagged `tenure:<identity>` under another name than `account` (renamed by hand
    /// with `ALTER ROLE ... RENAME`), if there is exactly one; two are an error.
    async fn renamed(&self, conn: &mut Conn<'_>, spec: &AccountSpec) -> Result<Option<String>> {
        if spec.identity_id.trim().is_empty() {
            return Ok(None);
        }
        let what = "looking up the role by its tag";
        let tag = format!("{TAG_PREFIX}{}", spec.identity_id);
        let rows =
            conn.client().query_typed(BY_TAG_SQL, &[(&tag, Type::TEXT)]).await.map_err(|e| self.err(what, &e))?;
        let names: Vec<String> = rows.iter().map(|r| self.col(r, 0)).collect::<Result<_>>()?;
        match names.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(self.permanent(format!(
                "more than one role carries the tag `{tag}` ({}); which one is this identity's cannot be told",
                names.join(", ")
            ))),
        }
    }

    /// The role `req` acts on, checked before anything is written. When the role of the
    /// account's name does not carry this identity's tag (there is none, it carries none, or it
    /// is another identity's), a removal acts on the role tagged for this identity under another
    /// name (renamed by hand, perhaps with a decoy made under the old name). A role of the name
    /// tagged for another identity is otherwise refused. `None`: keep the request as it is.
    async fn resolve(&self, conn: &mut Conn<'_>, req: &Request) -> Result<Option<Request>> {
        if req.kind == OpKind::CreateAccount {
            return Ok(None);
        }
        let spec = &req.account;
        let role = self.role(conn, &spec.account).await?;
        let owner = role.as_ref().and_then(|r| r.comment.as_deref()).and_then(|c| c.strip_prefix(TAG_PREFIX));
        let mine = spec.identity_id.is_empty() || owner == Some(spec.identity_id.as_str());
        if mine && role.is_some() {
            return Ok(None);
        }
        if (req.kind.removes_access() || req.kind == OpKind::TransferOwnership)
            && let Some(name) = self.renamed(conn, spec).await?.filter(|n| *n != spec.account)
        {
            let mut moved = req.clone();
            moved.account.account = name;
            return Ok(Some(moved));
        }
        match owner {
            Some(o) if !mine => Err(self.permanent(format!(
                "refusing to {} `{}`: the role is tagged for identity `{o}`, not `{}`; nothing was changed",
                req.kind, spec.account, spec.identity_id
            ))),
            _ => Ok(None),
        }
    }

    fn refuse_self(&self, op: OpKind, account: &str, role: &RoleRow) -> Result<()> {
        if role.is_self {
            return Err(self.permanent(format!("refusing to {op} `{account}`: it is the role Tenure connects as")));
        }
        Ok(())
    }

    /// One attempt at an operation on one connection.
    async fn apply_on(&self, conn: &mut Conn<'_>, req: &Request) -> Result<Applied> {
        let resolved = self.resolve(conn, req).await?;
        let req = resolved.as_ref().unwrap_or(req);
        let account = req.account.account.as_str();
        let acct = quote_ident(account).map_err(|e| self.permanent(e.message))?;
        match req.kind {
            OpKind::CreateAccount => self.create(conn, &req.account, &acct).await,
            OpKind::Enable | OpKind::Disable => {
                let enable = req.kind == OpKind::Enable;
                let Some(role) = self.role(conn, account).await? else {
                    return if enable {
                        Err(self.permanent(format!("cannot enable `{account}`: the role does not exist")))
                    } else {
                        Ok(Applied::AlreadyDone)
                    };
                };
                self.refuse_self(req.kind, account, &role)?;
                if role.login == enable {
                    return Ok(Applied::AlreadyDone);
                }
                let sql = format!("ALTER ROLE {acct} {}", if enable { "LOGIN" } else { "NOLOGIN" });
                conn.client().batch_execute(&sql).await.map_err(|e| self.err(req.kind.as_str(), &e))?;
                Ok(Applied::Changed)
            }
            OpKind::Grant | OpKind::Revoke => self.membership(conn, req, &acct).await,
            OpKind::RevokeSessions => self.revoke_sessions(conn.client(), account).await,
            OpKind::RotateCredential => {
                let Some(secret) = &req.secret else {
                    return Err(self.permanent(format!("rotate_credential of `{account}` needs the new secret")));
                };
                let Some(role) = self.role(conn, account).await? else {
                    return Err(
                        self.permanent(format!("cannot rotate the password of `{account}`: the role does not exist"))
                    );
                };
                self.refuse_self(req.kind, account, &role)?;
                let verifier = postgres_protocol::password::scram_sha_256(secret.expose().as_bytes());
                let sql = format!("ALTER ROLE {acct} PASSWORD {}", quote_literal(&verifier)?);
                conn.client().batch_execute(&sql).await.map_err(|e| {
                    let mut e = self.err("rotating the password", &e);
                    e.message = secret.scrub(&e.message);
                    e
                })?;
                Ok(Applied::Changed)
            }
            OpKind::DeleteAccount => {
                let Some(role) = self.role(conn, account).await? else {
                    return Ok(Applied::AlreadyDone);
                };
                self.refuse_self(req.kind, account, &role)?;
                let to = self.new_owner(req, account)?.unwrap_or_else(|| "CURRENT_USER".to_string());
                let sql = format!("REASSIGN OWNED BY {acct} TO {to}; DROP OWNED BY {acct}; DROP ROLE {acct}");
                match conn.client().batch_execute(&sql).await {
                    Ok(()) => Ok(Applied::Changed),
                    // Another worker may have dropped it meanwhile; a missing new owner is an
                    // error too, so look before calling it done.
                    Err(e) if e.code() == Some(&SqlState::UNDEFINED_OBJECT) => match self.role(conn, account).await? {
                        None => Ok(Applied::AlreadyDone),
                        Some(_) => Err(self.err("deleting the role", &e)),
                    },
                    Err(e) => Err(self.err("deleting the role", &e)),
                }
            }
            OpKind::TransferOwnership => {
                let Some(to) = self.new_owner(req, account)? else {
                    return Err(self.permanent(format!(
                        "transfer_ownership of `{account}` needs a new owner (the request's `new_owner` or the target's `reassign_to`)"
                    )));
                };
                let Some(role) = self.role(conn, account).await? else {
                    return Ok(Applied::AlreadyDone);
                };
                let owns: bool = conn
                    .client()
                    .query_typed_one(OWNS_SQL, &[(&role.oid, Type::OID)])
                    .await
                    .map_err(|e| self.err("reading owned objects", &e))
                    .and_then(|row| self.col(&row, 0))?;
                if !owns {
                    return Ok(Applied::AlreadyDone);
                }
                let sql = format!("REASSIGN OWNED BY {acct} TO {to}");
                conn.client().batch_execute(&sql).await.map_err(|e| self.err("reassigning owned objects", &e))?;
                Ok(Applied::Changed)
            }
            OpKind::OpenTicket => {
                Err(self.permanent("open_ticket is not an operation a PostgreSQL target carries out"))
            }
            OpKind::UpdateAttributes => {
                Err(self.permanent("a PostgreSQL role keeps no attributes about the person to update"))
            }
        }
    }

    /// The quoted role that receives `account`'s objects: the request's, else the target's.
    fn new_owner(&self, req: &Request, account: &str) -> Result<Option<String>> {
        let to = match &req.new_owner {
            Some(owner) if owner == account => {
                return Err(self.permanent(format!("`{account}` cannot hand its objects to itself")));
            }
            Some(owner) => Some(quote_ident(owner).map_err(|e| self.permanent(e.message))?),
            None => self.reassign_to.clone(),
        };
        Ok(to)
    }

    async fn create(&self, conn: &mut Conn<'_>, spec: &AccountSpec, acct: &str) -> Result<Applied> {
        let tag = format!("{TAG_PREFIX}{}", spec.identity_id);
        let comment = quote_literal(&tag).map_err(|e| self.permanent(e.message))?;
        // Sent without reading first: a role that already exists fails it with 42710, and the
        // one message runs as one transaction, so the COMMENT never lands on someone else's role.
        let sql = format!("CREATE ROLE {acct} LOGIN; COMMENT ON ROLE {acct} IS {comment}");
        match conn.client().batch_execute(&sql).await {
            Ok(()) => Ok(Applied::Changed),
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => match self.role(conn, &spec.account).await? {
                Some(role) => self.existing(spec, &role, &tag),
                None => Err(self.err("creating the role", &e)),
            },
            Err(e) => Err(self.err("creating the role", &e)),
        }
    }

    /// `create_account` of a role that already exists: done if it carries this identity's tag.
    fn existing(&self, spec: &AccountSpec, role: &RoleRow, tag: &str) -> Result<Applied> {
        if role.comment.as_deref() == Some(tag) {
            return Ok(Applied::AlreadyDone);
        }
        let account = &spec.account;
        let whose = match role.comment.as_deref().and_then(|c| c.strip_prefix(TAG_PREFIX)) {
            Some(other) => format!("it is the account of identity `{other}`"),
            None => "it is not tagged as a Tenure account".to_string(),
        };
        Err(self.permanent(format!(
            "cannot create account `{account}` for identity `{}`: a role of that name already exists and {whose}; \
             to adopt it, set its comment to `{tag}`",
            spec.identity_id
        )))
    }

    async fn membership(&self, conn: &mut Conn<'_>, req: &Request, acct: &str) -> Result<Applied> {
        let account = req.account.account.as_str();
        let grant = req.kind == OpKind::Grant;
        let Some(entitlement) = req.entitlement.as_deref() else {
            return Err(self.permanent(format!("{} for `{account}` names no entitlement", req.kind)));
        };
        let ent = quote_ident(entitlement).map_err(|e| self.permanent(e.message))?;
        let what = "reading memberships";
        let statement =
            conn.prepared(MEMBERSHIP_SQL, &[Type::NAME, Type::NAME]).await.map_err(|e| self.err(what, &e))?;
        let c = conn.client();
        let row = c.query_one(&statement, &[&account, &entitlement]).await.map_err(|e| self.err(what, &e))?;
        let acct_oid: Option<u32> = self.col(&row, 0)?;
        let ent_oid: Option<u32> = self.col(&row, 1)?;
        let member: bool = self.col(&row, 2)?;
        if grant {
            if acct_oid.is_none() {
                return Err(self.permanent(format!(
                    "cannot grant `{entitlement}` to `{account}`: the account role does not exist"
                )));
            }
            if ent_oid.is_none() {
                return Err(self.permanent(format!(
                    "cannot grant `{entitlement}` to `{account}`: the entitlement role `{entitlement}` does not exist \
                     (Tenure does not create entitlement roles; create it or fix the policy)"
                )));
            }
            if member {
                return Ok(Applied::AlreadyDone);
            }
            // An entitlement is a plain group role. A role that carries administrative attributes,
            // can log in (someone's account, usable through SET ROLE), is built in (`pg_*`), or is an
            // account Tenure manages is never granted, whatever the policy says.
            let what = "checking the entitlement role";
            let check = conn.prepared(ENTITLEMENT_CHECK_SQL, &[Type::OID]).await.map_err(|e| self.err(what, &e))?;
            let c = conn.client();
            let row = c.query_one(&check, &[&ent_oid]).await.map_err(|e| self.err(what, &e))?;
            let admin: bool = self.col(&row, 0)?;
            let login: bool = self.col(&row, 1)?;
            let builtin: bool = self.col(&row, 2)?;
            let managed: bool = self.col(&row, 3)?;
            let why = if admin {
                Some("it has superuser, createrole, replication or bypassrls")
            } else if login {
                Some("it can log in (it is an account, not a group)")
            } else if builtin {
                Some("it is a built-in `pg_` role")
            } else if managed {
                Some("it is an account Tenure manages")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(self.permanent(format!("refusing to grant `{entitlement}` to `{account}`: {why}")));
            }
            let sql = format!("GRANT {ent} TO {acct}");
            c.batch_execute(&sql).await.map_err(|e| self.err("granting", &e))?;
            return Ok(Applied::Changed);
        }
        let (Some(acct_oid), Some(ent_oid)) = (acct_oid, ent_oid) else {
            return Ok(Applied::AlreadyDone);
        };
        if !member {
            return Ok(Applied::AlreadyDone);
        }
        // The oids are integers read from the catalog, so writing them into the text is safe;
        // the re-read rides in the same round trip as the REVOKE.
        let sql = format!(
            "REVOKE {ent} FROM {acct}; \
             SELECT count(*) FROM pg_auth_members WHERE roleid = {ent_oid} AND member = {acct_oid}"
        );
        let messages = c.simple_query(&sql).await.map_err(|e| self.err("revoking", &e))?;
        let still = messages.iter().any(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).is_some_and(|n| n != "0"),
            _ => false,
        });
        if still {
            return Err(self.permanent(format!(
                "`{account}` is still a member of `{entitlement}` after REVOKE; on PostgreSQL 16+ the membership \
                 was probably granted by another role and must be revoked with GRANTED BY"
            )));
        }
        Ok(Applied::Changed)
    }

    /// Live backends of `account` other than this one, and whether it is Tenure's own role.
    async fn session_count(&self, c: &Client, account: &str) -> Result<(i64, bool)> {
        let row = c
            .query_typed_one(SESSIONS_SQL, &[(&account, Type::NAME)])
            .await
            .map_err(|e| self.err("counting sessions", &e))?;
        Ok((self.col(&row, 0)?, self.col(&row, 1)?))
    }

    async fn revoke_sessions(&self, c: &Client, account: &str) -> Result<Applied> {
        let (n, is_self) = self.session_count(c, account).await?;
        if is_self {
            return Err(self
                .permanent(format!("refusing to end the sessions of `{account}`: it is the role Tenure connects as")));
        }
        if n == 0 {
            return Ok(Applied::AlreadyDone);
        }
        c.query_typed(TERMINATE_SQL, &[(&account, Type::NAME)])
            .await
            .map_err(|e| self.err("terminating sessions", &e))?;
        // pg_terminate_backend only signals; wait until the backends are gone, so the read-back
        // that verifies this operation sees what it did.
        let start = Instant::now();
        loop {
            let (left, _) = self.session_count(c, account).await?;
            if left == 0 {
                return Ok(Applied::Changed);
            }
            if start.elapsed() > SESSION_EXIT_WAIT {
                return Err(ConnectorError::transient(format!(
                    "target `{}`: {left} session(s) of `{account}` still running {SESSION_EXIT_WAIT:?} after pg_terminate_backend",
                    self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether a row read with `READ_SQL` carries the tag of `spec`'s identity.
    fn tagged_for(&self, row: &Row, spec: &AccountSpec) -> Result<bool> {
        let comment: Option<String> = self.col(row, 2)?;
        Ok(comment.as_deref().and_then(|c| c.strip_prefix(TAG_PREFIX)) == Some(spec.identity_id.as_str()))
    }

    fn account_state(&self, row: &Row) -> Result<AccountState> {
        let comment: Option<String> = self.col(row, 2)?;
        let grants: Vec<String> = self.col(row, 3)?;
        let sessions: i64 = self.col(row, 4)?;
        Ok(AccountState {
            account: self.col(row, 0)?,
            external_id: comment.and_then(|c| c.strip_prefix(TAG_PREFIX).map(str::to_string)),
            enabled: self.col(row, 1)?,
            grants: grants.into_iter().collect::<BTreeSet<_>>(),
            sessions: Some(u32::try_from(sessions).unwrap_or(u32::MAX)),
            email: None,
        })
    }
}

/// Runs `$body` (an expression using `$conn`) on a pooled connection, and once more on a fresh
/// one if it failed transiently because the pooled connection had died in the meantime.
macro_rules! with_conn {
    ($self:ident, $conn:ident => $body:expr) => {{
        let mut $conn = $self.pool.get().await?;
        let first = $body.await;
        match first {
            Err(e) if e.is_transient() && $conn.was_stale() => {
                drop($conn);
                let mut $conn = $self.pool.get().await?;
                $body.await
            }
            other => other,
        }
    }};
}

#[async_trait::async_trait]
impl Connector for PostgresConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }

    async fn apply(&self, req: &Request) -> Result<Applied> {
        if req.kind == OpKind::RotateCredential {
            self.require_tls("rotate the password of", &req.account.account)?;
        }
        let out = with_conn!(self, conn => self.apply_on(&mut conn, req));
        match &out {
            Ok(applied) => tracing::debug!(
                target_name = %self.name, op = %req.kind, account = %req.account.account,
                entitlement = req.entitlement.as_deref().unwrap_or(""), ?applied, "postgres operation"
            ),
            Err(e) => tracing::debug!(
                target_name = %self.name, op = %req.kind, account = %req.account.account,
                error = %e, "postgres operation failed"
            ),
        }
        out
    }

    async fn read_account(&self, account: &AccountSpec) -> Result<Option<AccountState>> {
        let name = account.account.as_str();
        let what = "reading the account";
        // By name when that role carries the identity's tag, else the role tagged for the
        // identity under another name (renamed by hand), else the role of the name.
        let row = with_conn!(self, conn => async {
            let statement = conn.prepared(READ_SQL, &[Type::NAME]).await.map_err(|e| self.err(what, &e))?;
            let by_name = conn.client().query_opt(&statement, &[&name]).await.map_err(|e| self.err(what, &e))?;
            if let Some(row) = &by_name
                && (account.identity_id.trim().is_empty() || self.tagged_for(row, account)?)
            {
                return Ok(by_name);
            }
            match self.renamed(&mut conn, account).await?.filter(|other| other != name) {
                Some(other) => conn.client().query_opt(&statement, &[&other]).await.map_err(|e| self.err(what, &e)),
                None => Ok(by_name),
            }
        })?;
        row.map(|r| self.account_state(&r)).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<AccountState>> {
        let rows = with_conn!(self, conn => async {
            conn.client().query_typed(LIST_SQL, &[]).await.map_err(|e| self.err("listing accounts", &e))
        })?;
        rows.iter().map(|r| self.account_state(r)).collect()
    }

    async fn verify_secret(&self, account: &AccountSpec, secret: &crate::NewSecret) -> Result<bool> {
        self.require_tls("log in with the new password of", &account.account)?;
        self.pool.try_login(&account.account, secret.expose()).await.map_err(|mut e| {
            e.message = secret.scrub(&self.scrub.clean(&e.message));
            e
        })
    }

    async fn list_entitlements(&self) -> Result<Vec<String>> {
        let rows = with_conn!(self, conn => async {
            conn.client()
                .query_typed(ENTITLEMENTS_SQL, &[])
                .await
                .map_err(|e| self.err("listing entitlement roles", &e))
        })?;
        rows.iter().map(|r| self.col(r, 0)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_core::TargetKind;

    #[test]
    fn libpq_ssl_parameters_are_taken_out_of_the_url() {
        let split = |u: &str| split_ssl_params(u).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            split(
                "postgres://u:p%2Fw@db.example.com:5432/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x"
            ),
            (
                "postgres://u:p%2Fw@db.example.com:5432/app?application_name=x".to_string(),
                Some(PgSslMode::VerifyFull),
                Some("/etc/ca.pem".to_string())
            )
        );
        assert_eq!(
            split("postgres://db/app?sslmode=disable"),
            ("postgres://db/app".to_string(), Some(PgSslMode::Disable), None)
        );
        assert_eq!(split("host=db sslmode=require"), ("host=db sslmode=require".to_string(), None, None));
        let e = split_ssl_params("postgres://u:secret@db/app?sslmode=allow").err().unwrap_or_default();
        assert!(e.contains("not one of: disable, prefer") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn capabilities_match_what_the_planner_plans_for_postgres() {
        for &op in OpKind::ALL {
            let declared = Capability::for_op(op).is_some_and(|c| CAPABILITIES.contains(&c));
            assert_eq!(declared, TargetKind::Postgres.supports(op), "{op}");
        }
    }
}
