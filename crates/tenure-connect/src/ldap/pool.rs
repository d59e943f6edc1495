//! A small pool of bound `ldap3` connections behind a semaphore, and error classification.
//!
//! `ldap3`'s `Ldap` handle is multiplexed: clones share one connection and may have many
//! operations in flight. The pool keeps a few such connections (at most [`MAX_CONNECTIONS`]),
//! hands them out round-robin, and limits operations in flight to the target's `concurrency`
//! with a semaphore. Connections are made lazily, on first use, so building a connector never
//! touches the network; a connection that has dropped is replaced on its next use.

use crate::redact::{Scrubber, redact};
use crate::{ConnectorError, ErrorKind, Result};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};

/// More connections than this buy nothing against one server: each is multiplexed already.
const MAX_CONNECTIONS: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Per request; for a paged search, per page.
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// The bind password. Kept out of `Debug` output so it cannot leak through logs.
struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

pub(super) struct Pool {
    target: String,
    url: String,
    bind_dn: String,
    password: Password,
    /// Erases the password from every message (see `crate::redact`).
    scrub: Scrubber,
    slots: Vec<Mutex<Option<Ldap>>>,
    next: AtomicUsize,
    /// How many connections were opened and bound (a retired one is replaced by a new one).
    opened: AtomicUsize,
    permits: Semaphore,
    /// The TLS client configuration for ldaps:// and StartTLS; `None` for plain LDAP.
    tls: Option<Arc<rustls::ClientConfig>>,
    starttls: bool,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.target)
            .field("url", &redact(&self.url))
            .field("bind_dn", &self.bind_dn)
            .field("password", &self.password)
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// One operation's hold on the pool: a permit and a connection handle.
pub(super) struct Conn<'a> {
    pool: &'a Pool,
    slot: usize,
    ldap: Ldap,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    pub(super) fn new(
        target: &str,
        url: &str,
        bind_dn: &str,
        password: String,
        concurrency: usize,
        tls: Option<Arc<rustls::ClientConfig>>,
        starttls: bool,
    ) -> Self {
        let concurrency = concurrency.max(1);
        let connections = concurrency.min(MAX_CONNECTIONS);
        Self {
            target: target.to_string(),
            url: url.to_string(),
            bind_dn: bind_dn.to_string(),
            scrub: Scrubber::new([password.as_str()]),
            password: Password(password),
            slots: (0..connections).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
            permits: Semaphore::new(concurrency),
            tls,
            starttls,
        }
    }

    /// Waits for a free permit and returns a bound connection.
    pub(super) async fn get(&self) -> Result<Conn<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ConnectorError::transient(format!("{}: connector is shutting down", self.target)))?;
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let Some(cell) = self.slots.get(slot) else {
            return Err(ConnectorError::permanent(format!("{}: no connection slots", self.target)));
        };
        let mut guard = cell.lock().await;
        if let Some(ldap) = guard.as_mut()
            && !ldap.is_closed()
        {
            return Ok(Conn { pool: self, slot, ldap: ldap.clone(), _permit: permit });
        }
        let ldap = self.connect().await?;
        *guard = Some(ldap.clone());
        Ok(Conn { pool: self, slot, ldap, _permit: permit })
    }

    async fn connect(&self) -> Result<Ldap> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(CONNECT_TIMEOUT).set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| self.error(&format!("connecting to `{}`", redact(&self.url)), e))?;
        let target = self.target.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(target = %target, error = %e, "ldap connection closed");
            }
        });
        let what = format!("binding as `{}`", self.bind_dn);
        let res = ldap
            .with_timeout(OP_TIMEOUT)
            .simple_bind(&self.bind_dn, &self.password.0)
            .await
            .map_err(|e| self.error(&what, e))?;
        if res.rc != 0 {
            return Err(self.result_error(&what, &res));
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(ldap)
    }

    /// How many connections were opened and bound so far.
    pub(super) fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// Whether a simple bind as `dn` with `password` succeeds, on a connection of its own (same
    /// URL and TLS settings) that is unbound and dropped at once: how a rotated password is read
    /// back. `invalidCredentials` (49) is `Ok(false)`; other failures are errors, scrubbed of
    /// the password tried.
    pub(super) async fn try_bind(&self, dn: &str, password: &str) -> Result<bool> {
        let scrub = |mut e: ConnectorError| {
            e.message = e.message.replace(password, "[redacted]");
            e
        };
        let mut settings = LdapConnSettings::new().set_conn_timeout(CONNECT_TIMEOUT).set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| scrub(self.error(&format!("connecting to `{}`", redact(&self.url)), e)))?;
        let driver = tokio::spawn(async move { conn.drive().await });
        let what = format!("binding as `{dn}` to verify its new password");
        let res = ldap.with_timeout(OP_TIMEOUT).simple_bind(dn, password).await;
        let _ = ldap.unbind().await;
        let _ = driver.await;
        match res {
            Ok(r) if r.rc == 0 => Ok(true),
            Ok(r) if r.rc == 49 => Ok(false),
            Ok(r) => Err(scrub(self.result_error(&what, &r))),
            Err(LdapError::LdapResult { result }) if result.rc == 49 => Ok(false),
            Err(e) => Err(scrub(self.error(&what, e))),
        }
    }

    /// Classifies a transport or library error. Never includes the password: `ldap3` errors
    /// carry no request data, we add only DNs and the redacted URL, and the scrubber erases the
    /// password should any text hold it anyway.
    pub(super) fn error(&self, what: &str, e: LdapError) -> ConnectorError {
        match e {
            LdapError::LdapResult { result } => self.result_error(what, &result),
            // A certificate that is not trusted will not become trusted by retrying.
            e if let Some(why) = crate::tls::explain(&e) => ConnectorError {
                kind: ErrorKind::Permanent,
                message: self.scrub.clean(&format!("{}: {what}: {why}", self.target)),
                retry_after: None,
            },
            e => {
                let kind = if is_connection_error(&e) { ErrorKind::Transient } else { ErrorKind::Permanent };
                let message = self.scrub.clean(&format!("{}: {what}: {e}", self.target));
                ConnectorError { kind, message, retry_after: None }
            }
        }
    }

    /// Classifies an LDAP result code that the operation did not expect.
    pub(super) fn result_error(&self, what: &str, res: &LdapResult) -> ConnectorError {
        let kind = result_kind(res.rc);
        let mut message = format!("{}: {what}: {} ({})", self.target, rc_name(res.rc), res.rc);
        if !res.text.is_empty() {
            message.push_str(": ");
            message.push_str(&res.text);
        }
        ConnectorError { kind, message: self.scrub.clean(&message), retry_after: None }
    }
}

impl Conn<'_> {
    /// The handle for the next request, with the per-request timeout set.
    pub(super) fn ldap(&mut self) -> &mut Ldap {
        self.ldap.with_timeout(OP_TIMEOUT)
    }

    /// Turns a request's outcome into its `LdapResult` (any result code: the caller decides
    /// which are fine) or a classified error. A connection-level failure also retires the
    /// connection, so the next operation reconnects.
    pub(super) fn check(&self, what: &str, r: std::result::Result<LdapResult, LdapError>) -> Result<LdapResult> {
        match r {
            Ok(res) => Ok(res),
            Err(LdapError::LdapResult { result }) => Ok(result),
            Err(e) => {
                if is_connection_error(&e) {
                    self.retire();
                }
                Err(self.pool.error(what, e))
            }
        }
    }

    /// A classified error for an unexpected result code.
    pub(super) fn unexpected(&self, what: &str, res: &LdapResult) -> ConnectorError {
        self.pool.result_error(what, res)
    }

    /// A classified error for a library or transport error.
    pub(super) fn fail(&self, what: &str, e: LdapError) -> ConnectorError {
        if is_connection_error(&e) {
            self.retire();
        }
        self.pool.error(what, e)
    }

    pub(super) fn target(&self) -> &str {
        &self.pool.target
    }

    /// A permanent error for a request this connector gave up on midway (a search past the
    /// listing's caps): the connection is retired, so a search still running on the server
    /// dies with it instead of leaving the next request to read its entries.
    pub(super) fn abandon(&self, what: &str, why: &str) -> ConnectorError {
        self.retire();
        ConnectorError::permanent(self.pool.scrub.clean(&format!("{}: {what}: {why}", self.pool.target)))
    }

    fn retire(&self) {
        if let Some(cell) = self.pool.slots.get(self.slot)
            && let Ok(mut guard) = cell.try_lock()
        {
            *guard = None;
        }
    }
}

/// Errors where the request may not have reached the server or its answer was lost: the
/// connection is refused, reset, closed or timed out. Retrying can help.
fn is_connection_error(e: &LdapError) -> bool {
    matches!(
        e,
        LdapError::Io { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::MiscSend { .. }
            | LdapError::Timeout { .. }
            | LdapError::EndOfStream
    )
}

/// Whether retrying a request that failed with result code `rc` can help.
pub(super) fn result_kind(rc: u32) -> ErrorKind {
    match rc {
        // operationsError, timeLimitExceeded, adminLimitExceeded, busy, unavailable, loopDetect,
        // other (server-side trouble), and the client-side "server down"/"timeout" codes.
        1 | 3 | 11 | 51 | 52 | 54 | 80 | 81 | 85 => ErrorKind::Transient,
        // protocolError, authMethodNotSupported, strongerAuthRequired, referral,
        // confidentialityRequired, noSuchAttribute, undefinedAttributeType, inappropriateMatching,
        // constraintViolation, attributeOrValueExists, invalidAttributeSyntax, noSuchObject,
        // aliasProblem, invalidDNSyntax, inappropriateAuthentication, invalidCredentials,
        // insufficientAccessRights, unwillingToPerform, namingViolation, objectClassViolation,
        // notAllowedOnNonLeaf, notAllowedOnRDN, entryAlreadyExists, and the rest.
        _ => ErrorKind::Permanent,
    }
}

/// The RFC 4511 name of a result code, for messages.
pub(super) fn rc_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        33 => "aliasProblem",
        34 => "invalidDNSyntax",
        36 => "aliasDereferencingProblem",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_are_classified() {
        for rc in [1, 3, 11, 51, 52, 54, 80] {
            assert_eq!(result_kind(rc), ErrorKind::Transient, "{rc} ({})", rc_name(rc));
        }
        for rc in [2, 16, 17, 19, 20, 21, 32, 34, 49, 50, 53, 64, 65, 66, 68, 69] {
            assert_eq!(result_kind(rc), ErrorKind::Permanent, "{rc} ({})", rc_name(rc));
        }
    }

    #[test]
    fn transport_errors_are_transient_and_the_password_is_never_shown() {
        let pool = Pool::new("dir", "ldap://127.0.0.1:1/", "cn=admin", "s3cret-pw".into(), 4, None, false);
        let io = LdapError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let e = pool.error("connecting", io);
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(!e.message.contains("s3cret-pw"));
        let e = pool.error("parsing", LdapError::FilterParsing);
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(!format!("{pool:?}").contains("s3cret-pw"));
    }

    #[test]
    fn issue6_server_text_and_urls_never_carry_the_password() {
        let pool =
            Pool::new("dir", "ldap://admin:s3cret-pw@127.0.0.1:1/", "cn=admin", "s3cret-pw".into(), 4, None, false);
        let echoed = LdapResult {
            rc: 49,
            matched: String::new(),
            text: "invalid credentials s3cret-pw".into(),
            refs: vec![],
            ctrls: vec![],
        };
        let e = pool.result_error("binding", &echoed);
        assert_eq!(e.message, "dir: binding: invalidCredentials (49): invalid credentials ***");
        assert!(!format!("{pool:?}").contains("s3cret-pw"));
    }
}
