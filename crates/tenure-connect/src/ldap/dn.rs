//! DN and filter text: escaping what we send (RFC 4514, RFC 4515) and parsing what we read.
//!
//! Every account and group name reaches the directory inside a DN (`uid=NAME,ou=people,..`) and
//! DNs in turn reach search filters (`(member=DN)`), so a name like `a,b` or `x)(uid=*` must
//! never change the structure of either. The rules:
//! - [`dn_value`] escapes an RDN attribute value per RFC 4514 §2.4: `"` `+` `,` `;` `<` `=` `>`
//!   `\` and NUL anywhere, a leading space or `#`, a trailing space. It uses the `\XX` hex form
//!   for all of them, as OpenLDAP's own "pretty" DNs do. Other characters, non-ASCII included,
//!   pass through as UTF-8, which RFC 4514 allows.
//! - [`filter_value`] escapes an assertion value per RFC 4515 §3: `*` `(` `)` `\` and NUL as
//!   `\XX`. A DN placed in a filter is escaped twice, first as a DN then as a filter value,
//!   so `\2C` inside the DN becomes `\5c2C` in the filter.
//!
//! `ldap3` ships `dn_escape` and `ldap_escape` with the same rules (checked against its 0.12
//! source, and cross-checked in the tests below). We keep our own small functions so the rules
//! are visible and tested here, and because we also need the inverse, which `ldap3` lacks:
//! [`parse`] turns a DN the server returns (in whatever escaping it chose: `\,`, `\2C`,
//! `\2c`, raw UTF-8 or hex-escaped UTF-8 bytes) back into values, and [`fold`] compares values the
//! way the directory does for `uid`, `cn`, `ou` and `dc` (`caseIgnoreMatch` with insignificant
//! space handling), so `uid=Alice,OU=People` in a `member` value is recognised as the account
//! `alice`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write;

/// Escapes `value` for use as an attribute value in an RDN (RFC 4514).
pub fn dn_value(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len() + 8);
    for (i, c) in value.char_indices() {
        let escape = match c {
            '"' | '+' | ',' | ';' | '<' | '=' | '>' | '\\' | '\0' => true,
            ' ' => i == 0 || i + 1 == bytes.len(),
            '#' => i == 0,
            _ => false,
        };
        if escape {
            // All escaped characters are ASCII, so one `\XX` each.
            let _ = write!(out, "\\{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Escapes `value` for use as an assertion value in a search filter (RFC 4515).
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => {
                let _ = write!(out, "\\{:02x}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out
}

/// One attribute-value assertion of an RDN, with the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    pub attr: String,
    pub value: String,
}

/// A parsed DN: RDNs from the leaf up, each with one or more AVAs.
pub type Dn = Vec<Vec<Ava>>;

/// Parses a DN in RFC 4514 string form. Returns `None` for text that is not a DN we can read
/// (unbalanced escapes, non-UTF-8 values, old quoted forms). A `#hex` (BER) value is kept as its
/// text, undecoded: it never names an account Tenure made.
pub fn parse(dn: &str) -> Option<Dn> {
    let b = dn.as_bytes();
    let mut rdns: Dn = Vec::new();
    if dn.trim().is_empty() {
        return Some(rdns);
    }
    let mut rdn: Vec<Ava> = Vec::new();
    let mut i = 0;
    loop {
        // Attribute type, up to '='.
        let eq = i + b.get(i..)?.iter().position(|&c| c == b'=')?;
        let attr = std::str::from_utf8(b.get(i..eq)?).ok()?.trim();
        if attr.is_empty() || attr.contains([',', '+', ';']) {
            return None;
        }
        i = eq + 1;
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        // Value, up to an unescaped ',', ';' or '+' or the end.
        let mut value: Vec<u8> = Vec::new();
        // Length of `value` up to its last escaped or non-space byte: unescaped trailing
        // spaces are not part of the value.
        let mut keep = 0;
        let mut end = None;
        while let Some(&c) = b.get(i) {
            match c {
                b'\\' => {
                    let n = *b.get(i + 1)?;
                    if is_hex(n) {
                        let lo = *b.get(i + 2)?;
                        if !is_hex(lo) {
                            return None;
                        }
                        value.push(hex(n) << 4 | hex(lo));
                        i += 3;
                    } else if b" \"#+,;<=>\\".contains(&n) {
                        value.push(n);
                        i += 2;
                    } else {
                        return None;
                    }
                    keep = value.len();
                }
                b',' | b';' | b'+' => {
                    end = Some(c);
                    i += 1;
                    break;
                }
                b'"' => return None,
                _ => {
                    value.push(c);
                    i += 1;
                    if c != b' ' {
                        keep = value.len();
                    }
                }
            }
        }
        value.truncate(keep);
        let value = String::from_utf8(value).ok()?;
        rdn.push(Ava { attr: attr.to_string(), value });
        match end {
            Some(b'+') => {}
            Some(_) => rdns.push(std::mem::take(&mut rdn)),
            None => {
                rdns.push(rdn);
                return Some(rdns);
            }
        }
    }
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// A value folded the way `caseIgnoreMatch` compares it: case-insensitive, with leading and
/// trailing spaces dropped and inner runs of spaces collapsed to one.
pub fn fold(value: &str) -> String {
    let lower = if value.is_ascii() { value.to_ascii_lowercase() } else { value.to_lowercase() };
    if !lower.starts_with(' ') && !lower.ends_with(' ') && !lower.contains("  ") {
        return lower;
    }
    lower.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A canonical text for comparing DNs: attribute types lowercased, values folded and
/// re-escaped, the AVAs of a multi-valued RDN sorted.
pub fn canonical(dn: &[Vec<Ava>]) -> String {
    let mut out = String::new();
    for (n, rdn) in dn.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let mut avas: Vec<String> =
            rdn.iter().map(|a| format!("{}={}", a.attr.to_ascii_lowercase(), dn_value(&fold(&a.value)))).collect();
        avas.sort();
        out.push_str(&avas.join("+"));
    }
    out
}

/// The canonical text of a DN string, or `None` if it does not parse.
pub fn canonical_str(dn: &str) -> Option<String> {
    parse(dn).map(|d| canonical(&d))
}

/// If `dn` is `ATTR=value,PARENT` with a single-AVA leaf RDN of type `attr` (compared
/// case-insensitively) and a parent whose canonical text is `parent`, returns the leaf value.
pub fn leaf_under(dn: &str, attr: &str, parent: &str) -> Option<String> {
    let mut parsed = parse(dn)?;
    if parsed.is_empty() {
        return None;
    }
    let leaf = parsed.remove(0);
    let [ava] = <[Ava; 1]>::try_from(leaf).ok()?;
    if !ava.attr.eq_ignore_ascii_case(attr) || canonical(&parsed) != parent {
        return None;
    }
    Some(ava.value)
}

/// The value of `dn`'s leaf RDN when it is a single AVA of type `attr` (case-insensitive),
/// wherever the entry is.
pub fn leaf_value(dn: &str, attr: &str) -> Option<String> {
    let leaf = parse(dn)?.into_iter().next()?;
    let [ava] = <[Ava; 1]>::try_from(leaf).ok()?;
    ava.attr.eq_ignore_ascii_case(attr).then_some(ava.value)
}

/// The deepest DN above every one of `keys` (canonical texts, see [`canonical`]), itself
/// canonical; empty (the root) when they share nothing.
pub fn common_suffix(keys: &[&str]) -> String {
    // Canonical values are escaped, so an unescaped `,` always separates RDNs.
    let split = |k: &str| -> Vec<String> { k.split(',').rev().map(str::to_string).collect() };
    let mut parts: Option<Vec<String>> = None;
    for k in keys {
        let rdns = split(k);
        parts = Some(match parts {
            None => rdns,
            Some(p) => p.into_iter().zip(rdns).take_while(|(a, b)| a == b).map(|(a, _)| a).collect(),
        });
    }
    let mut p = parts.unwrap_or_default();
    p.reverse();
    p.join(",")
}

/// The bulk-read fast path of [`leaf_under`]: splits `dn` into the unescaped value of its leaf
/// RDN, which must be a single AVA of type `attr`, and the parent DN's text (to be matched by the
/// caller, typically through a [`Parents`] cache). Most DNs hold no escapes, and then nothing is
/// parsed beyond finding the first separator; the rest go through [`parse`].
pub fn split_leaf<'a>(dn: &'a str, attr: &str) -> Option<(Cow<'a, str>, &'a str)> {
    let (ty, rest) = dn.split_once('=')?;
    if !ty.trim().eq_ignore_ascii_case(attr) {
        return None;
    }
    let end = rest.find([',', ';', '+', '\\', '"'])?;
    let (value, tail) = rest.split_at(end);
    if tail.starts_with([',', ';']) && !value.starts_with([' ', '#']) && !value.ends_with(' ') {
        return Some((Cow::Borrowed(value), tail.get(1..)?));
    }
    // Escapes, a multi-valued RDN or edge spaces: parse the DN properly and rebuild the parent.
    let mut parsed = parse(dn)?;
    if parsed.is_empty() {
        return None;
    }
    let leaf = parsed.remove(0);
    let [ava] = <[Ava; 1]>::try_from(leaf).ok()?;
    let parent_at = dn.len().checked_sub(parent_len(dn, &parsed)?)?;
    Some((Cow::Owned(ava.value), dn.get(parent_at..)?))
}

/// The length of the text of the last `parent.len()` RDNs of `dn`: everything after the first
/// unescaped separator.
fn parent_len(dn: &str, parent: &[Vec<Ava>]) -> Option<usize> {
    if parent.is_empty() {
        return None;
    }
    let b = dn.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b',' | b';' => return Some(b.len() - i - 1),
            _ => i += 1,
        }
    }
    None
}

/// Recognises parent DN texts, caching each spelling seen: a bulk read meets a handful of
/// spellings of the same few containers hundreds of thousands of times.
#[derive(Debug)]
pub struct Parents<'k> {
    /// Canonical texts (see [`canonical`]) of the containers to recognise.
    keys: &'k [&'k str],
    seen: HashMap<String, Option<usize>>,
}

impl<'k> Parents<'k> {
    /// Spellings cached at most; odd data beyond this is still matched, just not cached.
    const CAP: usize = 4096;

    pub fn new(keys: &'k [&'k str]) -> Self {
        Self { keys, seen: HashMap::new() }
    }

    /// The index in `keys` of the container `parent` names, if any.
    pub fn which(&mut self, parent: &str) -> Option<usize> {
        if let Some(&hit) = self.seen.get(parent) {
            return hit;
        }
        let canon = canonical_str(parent);
        let hit = canon.and_then(|c| self.keys.iter().position(|k| *k == c));
        if self.seen.len() < Self::CAP {
            self.seen.insert(parent.to_string(), hit);
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that break naive DN or filter building, each for a different reason.
    const HOSTILE: &[&str] = &[
        "O'Brien, Seán",
        "Zoë+Ünal",
        "#hash",
        " lead",
        "trail ",
        " ",
        "李小龍",
        "a=b;c<d>e\\f\"g",
        "x)(uid=*",
        "*",
        "nul\0byte",
        "a,ou=people,dc=example,dc=com",
        "\\2C",
        "tab\there",
        "mid#hash",
        "  two  spaces  ",
    ];

    fn check_dn(value: &str, expect: &str) {
        assert_eq!(dn_value(value), expect, "dn_value({value:?})");
    }

    #[test]
    fn dn_value_escapes_rfc4514_specials() {
        check_dn("plain", "plain");
        check_dn("O'Brien, Seán", "O'Brien\\2C Seán");
        check_dn("Zoë+Ünal", "Zoë\\2BÜnal");
        check_dn("#hash", "\\23hash");
        check_dn("mid#hash", "mid#hash");
        check_dn(" lead", "\\20lead");
        check_dn("trail ", "trail\\20");
        check_dn(" ", "\\20");
        check_dn("  ", "\\20\\20");
        check_dn("in side", "in side");
        check_dn("李小龍", "李小龍");
        check_dn("a=b;c<d>e\\f\"g", "a\\3Db\\3Bc\\3Cd\\3Ee\\5Cf\\22g");
        check_dn("nul\0", "nul\\00");
        check_dn("", "");
    }

    #[test]
    fn filter_value_escapes_rfc4515_specials() {
        assert_eq!(filter_value("x)(uid=*"), "x\\29\\28uid=\\2a");
        assert_eq!(filter_value("a\\b"), "a\\5cb");
        assert_eq!(filter_value("nul\0"), "nul\\00");
        assert_eq!(filter_value("Seán,+=<>;\"#"), "Seán,+=<>;\"#");
        // A DN escaped for a filter: the DN's own escapes are escaped again.
        assert_eq!(filter_value(&format!("uid={},ou=p", dn_value("a,b*"))), "uid=a\\5c2Cb\\2a,ou=p");
    }

    #[test]
    fn escaping_agrees_with_ldap3() {
        for v in HOSTILE {
            // ldap3 uses lowercase hex; compare case-insensitively on the escapes only.
            assert_eq!(dn_value(v).to_lowercase(), ldap3::dn_escape(*v).to_lowercase(), "{v:?}");
            assert_eq!(filter_value(v), ldap3::ldap_escape(*v), "{v:?}");
        }
    }

    #[test]
    fn dn_value_round_trips_through_parse() {
        for v in HOSTILE {
            let dn = format!("uid={},ou=people,dc=example,dc=com", dn_value(v));
            let parsed = parse(&dn).unwrap_or_else(|| panic!("{dn:?} does not parse"));
            assert_eq!(parsed.len(), 4, "{dn:?} has the wrong number of RDNs");
            assert_eq!(parsed[0], vec![Ava { attr: "uid".into(), value: (*v).to_string() }], "{dn:?}");
            assert_eq!(leaf_under(&dn, "uid", "ou=people,dc=example,dc=com").as_deref(), Some(*v));
        }
    }

    #[test]
    fn filter_value_round_trips_through_ldap3_filter_parser() {
        use ldap3::asn1::{ASNTag, PL};
        for v in HOSTILE {
            let filter = format!("(member={})", filter_value(v));
            let tag = ldap3::parse_filter(&filter).unwrap_or_else(|()| panic!("{filter:?} does not parse"));
            // An equality match is [3] { attr, value }: the value must be exactly our input.
            let st = tag.into_structure();
            assert_eq!(st.id, 3, "{filter:?} is not an equality match");
            let PL::C(parts) = st.payload else { panic!("not constructed") };
            let PL::P(value) = &parts[1].payload else { panic!("not primitive") };
            assert_eq!(value.as_slice(), v.as_bytes(), "{filter:?}");
        }
    }

    #[test]
    fn parse_reads_the_forms_servers_return() {
        let people = "ou=people,dc=example,dc=com";
        let check = |dn: &str, expect: Option<&str>| {
            assert_eq!(leaf_under(dn, "uid", people).as_deref(), expect, "{dn:?}");
        };
        // OpenLDAP's pretty form: uppercase hex, types lowercased, case of values kept.
        check("uid=O'Brien\\2C Se\\C3\\A1n,ou=people,dc=example,dc=com", Some("O'Brien, Seán"));
        check("uid=O'Brien\\, Seán,ou=people,dc=example,dc=com", Some("O'Brien, Seán"));
        check("UID=a\\2bb ,  OU=People, DC=Example,dc=COM", Some("a+b"));
        check("uid=\\20lead,ou=people,dc=example,dc=com", Some(" lead"));
        check("uid=trail\\ ,ou=people,dc=example,dc=com", Some("trail "));
        check("uid=x;ou=people;dc=example;dc=com", Some("x"));
        // Not under people, not a uid leaf, or not a DN at all.
        check("uid=x,ou=disabled,dc=example,dc=com", None);
        check("cn=x,ou=people,dc=example,dc=com", None);
        check("uid=x+cn=y,ou=people,dc=example,dc=com", None);
        check("ou=people,dc=example,dc=com", None);
        check("uid=x,ou=people,dc=example,dc=com,dc=evil", None);
        check("uid=bad\\zz,ou=people,dc=example,dc=com", None);
        check("uid=bad\\FF,ou=people,dc=example,dc=com", None);
        check("uid=trailing\\", None);
        check("", None);
        check("no equals sign", None);
    }

    #[test]
    fn split_leaf_agrees_with_the_full_parser() {
        let people = canonical_str("ou=people,dc=example,dc=com").unwrap();
        let keys = [people.as_str()];
        let mut parents = Parents::new(&keys);
        let mut dns: Vec<String> =
            HOSTILE.iter().map(|v| format!("uid={},ou=people,dc=example,dc=com", dn_value(v))).collect();
        dns.extend(
            [
                "uid=plain,ou=people,dc=example,dc=com",
                "UID=Plain , OU=People,DC=example,dc=com",
                "uid=O'Brien\\, Seán,ou=people,dc=example,dc=com",
                "uid=x;ou=people;dc=example;dc=com",
                "uid=x,ou=disabled,dc=example,dc=com",
                "uid=x+cn=y,ou=people,dc=example,dc=com",
                "cn=x,ou=people,dc=example,dc=com",
                "uid=x",
                "uid=bad\\zz,ou=people,dc=example,dc=com",
                "ou=people,dc=example,dc=com",
            ]
            .map(String::from),
        );
        for dn in &dns {
            let slow = leaf_under(dn, "uid", &people);
            let fast = split_leaf(dn, "uid").filter(|(_, p)| parents.which(p) == Some(0)).map(|(v, _)| v.into_owned());
            assert_eq!(fast, slow, "{dn:?}");
            // A second time through the cache gives the same answer.
            let again = split_leaf(dn, "uid").filter(|(_, p)| parents.which(p) == Some(0)).map(|(v, _)| v.into_owned());
            assert_eq!(again, slow, "{dn:?}");
        }
    }

    #[test]
    fn fold_matches_case_ignore_with_insignificant_spaces() {
        assert_eq!(fold("  Alice   Smith "), "alice smith");
        assert_eq!(fold("ZOË"), "zoë");
        assert_eq!(fold(" lead"), fold("LEAD"));
        assert_ne!(fold("a,b"), fold("a b"));
    }

    #[test]
    fn canonical_ignores_case_spacing_and_ava_order() {
        let a = canonical_str("uid=A\\2Bb,OU=People , dc=example,dc=com").unwrap();
        let b = canonical_str("uid=a\\+b,ou=people,dc=example,dc=com").unwrap();
        assert_eq!(a, b);
        let c = canonical_str("cn=x+uid=y,dc=com").unwrap();
        let d = canonical_str("UID=y+CN=x,dc=com").unwrap();
        assert_eq!(c, d);
        assert_ne!(canonical_str("uid=a\\,b,dc=com"), canonical_str("uid=a,b=,dc=com"));
    }
}
