//! Who a name stands for: the one identity-name matcher.
//!
//! A decider is known by a name (a token's name, the CLI's `--as NAME`, `$TENURE_USER`), and
//! so is everyone a decision records (a reviewer, a requester, whoever submitted a held batch).
//! Every check that compares such a name with an identity or with another recorded name goes
//! through [`names`] and [`same_person`], so `DBA2` and `dba2` are the same person in every
//! self-approval check, reviewer check and approver check alike: an identity's id or username,
//! in compatibility form as usernames are stored ([`tenure_core::text::nfkc`]: a fullwidth
//! `ｗ５００１` is `w5001`) and case-folded as [`tenure_core::text::fold`] folds usernames (which
//! are unique as folded).

use tenure_core::text::{fold, nfkc};

/// A name as names are compared: NFKC, then case-folded.
pub fn key(name: &str) -> String {
    fold(&nfkc(name))
}
use tenure_core::{Identity, Schema};
use tenure_store::Backend;

/// Whether `name` names the identity `id` whose username is `username`: its id or its username,
/// compared as [`key`] makes them.
pub fn names(name: &str, id: &str, username: Option<&str>) -> bool {
    let n = key(name);
    n == key(id) || username.is_some_and(|u| key(u) == n)
}

/// Whether two recorded names are the same name (NFKC, case-folded).
pub fn same_name(a: &str, b: &str) -> bool {
    key(a) == key(b)
}

/// Whether `name` names `identity` (its id or username, NFKC and case-folded).
pub fn names_identity(schema: &Schema, name: &str, identity: &Identity) -> bool {
    names(name, &identity.id, username_of(schema, identity))
}

/// An identity's username, if it has one.
pub fn username_of<'i>(schema: &Schema, identity: &'i Identity) -> Option<&'i str> {
    identity.attr(schema, "username")
}

/// The stored identity `name` stands for: the identity with that id, else the one holding that
/// username (NFKC, case-folded), else none.
pub fn resolve(store: &dyn Backend, schema: &Schema, name: &str) -> crate::Result<Option<Identity>> {
    if let Some(i) = store.identity(schema, name)? {
        return Ok(Some(i));
    }
    let plain = nfkc(name);
    if plain != name
        && let Some(i) = store.identity(schema, &plain)?
    {
        return Ok(Some(i));
    }
    let want = key(name);
    let holders = store.username_holders(std::slice::from_ref(&want))?;
    let Some((id, _)) = holders.into_iter().find(|(_, u)| key(u) == want) else {
        return Ok(None);
    };
    Ok(store.identity(schema, &id)?)
}

/// Whether names `a` and `b` stand for the same person: the same name (NFKC, case-folded), or one of
/// them names the identity the other resolves to.
pub fn same_person(store: &dyn Backend, schema: &Schema, a: &str, b: &str) -> crate::Result<bool> {
    if same_name(a, b) {
        return Ok(true);
    }
    if resolve(store, schema, a)?.is_some_and(|p| names_identity(schema, b, &p)) {
        return Ok(true);
    }
    Ok(resolve(store, schema, b)?.is_some_and(|p| names_identity(schema, a, &p)))
}

/// The person an audit actor stands for, if a person: `token:NAME` and `user:NAME` name one;
/// `source:NAME`, `schedule:NAME`, `policy` and the like are no person.
pub fn person_of_actor(actor: &str) -> Option<&str> {
    actor.strip_prefix("token:").or_else(|| actor.strip_prefix("user:")).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_matches_an_id_or_username_whatever_its_case() {
        for (name, id, username, want) in [
            ("E1", "E1", None, true),
            ("e1", "E1", None, true),
            ("dba2", "E9", Some("DBA2"), true),
            ("DBA2", "E9", Some("dba2"), true),
            ("Ｄba2", "E9", Some("dba2"), true),
            ("ｗ５００１", "W5001", None, true),
            ("ｄｂａ２", "E9", Some("DBA2"), true),
            ("dba", "E9", Some("dba2"), false),
            ("E9", "E9", Some("dba2"), true),
            ("", "E9", None, false),
        ] {
            assert_eq!(names(name, id, username), want, "{name} {id} {username:?}");
        }
        assert_eq!(person_of_actor("token:W5001"), Some("W5001"));
        assert_eq!(person_of_actor("user:ciso"), Some("ciso"));
        assert_eq!(person_of_actor("source:hr"), None);
        assert_eq!(person_of_actor("token:"), None);
    }
}
