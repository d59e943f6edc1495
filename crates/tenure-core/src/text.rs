//! Untrusted text on its way into messages, tables and audit records.
//!
//! HR files, configs and targets are written by other people. A value that reaches a message
//! must not be able to move the cursor, rewrite a terminal line, hide text behind a bidi
//! override or blow up the output: control and format characters are escaped and quoted values
//! are cut to a readable length. The audit trail keeps what it is told, so everything quoted into
//! an audit reason goes through here first.

use std::borrow::Cow;

/// The longest field value Tenure accepts from a source. Longer values are rejected with their
/// row, never truncated silently.
pub const FIELD_LIMIT: usize = 4096;

/// How many characters of a value a message quotes.
pub const QUOTE_LIMIT: usize = 80;

/// Characters that must never reach a terminal or an audit record as themselves: C0 and C1
/// controls, DEL, the line and paragraph separators, and the Unicode characters that are
/// invisible or hide and reorder text: format characters (soft hyphen, the Arabic letter mark,
/// the Mongolian vowel separator, zero-width spaces and joiners, bidi embeddings, overrides and
/// isolates, invisible operators, the BOM, interlinear annotations, tags), the combining grapheme
/// joiner, and the blank "letters" (Hangul fillers, the braille blank).
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{34f}'
                | '\u{61c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// Whether `s` has a hidden character (see [`is_hidden`]); `allow_newline` lets `\n` through
/// (multi-line HR values). Plain printable ASCII, nearly every value, is answered without
/// decoding characters.
pub fn has_hidden(s: &str, allow_newline: bool) -> bool {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    s.chars().any(|c| is_hidden(c) && !(allow_newline && c == '\n'))
}

/// `s` lowercased for comparisons (usernames, emails), without the Unicode tables when it is
/// ASCII.
pub fn fold(s: &str) -> String {
    if s.is_ascii() { s.to_ascii_lowercase() } else { s.to_lowercase() }
}

/// `s` in Unicode compatibility form (NFKC), as usernames and emails are kept: a fullwidth
/// `ｊｓｉｌｖａ１` is `jsilva1`. ASCII is returned as it is.
pub fn nfkc(s: &str) -> Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization as _;
    if s.is_ascii() { Cow::Borrowed(s) } else { Cow::Owned(s.nfkc().collect()) }
}

/// What `s` looks like (the Unicode TR39 skeleton, lowercased), to compare a name that is not
/// plain ASCII with others: `jsilvа1` with a Cyrillic `а` looks like `jsilva1`. `None` for plain
/// ASCII, which is compared by [`fold`] alone (ASCII names such as `jsilva1` and `jsilval`
/// differ on purpose).
pub fn looks_like(s: &str) -> Option<String> {
    if s.is_ascii() {
        return None;
    }
    Some(fold(&unicode_security::skeleton(s).collect::<String>()))
}

/// The skeleton of any name, ASCII included, to compare with one that [`looks_like`] answered.
pub fn skeleton(s: &str) -> String {
    fold(&unicode_security::skeleton(s).collect::<String>())
}

/// Whether `key` can be an identity's key: printable ASCII without spaces. Keys are ids an HR
/// system assigns; anything else (a no-break space, an invisible letter, a look-alike from
/// another script) would make the row look like someone else's, so it is not trusted.
pub fn is_plain_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic())
}

/// `s` with every hidden character written as an escape (`\n`, `\t`, `\u{1b}`).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A value as a message quotes it: escaped, and cut after [`QUOTE_LIMIT`] characters with the
/// full size noted, so a 50 MB field yields a short line.
pub fn quote(s: &str) -> String {
    let escaped = escape(s);
    match escaped.char_indices().nth(QUOTE_LIMIT) {
        None => escaped.into_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", escaped.get(..cut).unwrap_or_default(), s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_escaped_and_long_values_cut() {
        assert_eq!(escape("Zoë Ødegaard"), "Zoë Ødegaard");
        assert_eq!(escape("a\nb\tc\u{1b}[2J"), "a\\nb\\tc\\u{1b}[2J");
        assert_eq!(escape("E1\u{0}"), "E1\\u{0}");
        assert_eq!(escape("admin\u{202e}nimda"), "admin\\u{202e}nimda");
        assert_eq!(escape("\u{85}"), "\\u{85}");
        for c in ['\u{61c}', '\u{180e}', '\u{e0041}', '\u{3164}', '\u{34f}', '\u{2800}', '\u{2028}'] {
            assert!(is_hidden(c), "{c:?}");
        }
        assert!(!is_hidden('\u{a0}') && !is_hidden('é') && !is_hidden('李'));
        assert!(is_plain_key("E000005") && is_plain_key("emp-7/x@corp"));
        for k in ["E000005\u{a0}", "E 5", "Е000005", "E\u{3164}", ""] {
            assert!(!is_plain_key(k), "{k:?}");
        }
        let long = "x".repeat(10_000);
        let q = quote(&long);
        assert!(q.starts_with(&"x".repeat(QUOTE_LIMIT)) && q.ends_with("… (10000 bytes)"), "{q}");
        assert_eq!(quote("short"), "short");
    }
}
