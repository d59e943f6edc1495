//! A small, lazy connection pool: at most `size` clients, each opened on first need.
//!
//! A semaphore with `size` permits bounds the concurrency; each permit holder takes one of
//! `size` slots, each a `tokio::sync::Mutex<Option<Client>>`. A slot whose client is missing or
//! closed (the server restarted, the network dropped) is refilled with a fresh connection when it
//! is taken, so a pool survives a target that goes down and comes back without being rebuilt.
//!
//! Why not deadpool-postgres: the connector needs four things (a bound, laziness, replacing dead
//! clients, per-connection setup) and this is about 100 lines without a new dependency or its
//! configuration surface.

use super::sql::classify;
use crate::redact::Scrubber;
use crate::{ConnectorError, Result};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, Semaphore, SemaphorePermit};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Settings applied to every new connection. `client_min_messages` keeps harmless NOTICEs
/// (which this connector never relies on) off the wire; `lock_timeout` turns a statement stuck
/// behind another session's lock on `pg_authid` into a retryable error instead of a hang.
const SESSION_SETUP: &str = "SET client_min_messages = warning; SET lock_timeout = '10s'";

/// How long to wait for a TCP connection when the URL does not say (`connect_timeout`).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Pool {
    target: String,
    config: Config,
    /// "connecting to `<redacted URL>`", for connection errors.
    connecting: String,
    scrub: Scrubber,
    permits: Semaphore,
    slots: Vec<Mutex<Option<Pooled>>>,
    /// The TLS connector, unless `sslmode = disable`.
    tls: Option<MakeRustlsConnect>,
}

/// A connection and the statements prepared on it.
pub(crate) struct Pooled {
    client: Client,
    /// By SQL text. The catalog look-ups run on every operation and their planning costs more
    /// than their execution (a quarter of a millisecond for the membership query), so each is
    /// prepared once per connection instead of being parsed and planned on every call. Named
    /// statements do not survive a transaction-pooling proxy (PgBouncer before 1.21): connect
    /// directly or through a session-pooling one.
    statements: HashMap<&'static str, Statement>,
}

/// A client taken from the pool; it goes back when this is dropped.
pub(crate) struct Conn<'p> {
    // Field order matters: the slot is unlocked before the permit is released, so the next
    // permit holder always finds a free slot.
    client: MappedMutexGuard<'p, Pooled>,
    reused: bool,
    _permit: SemaphorePermit<'p>,
}

impl Conn<'_> {
    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.client.client
    }

    /// `sql` prepared on this connection (once; later calls reuse it).
    pub(crate) async fn prepared(
        &mut self,
        sql: &'static str,
        types: &[Type],
    ) -> std::result::Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.client.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.client.prepare_typed(sql, types).await?;
        self.client.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Whether this client came from an earlier operation and has died since: an error on it
    /// says nothing about whether a fresh connection would work.
    pub(crate) fn was_stale(&self) -> bool {
        self.reused && self.client.client.is_closed()
    }
}

impl Pool {
    /// `shown` is the connection URL as messages may show it (redacted); `scrub` erases the
    /// password from every connection error.
    pub(crate) fn new(
        target: &str,
        config: Config,
        size: usize,
        shown: &str,
        scrub: Scrubber,
        tls: Option<MakeRustlsConnect>,
    ) -> Self {
        let size = size.max(1);
        Self {
            target: target.to_string(),
            config,
            connecting: format!("connecting to `{shown}`"),
            scrub,
            permits: Semaphore::new(size),
            slots: (0..size).map(|_| Mutex::new(None)).collect(),
            tls,
        }
    }

    /// Takes a client, connecting if the slot has none or its client has closed.
    pub(crate) async fn get(&self) -> Result<Conn<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ConnectorError::transient(format!("target `{}`: pool closed", self.target)))?;
        // INVARIANT: a slot is only locked by a permit holder, and there are as many slots as
        // permits, so with a permit in hand at least one slot is free.
        let mut slot =
            self.slots.iter().find_map(|s| s.try_lock().ok()).ok_or_else(|| {
                ConnectorError::transient(format!("target `{}`: no free connection slot", self.target))
            })?;
        let reused = match slot.as_ref() {
            Some(c) if !c.client.is_closed() => true,
            _ => {
                *slot = Some(Pooled { client: self.connect().await?, statements: HashMap::new() });
                false
            }
        };
        let client = MutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| ConnectorError::transient(format!("target `{}`: connection slot is empty", self.target)))?;
        Ok(Conn { client, reused, _permit: permit })
    }

    fn error(&self, what: &str, e: &tokio_postgres::Error) -> ConnectorError {
        let mut e = classify(&self.target, what, e);
        e.message = self.scrub.clean(&e.message);
        e
    }

    /// Whether `user` can log in with `password` to the same server and database, with the same
    /// TLS settings, on a connection of its own that is closed at once: how a rotated password
    /// is read back. A refused login (SQLSTATE class 28) is `Ok(false)`; anything else, such as
    /// the server being down, is an error, scrubbed of the password tried.
    pub(crate) async fn try_login(&self, user: &str, password: &str) -> Result<bool> {
        let mut config = self.config.clone();
        config.user(user).password(password);
        let outcome = match &self.tls {
            Some(tls) => config.connect(tls.clone()).await.map(|(c, conn)| (c, tokio::spawn(conn))),
            None => config.connect(NoTls).await.map(|(c, conn)| (c, tokio::spawn(conn))),
        };
        match outcome {
            Ok((client, task)) => {
                drop(client);
                let _ = task.await;
                Ok(true)
            }
            Err(e) if e.code().is_some_and(|c| c.code().starts_with("28")) => Ok(false),
            Err(e) => {
                let mut err = self.error(&format!("logging in as `{user}` to verify its new password"), &e);
                err.message = err.message.replace(password, "[redacted]");
                Err(err)
            }
        }
    }

    async fn connect(&self) -> Result<Client> {
        let target = self.target.clone();
        let ended = move |e: tokio_postgres::Error| tracing::debug!(target_name = %target, error = %e, "postgres connection ended");
        let client = match &self.tls {
            Some(tls) => {
                let (client, connection) =
                    self.config.connect(tls.clone()).await.map_err(|e| self.error(&self.connecting, &e))?;
                tokio::spawn(async move { connection.await.map_err(ended) });
                client
            }
            None => {
                let (client, connection) =
                    self.config.connect(NoTls).await.map_err(|e| self.error(&self.connecting, &e))?;
                tokio::spawn(async move { connection.await.map_err(ended) });
                client
            }
        };
        client.batch_execute(SESSION_SETUP).await.map_err(|e| self.error("setting up the session", &e))?;
        tracing::debug!(target_name = %self.target, "opened a postgres connection");
        Ok(client)
    }
}
