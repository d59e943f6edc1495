//! Conformance cases for the API's paged reads ([`crate::Browse`]).

use super::{Failure, Outcome, Subject, World, batch, event, person};
use crate::IdentityQuery;
use tenure_core::{EventKind, Kind, Status};

/// Pages walk the ids from the cursor; every filter narrows; text matches the id or any value
/// case-insensitively and literally (a `%` is a percent sign).
pub fn identity_pages_filter_and_continue_from_the_cursor(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let dept = w.schema.slot("department");
    let mk = |id: &str, status: Status, kind: Kind, department: &str| {
        let mut p = person(&w.schema, id, status);
        p.kind = kind;
        if let Some(slot) = dept {
            p.attrs.set(slot, Some(department));
        }
        event(EventKind::Joiner, p, vec![])
    };
    let events = vec![
        mk("E1", Status::Active, Kind::Employee, "Sales"),
        mk("E2", Status::Terminated, Kind::Employee, "Sales"),
        mk("E3", Status::Active, Kind::Contractor, "R&D 100%"),
        mk("E4", Status::Active, Kind::Employee, "Sales"),
        mk("S1", Status::Active, Kind::Service, "IT"),
    ];
    w.commit(&batch("hr", events, None))?;
    let ids = |q: IdentityQuery| -> std::result::Result<Vec<String>, Failure> {
        Ok(w.store.identity_page(&w.schema, &q)?.into_iter().map(|i| i.id.to_string()).collect())
    };
    let all = |limit| IdentityQuery { limit, ..IdentityQuery::default() };
    ensure_eq!(ids(all(10))?, ["E1", "E2", "E3", "E4", "S1"], "every identity in id order");
    ensure_eq!(ids(all(2))?, ["E1", "E2"], "a page");
    ensure_eq!(ids(IdentityQuery { after: Some("E2".into()), ..all(2) })?, ["E3", "E4"], "the next page");
    ensure_eq!(ids(IdentityQuery { after: Some("S1".into()), ..all(2) })?, Vec::<String>::new(), "past the end");
    ensure_eq!(ids(IdentityQuery { status: Some(Status::Active), ..all(10) })?, ["E1", "E3", "E4", "S1"], "status");
    ensure_eq!(ids(IdentityQuery { kind: Some(Kind::Service), ..all(10) })?, ["S1"], "kind");
    ensure_eq!(
        ids(IdentityQuery {
            department: Some("Sales".into()),
            status: Some(Status::Active),
            after: Some("E1".into()),
            ..all(10)
        })?,
        ["E4"],
        "filters together, from the cursor"
    );
    ensure_eq!(ids(IdentityQuery { text: Some("e3".into()), ..all(10) })?, ["E3"], "text in the id");
    ensure_eq!(ids(IdentityQuery { text: Some("R&D 1".into()), ..all(10) })?, ["E3"], "text in a value");
    ensure_eq!(ids(IdentityQuery { text: Some("0%".into()), ..all(10) })?, ["E3"], "a percent sign is literal");
    ensure_eq!(ids(IdentityQuery { text: Some("%".into()), ..all(10) })?, ["E3"], "only where it is written");
    ensure_eq!(
        ids(IdentityQuery { text: Some("department".into()), ..all(10) })?,
        Vec::<String>::new(),
        "names are not values"
    );
    ensure!(w.store.applied_schema_version()? == crate::schema_version(), "the schema is current");
    Ok(())
}
