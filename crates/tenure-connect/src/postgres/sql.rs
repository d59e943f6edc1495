//! SQL text building and error classification for the PostgreSQL connector.
//!
//! Role DDL (`CREATE ROLE`, `GRANT role TO role`, `COMMENT ON ROLE`, ...) is utility SQL: the
//! server accepts no bind parameters in it, so the names and the comment literal have to be
//! spelled into the statement text. This module is the only place that does that, and it does it
//! the way PostgreSQL's own `quote_ident` and `quote_literal` do. Every other value (look-ups in
//! `pg_roles`, `pg_stat_activity`, ...) is a bind parameter.

use crate::ConnectorError;
use tokio_postgres::error::SqlState;

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` in a default build). A longer name
/// is silently truncated by the server with only a NOTICE, which would make Tenure create or
/// drop a role other than the one it was asked for, so longer names are refused instead.
pub(crate) const MAX_IDENT_BYTES: usize = 63;

/// Quotes a role name as a PostgreSQL identifier: wrapped in `"`, with every `"` doubled.
///
/// Quoting keeps the name exactly as given (case, spaces, quotes, non-ASCII). An empty name, a
/// NUL (which no PostgreSQL string can hold) and a name longer than [`MAX_IDENT_BYTES`] are
/// refused, because the server would reject or truncate them.
pub(crate) fn quote_ident(name: &str) -> Result<String, ConnectorError> {
    if name.is_empty() {
        return Err(ConnectorError::permanent("a role name must not be empty"));
    }
    if name.contains('\0') {
        return Err(ConnectorError::permanent(format!("role name `{}` contains a NUL character", name.escape_debug())));
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(ConnectorError::permanent(format!(
            "role name `{name}` is {} bytes long; PostgreSQL keeps at most {MAX_IDENT_BYTES}",
            name.len()
        )));
    }
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// Quotes a string as an escape-string literal, `E'...'`, with every `'` and `\` doubled.
///
/// The `E` form means the same thing whatever the server's `standard_conforming_strings` is set
/// to, so a backslash in the value can never end the literal early. A NUL is refused because no
/// PostgreSQL text value can hold one.
pub(crate) fn quote_literal(value: &str) -> Result<String, ConnectorError> {
    if value.contains('\0') {
        return Err(ConnectorError::permanent(format!("value `{}` contains a NUL character", value.escape_debug())));
    }
    let mut out = String::with_capacity(value.len() + 3);
    out.push_str("E'");
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// Whether retrying a statement that failed with this SQLSTATE can help.
///
/// Transient: connection exceptions (class 08), serialization failures and deadlocks (40001,
/// 40P01), insufficient resources such as too many connections (class 53), operator
/// intervention such as a shutdown or a server still starting (57P01-57P05), a cancelled
/// statement (57014), a lock wait past `lock_timeout` (55P03) and an I/O error (58030).
/// Everything else (syntax and access rules in class 42, authentication in class 28, a role
/// still owning objects in 2BP01, ...) is permanent: the same statement will fail again.
pub(crate) fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "40001" | "40P01" | "57014" | "55P03" | "58030")
}

/// Turns a driver error into a [`ConnectorError`] that says whether to retry.
///
/// The message names the target and what was being done, then the server's own message, detail
/// and SQLSTATE. It never holds the connection URL or a password: the driver's messages do not
/// contain them, and no statement this connector sends contains one either (a rotated password
/// is sent as a SCRAM verifier).
pub(crate) fn classify(target: &str, what: &str, e: &tokio_postgres::Error) -> ConnectorError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let mut message = format!("target `{target}`: {what}: {}", db.message());
        if let Some(detail) = db.detail() {
            message.push_str(" (");
            message.push_str(&detail.replace('\n', "; "));
            message.push(')');
        }
        message.push_str(&format!(" [SQLSTATE {code}]"));
        if *db.code() == SqlState::DEPENDENT_OBJECTS_STILL_EXIST {
            message.push_str(
                "; REASSIGN OWNED and DROP OWNED only reach the database Tenure connects to: \
                 objects or privileges in other databases must be moved there first",
            );
        }
        return if is_transient_sqlstate(code) {
            ConnectorError::transient(message)
        } else {
            ConnectorError::permanent(message)
        };
    }
    // A certificate that is not trusted, or a server without TLS where TLS is required, will not
    // get better by retrying.
    if let Some(why) = crate::tls::explain(e) {
        return ConnectorError::permanent(format!("target `{target}`: {what}: {why}"));
    }
    if e.to_string() == "error performing TLS handshake" {
        let cause = std::error::Error::source(e).map(ToString::to_string).unwrap_or_default();
        return ConnectorError::permanent(format!(
            "target `{target}`: {what}: TLS handshake failed: {cause} (is `ssl = on` in the server's postgresql.conf?)"
        ));
    }
    // Without a server error, the driver's own error kinds are only visible through their
    // fixed messages. Connecting, timing out and losing the connection can all heal; a
    // protocol, encoding or authentication-method problem cannot.
    let text = e.to_string();
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);
    let transient = e.is_closed()
        || io.is_some()
        || matches!(
            text.as_str(),
            "error connecting to server" | "timeout waiting for server" | "error communicating with the server"
        );
    let message = match io {
        Some(kind) => format!("target `{target}`: {what}: {text}: {kind}"),
        None => format!("target `{target}`: {what}: {text}"),
    };
    if transient { ConnectorError::transient(message) } else { ConnectorError::permanent(message) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_ident(name: &str, expect: &str) {
        assert_eq!(quote_ident(name).unwrap(), expect, "quote_ident({name:?})");
    }

    fn check_literal(value: &str, expect: &str) {
        assert_eq!(quote_literal(value).unwrap(), expect, "quote_literal({value:?})");
    }

    #[test]
    fn identifiers_are_quoted_with_doubled_quotes() {
        check_ident("alice", r#""alice""#);
        check_ident("Alice", r#""Alice""#);
        check_ident(r#"a"b"#, r#""a""b""#);
        check_ident(r#"""#, r#""""""#);
        check_ident("O'Brien", r#""O'Brien""#);
        check_ident("x; DROP ROLE postgres; --", r#""x; DROP ROLE postgres; --""#);
        check_ident("Zoë 李", r#""Zoë 李""#);
        check_ident(r"back\slash", r#""back\slash""#);
    }

    #[test]
    fn identifiers_the_server_would_change_are_refused() {
        for bad in ["", "a\0b", &"x".repeat(64), &"é".repeat(32)] {
            let e = quote_ident(bad).unwrap_err();
            assert!(!e.is_transient(), "{bad:?}");
        }
        assert!(quote_ident(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn literals_double_quotes_and_backslashes() {
        check_literal("tenure:E1", "E'tenure:E1'");
        check_literal("O'Brien", "E'O''Brien'");
        check_literal(r"a\'; DROP ROLE postgres; --", r"E'a\\''; DROP ROLE postgres; --'");
        check_literal("Ñandú 名前", "E'Ñandú 名前'");
        check_literal("line\nbreak", "E'line\nbreak'");
        assert!(quote_literal("a\0b").is_err());
    }

    #[test]
    fn sqlstates_are_sorted_into_retryable_and_not() {
        for code in ["08006", "08001", "40001", "40P01", "53300", "57P01", "57P03", "55P03"] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in ["42501", "42704", "42710", "28P01", "28000", "2BP01", "0LP01", "XX000"] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }
}
