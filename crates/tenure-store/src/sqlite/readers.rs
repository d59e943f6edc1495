//! Readers in parallel with the one writer.
//!
//! SQLite in WAL mode lets any number of connections read while one writes: a reader sees the
//! database as of the last commit before its read began, and neither waits for the other. The
//! store keeps its writer behind one mutex (every write, and every read that must see the
//! writer's transaction, goes there) and a small pool of read-only connections for the reads
//! that stand alone — the API's lists and lookups, token checks, the views — so a request never
//! waits behind an import, the ingest worker, the executor or a schedule holding the writer.
//!
//! A pooled connection is opened read-only with `query_only` on: a write sent to one fails
//! instead of bypassing the writer. An in-memory store (each connection would be a database of
//! its own) and a read-only store have no pool; their reads share the one connection.

use super::{Error, R};
use rusqlite::{Connection, OpenFlags};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How many read connections a store opens at most: more than the cores (a reader often waits on
/// the disk or on the caller), few enough that their page caches stay small.
pub(crate) const MAX_READERS: usize = 4;

/// Idle read connections, opened on first use up to [`MAX_READERS`].
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<Connection>,
    /// Connections opened and not closed (idle or lent).
    open: usize,
}

impl Readers {
    pub(crate) fn new(path: &Path, max: usize) -> Self {
        Self { path: path.to_path_buf(), max: max.max(1), state: Mutex::default(), freed: Condvar::new() }
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        // A poisoned lock means a thread panicked while holding the list; the list is still valid.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An idle connection, a new one while fewer than `max` are open, else the next one freed.
    pub(crate) fn get(&self) -> R<Pooled<'_>> {
        let mut state = self.state();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled { pool: self, conn: Some(conn) });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match open_reader(&self.path) {
                    Ok(conn) => Ok(Pooled { pool: self, conn: Some(conn) }),
                    Err(e) => {
                        self.state().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.freed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn put(&self, conn: Connection) {
        // A connection left inside a transaction (a panic mid-read) is closed, not reused.
        let mut state = self.state();
        if conn.is_autocommit() {
            state.idle.push(conn);
        } else {
            state.open -= 1;
        }
        drop(state);
        self.freed.notify_one();
    }
}

fn open_reader(path: &Path) -> R<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(Error::from)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// A read connection lent by the pool; it goes back when dropped.
pub(crate) struct Pooled<'a> {
    pool: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put(conn);
        }
    }
}

/// The connection a stand-alone read runs on: a pooled reader, or the writer where the store has
/// no pool.
pub(crate) enum Reader<'a> {
    Pooled(Pooled<'a>),
    Writer(MutexGuard<'a, Connection>),
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            // INVARIANT: `conn` is `Some` until the pooled connection is dropped.
            Reader::Pooled(p) => p.conn.as_ref().unwrap_or_else(|| unreachable_conn()),
            Reader::Writer(g) => g,
        }
    }
}

#[expect(clippy::panic, reason = "a pooled connection is only taken out in its own Drop")]
fn unreachable_conn() -> &'static Connection {
    panic!("a pooled read connection was used after it went back to the pool")
}
