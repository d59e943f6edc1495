//! Every source checks a row the same way: a pushed record's `manager_id` and `owner_id` name an
//! identity of its own source, not itself, with no manager cycle; usernames and emails are kept
//! in compatibility form (NFKC), and a look-alike of another identity's is refused with its
//! field and reason.

use crate::{Setup, World, csv, row};
use tenure_core::record::{self, Record, Value};
use tenure_engine::ingest::{PushOptions, push};

fn records(w: &World, specs: &[&str]) -> Vec<Record> {
    let src = w.app.config().source("hr").unwrap();
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let fields = spec.split(',').map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k, Value::Str(v))
            });
            record::from_columns(src, i, fields).unwrap()
        })
        .collect()
}

/// Pushes `specs` to `hr`: each refusal as `record field: reason`, and the identities accepted.
fn pushed(w: &World, specs: &[&str]) -> (Vec<String>, Vec<String>) {
    let opts = PushOptions { actor: "source:hr".into(), label: "webhook test".into(), ..PushOptions::default() };
    let r = push(&w.app, "hr", &records(w, specs), &opts).unwrap();
    let refused =
        r.rejected.iter().map(|x| format!("{} {}: {}", x.line, x.field.as_deref().unwrap_or("-"), x.reason)).collect();
    (refused, r.events.iter().map(|e| e.identity.clone()).collect())
}

const NEW: &str = "dept=Engineering,title=Engineer,employment_status=active";

#[test]
fn issue15_a_pushed_manager_must_be_an_identity_of_the_source_and_not_a_cycle() {
    let w = World::empty(&Setup { second_source: true, ..Setup::default() });
    w.import(&csv(&[row("A1 ada Engineering Lead active")]));
    w.import_from("contractors", &csv(&[row("C1 cora Engineering Lead active")])).unwrap();
    let (refused, accepted) = pushed(
        &w,
        &[
            &format!("employee_id=B1,login=bob,manager=E999,{NEW}"),
            &format!("employee_id=B2,login=bea,manager=B2,{NEW}"),
            &format!("employee_id=B3,login=ben,manager=C1,{NEW}"),
            &format!("employee_id=B4,login=bo,manager=A1,{NEW}"),
            &format!("employee_id=B5,login=bu,owner=E998,{NEW}"),
        ],
    );
    assert_eq!(
        refused,
        [
            "0 manager: unknown manager `E999`: no row has that key",
            "1 manager: `B2` names itself as its manager",
            "2 manager: manager `C1` belongs to source `contractors`; it must be an identity of this source",
            "4 owner: unknown owner `E998`: no row has that key",
        ]
    );
    assert_eq!(accepted, ["B4"], "a manager stored for the source, or in the push, is fine");
    // A1 managed by B4 would make a cycle through what is stored.
    let (refused, accepted) = pushed(&w, &["employee_id=A1,manager=B4"]);
    assert_eq!(refused, ["0 manager: manager cycle through `B4`"]);
    assert!(accepted.is_empty());
    // A manager in the same push counts.
    let (refused, _) =
        pushed(&w, &[&format!("employee_id=B6,login=bi,manager=B7,{NEW}"), &format!("employee_id=B7,login=bj,{NEW}")]);
    assert!(refused.is_empty(), "{refused:?}");
}

#[test]
fn issue15_look_alike_usernames_and_emails_are_refused_from_every_source() {
    let w = World::empty(&Setup::default());
    w.import(&csv(&[row("E1 jsilva1 Engineering Lead active")]));
    // Fullwidth is the same name once normalised: it belongs to E1.
    let (refused, _) = pushed(&w, &[&format!("employee_id=E2,login=ｊｓｉｌｖａ１,{NEW}")]);
    assert_eq!(refused, ["0 login: username `jsilva1` belongs to identity `E1`"]);
    // A Cyrillic а: a look-alike.
    let (refused, _) = pushed(&w, &[&format!("employee_id=E3,login=jsilv\u{430}1,{NEW}")]);
    assert_eq!(
        refused,
        ["0 login: username `jsilv\u{430}1` looks like `jsilva1` of identity `E1` (look-alike characters)"]
    );
    let (refused, _) = pushed(&w, &[&format!("employee_id=E4,login=other,work_email=jsilv\u{430}1@example.com,{NEW}")]);
    assert_eq!(
        refused,
        [
            "0 work_email: email `jsilv\u{430}1@example.com` looks like `jsilva1@example.com` of identity `E1` (look-alike characters)"
        ]
    );
    // A CSV row likewise; and a fullwidth email is kept as plain text.
    let r = w.import(&csv(&[
        row("E1 jsilva1 Engineering Lead active"),
        row("E5 jsilv\u{430}1 Engineering Lead active"),
        "E6,N,L,ｍａｒｙ@example.com,mary,Engineering,Lead,Berlin,CC1,,employee,employee,,2020-01-01,,active".into(),
    ]));
    let reasons: Vec<(u64, Option<String>, String)> =
        r.rejected.iter().map(|x| (x.line, x.field.clone(), x.reason.clone())).collect();
    assert_eq!(
        reasons,
        [(
            3,
            Some("username".to_string()),
            "username `jsilv\u{430}1` looks like `jsilva1` of identity `E1` (look-alike characters)".to_string()
        )]
    );
    let mary = w.store().identity(&w.app.config().schema, "E6").unwrap().unwrap();
    assert_eq!(mary.attr(&w.app.config().schema, "email"), Some("mary@example.com"));
    // Names that are plain ASCII are compared as they are: `jsilval` is someone else.
    let (refused, _) = pushed(&w, &[&format!("employee_id=E7,login=jsilval,{NEW}")]);
    assert!(refused.is_empty(), "{refused:?}");
}
