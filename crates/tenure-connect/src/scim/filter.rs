//! SCIM filters and query strings, built so that no value can change their meaning.
//!
//! Tenure only builds filters of the form `ATTR eq VALUE`. Attribute names are
//! `&'static str` constants, so only values come from outside. RFC 7644 §3.4.2.2 makes a
//! comparison value a JSON value; a string is therefore written as a JSON string literal: it is
//! wrapped in double quotes, `"` and `\` are escaped with a backslash, and control characters
//! become `\uXXXX`. Other characters, including every non-ASCII one, are written as they are,
//! and the whole query string is percent-encoded as UTF-8 (RFC 3986), so `a"b\c` reaches the
//! server as `userName eq "a\"b\\c"` and can only ever match the `userName` `a"b\c`.

use std::fmt::Write as _;

/// A filter expression whose values are quoted and escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter(String);

impl Filter {
    /// `attr eq "value"`.
    pub(crate) fn eq(attr: &'static str, value: &str) -> Self {
        Filter(format!("{attr} eq {}", quote(value)))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A string as a SCIM filter comparison value: a JSON string literal (RFC 7644 §3.4.2.2, RFC 8259
/// §7).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x80 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A query string from `(name, value)` pairs. Everything but RFC 3986's unreserved characters is
/// percent-encoded (a space becomes `%20`, not `+`, which some servers do not decode).
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(&mut out, name);
        out.push('=');
        percent_encode(&mut out, value);
    }
    out
}

fn percent_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_and_escaped() {
        let cases = [
            ("alice", r#"userName eq "alice""#),
            (r#"a"b\c"#, r#"userName eq "a\"b\\c""#),
            (r#"x" or userName pr ""#, r#"userName eq "x\" or userName pr \"""#),
            ("Jürgen 日本", r#"userName eq "Jürgen 日本""#),
            ("tab\there\nnl\u{1}", r#"userName eq "tab\there\nnl\u0001""#),
            ("", r#"userName eq """#),
        ];
        for (value, want) in cases {
            assert_eq!(Filter::eq("userName", value).as_str(), want, "value {value:?}");
        }
    }

    #[test]
    fn quoted_values_are_json_strings() {
        for value in [r#"a"b\c"#, "x\" or userName pr \"", "ü\u{7}\u{1f}", "\\\"\\"] {
            let back: String = serde_json::from_str(&quote(value)).unwrap();
            assert_eq!(back, value);
        }
    }

    #[test]
    fn query_strings_are_percent_encoded() {
        assert_eq!(
            query_string(&[("filter", r#"userName eq "a&b=c+d ü""#), ("count", "5")]),
            "filter=userName%20eq%20%22a%26b%3Dc%2Bd%20%C3%BC%22&count=5"
        );
    }
}
