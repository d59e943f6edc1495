//! The API's paged reads and the readiness probe in SQLite.

use super::R;
use rusqlite::Connection;

pub(super) fn applied_schema_version(conn: &Connection) -> R<i64> {
    Ok(conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
}
