//! `ldap_dn`: the LDAP connector's DN and filter escaping, and its DN parser.

use ldap3::asn1::{ASNTag as _, PL};
use tenure_connect::ldap::dn;

const PEOPLE: &str = "ou=people,dc=example,dc=com";

/// For `data` as a name: escaped into a DN (`uid=NAME,ou=people,...`) it parses back to one RDN
/// holding exactly the name under the right parent, as `ldap3`'s escaping does; escaped into a
/// filter (`(member=NAME)`) `ldap3`'s filter parser reads one equality match with exactly the
/// name as its value. For `data` as a DN read from a server: parsing never panics, the bulk
/// read's fast path (`split_leaf`) agrees with the full parser (`leaf_under`), and the canonical
/// form is canonical (the same again).
pub fn ldap_dn(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = dn::parse(&String::from_utf8_lossy(data));
        return;
    };
    escaped_dn_parses_back(text);
    escaped_filter_parses_back(text);
    read_dn(text);
}

fn escaped_dn_parses_back(name: &str) {
    for escaped in [dn::dn_value(name), ldap3::dn_escape(name).into_owned()] {
        let full = format!("uid={escaped},{PEOPLE}");
        let Some(parsed) = dn::parse(&full) else {
            panic!("`{full}` does not parse");
        };
        assert_eq!(parsed.len(), 4, "`{full}` has {} RDNs", parsed.len());
        let leaf = parsed.first().map(Vec::as_slice);
        let want = [dn::Ava { attr: "uid".into(), value: name.to_string() }];
        assert_eq!(leaf, Some(&want[..]), "`{full}` does not hold `{name}`");
        assert_eq!(dn::leaf_under(&full, "uid", PEOPLE).as_deref(), Some(name), "`{full}` is not under people");
    }
}

fn escaped_filter_parses_back(name: &str) {
    let ours = dn::filter_value(name);
    assert_eq!(ours, ldap3::ldap_escape(name), "filter escaping differs from ldap3's");
    let filter = format!("(member={ours})");
    let Ok(tag) = ldap3::parse_filter(&filter) else {
        panic!("`{filter}` does not parse");
    };
    // An equality match is [3] { attribute, value }: the value must be exactly the name.
    let st = tag.into_structure();
    assert_eq!(st.id, 3, "`{filter}` is not an equality match");
    let PL::C(parts) = st.payload else {
        panic!("`{filter}` is not a constructed tag");
    };
    let value = match parts.get(1).map(|p| &p.payload) {
        Some(PL::P(v)) => v.clone(),
        _ => panic!("`{filter}` has no primitive value"),
    };
    assert_eq!(value, name.as_bytes(), "`{filter}` does not hold `{name}`");
}

fn read_dn(text: &str) {
    let people = dn::canonical_str(PEOPLE).unwrap_or_default();
    let keys = [people.as_str()];
    let mut parents = dn::Parents::new(&keys);
    let slow = dn::leaf_under(text, "uid", &people);
    let fast = dn::split_leaf(text, "uid").filter(|(_, p)| parents.which(p) == Some(0)).map(|(v, _)| v.into_owned());
    assert_eq!(fast, slow, "the fast path reads `{text}` differently");
    if let Some(canonical) = dn::canonical_str(text) {
        assert_eq!(
            dn::canonical_str(&canonical).as_deref(),
            Some(canonical.as_str()),
            "`{text}`: canonical form not stable"
        );
    }
}
