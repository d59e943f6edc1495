//! Keeping secrets out of connector messages.
//!
//! A connector's error ends up in an operation's `last_error`, in audit records (which cannot be
//! edited afterwards without breaking the hash chain) and on the terminal, so what goes into one
//! is decided here, in two ways:
//! - [`redact`] is how every connector shows a URL: `scheme://host:port/path`, never userinfo,
//!   query values or a fragment. The config loader already refuses URLs that carry secrets; this
//!   is what keeps a URL that slipped through (or a PostgreSQL URL, which legitimately carries a
//!   password) out of messages.
//! - [`Scrubber`] erases the secret values a connector holds (bind password, bearer token,
//!   database password) from every message it passes on, including text that comes from a
//!   library or from the server itself, which the connector does not control.

use std::fmt;

/// A URL as it may appear in a message: `scheme://host:port/path`, without the user name and
/// password, with each query value replaced by `…`, without a fragment. A text that does not
/// parse as a URL is shown as `<invalid url>`: it could hold anything, a password included.
pub fn redact(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else { return "<invalid url>".to_string() };
    if u.cannot_be_a_base() {
        return format!("{}:…", u.scheme());
    }
    let mut out = format!("{}://", u.scheme());
    if let Some(host) = u.host_str() {
        out.push_str(host);
    }
    if let Some(port) = u.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(u.path());
    if u.query().is_some() {
        let keys: Vec<String> = u.query_pairs().map(|(k, _)| format!("{}=…", k.escape_default())).collect();
        out.push('?');
        out.push_str(&keys.join("&"));
    }
    out
}

/// The secret values one connector holds, to be erased from every message it passes on.
#[derive(Clone, Default)]
pub(crate) struct Scrubber {
    /// Non-empty values, longest first, so a secret that contains another is erased whole.
    secrets: Vec<String>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secret(s))", self.secrets.len())
    }
}

impl Scrubber {
    /// Erases `secrets` and their percent-encoded forms (as they appear inside a URL).
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut all: Vec<String> = Vec::new();
        for s in secrets.into_iter().filter(|s| !s.is_empty()) {
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            all.push(s.to_string());
            all.push(encoded.replace('+', "%20"));
            all.push(encoded);
        }
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        Self { secrets: all }
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expect: &str) {
        assert_eq!(redact(url), expect, "redact({url:?})");
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query_values() {
        check("ldap://127.0.0.1:3389", "ldap://127.0.0.1:3389");
        check("ldap://admin:pa%2Fss@127.0.0.1:3389/", "ldap://127.0.0.1:3389/");
        check("ldaps://cn=admin@ldap.example.com", "ldaps://ldap.example.com");
        check(
            "https://u:secret@scim.example.com/v2?access_token=t0k&x=1#frag",
            "https://scim.example.com/v2?access_token=…&x=…",
        );
        check(
            "postgres://postgres:pw@127.0.0.1:5432/db?sslmode=disable&password=pw2",
            "postgres://127.0.0.1:5432/db?sslmode=…&password=…",
        );
        check("http://[::1]:8000/scim/v2", "http://[::1]:8000/scim/v2");
        // Unparseable text could be anything, so none of it is shown.
        check("ldap://admin:pa/ss@127.0.0.1:3389", "<invalid url>");
        check("host=db password=pw", "<invalid url>");
        check("mailto:admin:pw@example.com", "mailto:…");
    }

    #[test]
    fn secrets_are_erased_in_plain_and_percent_encoded_form() {
        let s = Scrubber::new(["pa/ss word", "", "tok"]);
        assert_eq!(s.clean("bind failed for pa/ss word"), "bind failed for ***");
        assert_eq!(s.clean("url ldap://a:pa%2Fss%20word@h"), "url ldap://a:***@h");
        assert_eq!(s.clean("url ldap://a:pa%2Fss+word@h"), "url ldap://a:***@h");
        assert_eq!(s.clean("Bearer tok"), "Bearer ***");
        assert_eq!(s.clean("nothing here"), "nothing here");
        assert!(!format!("{s:?}").contains("tok"));
    }
}
