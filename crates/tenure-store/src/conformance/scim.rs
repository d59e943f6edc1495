//! The SCIM resource cases ([`crate::ScimStore`]): per source, versioned, unique, and
//! committed together with the lifecycle batch a write makes.

use super::*;
use crate::scim::*;

fn body(user_name: &str, key: &str) -> ScimBody {
    ScimBody {
        body: format!("{{\"userName\":\"{user_name}\"}}"),
        user_name: Some(user_name.to_lowercase()),
        external_id: Some(key.to_string()),
        identity_key: Some(key.to_string()),
    }
}

fn write(source: &str, id: &str, change: ScimChange) -> ScimWrite {
    ScimWrite {
        source: source.into(),
        kind: ScimKind::User,
        id: id.into(),
        change,
        audit: vec![
            AuditEntry::new(&format!("source:{source}"), "scim.user", "written").reason(format!("User `{id}`")),
        ],
    }
}

impl World {
    fn scim(&self, w: &ScimWrite) -> Result<ScimOutcome> {
        self.store.scim_write(&self.schema, w, None)
    }

    /// The resource after a write that must have succeeded.
    fn scim_ok(&self, w: &ScimWrite) -> std::result::Result<Option<ScimResource>, Failure> {
        match self.scim(w)? {
            ScimOutcome::Written { resource, .. } => Ok(resource.map(|r| *r)),
            other => Err(Failure(format!("{} of `{}`: expected a write, got {other:?}", w.kind.as_str(), w.id))),
        }
    }
}

fn ids(list: &[ScimResource]) -> Vec<&str> {
    list.iter().map(|r| r.id.as_str()).collect()
}

pub fn scim_resources_are_per_source_versioned_and_unique(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let created = w.scim_ok(&write("idp", "u2", ScimChange::Create(body("BJensen", "E1"))))?;
    let created = created.ok_or_else(|| Failure("a create returns the resource".into()))?;
    ensure_eq!((created.version, created.created_at.clone()), (1, w.now()), "a new resource");
    ensure_eq!(created.modified_at, w.now(), "modified when created");
    ensure_eq!(w.store.scim_get("idp", ScimKind::User, "u2")?, Some(created.clone()), "read back as written");
    ensure!(w.store.scim_get("idp", ScimKind::Group, "u2")?.is_none(), "ids are per type");
    // Another source sees nothing of it, and may hold the same values.
    ensure!(w.store.scim_get("other", ScimKind::User, "u2")?.is_none(), "another source reads nothing");
    ensure!(w.store.scim_list("other", ScimKind::User, None)?.is_empty(), "another source lists nothing");
    w.scim_ok(&write("other", "u2", ScimChange::Create(body("bjensen", "E1"))))?;
    // Within a source, the folded userName and the identity key are unique; ids are never reused.
    let before = w.audit_records()?.len();
    ensure_eq!(
        w.scim(&write("idp", "u3", ScimChange::Create(body("bjensen", "E9"))))?,
        ScimOutcome::Taken(ScimTaken::UserName),
        "a taken userName"
    );
    ensure_eq!(
        w.scim(&write("idp", "u3", ScimChange::Create(body("alice", "E1"))))?,
        ScimOutcome::Taken(ScimTaken::IdentityKey),
        "a taken identity key"
    );
    ensure_eq!(
        w.scim(&write("idp", "u2", ScimChange::Create(body("carol", "E3"))))?,
        ScimOutcome::IdTaken,
        "a taken id"
    );
    ensure_eq!(w.audit_records()?.len(), before, "a refused write appends no audit record");
    w.scim_ok(&write("idp", "u1", ScimChange::Create(body("alice", "E2"))))?;
    ensure_eq!(ids(&w.store.scim_list("idp", ScimKind::User, None)?), ["u1", "u2"], "listed in id order");
    for (lookup, want) in [
        (ScimLookup::UserName("bjensen"), vec!["u2"]),
        (ScimLookup::UserName("BJensen"), vec![]),
        (ScimLookup::ExternalId("E2"), vec!["u1"]),
        (ScimLookup::IdentityKey("E1"), vec!["u2"]),
        (ScimLookup::IdentityKey("E7"), vec![]),
    ] {
        ensure_eq!(ids(&w.store.scim_list("idp", ScimKind::User, Some(lookup))?), want, "{lookup:?}");
    }

    // Replace and delete compare and swap on the version.
    w.clock.advance(seconds(5));
    let stale = ScimChange::Replace { expected: 7, body: body("bjensen", "E1") };
    ensure_eq!(w.scim(&write("idp", "u2", stale))?, ScimOutcome::VersionMismatch, "a stale replace");
    let taken = ScimChange::Replace { expected: 1, body: body("Alice", "E1") };
    ensure_eq!(
        w.scim(&write("idp", "u2", taken))?,
        ScimOutcome::Taken(ScimTaken::UserName),
        "a replace to a taken name"
    );
    let mut renamed = body("barbara", "E1");
    renamed.external_id = None;
    let new = w.scim_ok(&write("idp", "u2", ScimChange::Replace { expected: 1, body: renamed.clone() }))?;
    let new = new.ok_or_else(|| Failure("a replace returns the resource".into()))?;
    ensure_eq!(
        (new.version, new.created_at.clone(), new.modified_at.clone(), new.body.clone(), new.external_id.clone()),
        (2, created.created_at.clone(), w.now(), renamed.body.clone(), None),
        "a replace bumps the version and keeps the creation time"
    );
    ensure!(
        w.store.scim_list("idp", ScimKind::User, Some(ScimLookup::UserName("bjensen")))?.is_empty(),
        "old name freed"
    );
    w.scim_ok(&write("idp", "u3", ScimChange::Create(body("bjensen", "E3"))))?;
    ensure_eq!(
        w.scim(&write("idp", "u2", ScimChange::Delete { expected: 1 }))?,
        ScimOutcome::VersionMismatch,
        "a stale delete"
    );
    ensure_eq!(w.scim_ok(&write("idp", "u2", ScimChange::Delete { expected: 2 }))?, None, "a delete");
    ensure!(w.store.scim_get("idp", ScimKind::User, "u2")?.is_none(), "deleted");
    ensure!(w.store.scim_get("other", ScimKind::User, "u2")?.is_some(), "the other source's resource stays");
    ensure_eq!(
        w.scim(&write("idp", "u2", ScimChange::Replace { expected: 2, body: body("x", "E5") }))?,
        ScimOutcome::NotFound,
        "a replace of a deleted resource"
    );
    ensure_eq!(w.scim(&write("idp", "u9", ScimChange::Delete { expected: 1 }))?, ScimOutcome::NotFound, "no such id");
    let scim_records = w.actions()?.iter().filter(|a| *a == "scim.user").count();
    ensure_eq!(scim_records, 6, "each write that happened is audited once");
    w.chain_verifies()
}

pub fn a_scim_write_and_its_batch_commit_together(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let joiner = joiners(&w, "idp", &["E1"])?;
    let written =
        w.store.scim_write(&w.schema, &write("idp", "u1", ScimChange::Create(body("ada", "E1"))), Some(&joiner))?;
    let ScimOutcome::Written { resource: Some(_), batch: Some(batch) } = written else {
        return Err(Failure(format!("a write with its batch: {written:?}")));
    };
    ensure_eq!((batch.events, batch.operations), (1, 2), "the batch committed");
    ensure!(w.store.identity(&w.schema, "E1")?.is_some(), "the identity written");
    ensure_eq!(w.actions()?, ["scim.user", "import", "event.joiner", "plan"], "the write's audit, then the batch's");

    // A refused write commits nothing of its batch.
    let second = joiners(&w, "idp", &["E2"])?;
    let refused =
        w.store.scim_write(&w.schema, &write("idp", "u2", ScimChange::Create(body("ADA", "E2"))), Some(&second))?;
    ensure_eq!(refused, ScimOutcome::Taken(ScimTaken::UserName), "a taken userName");
    ensure!(w.store.identity(&w.schema, "E2")?.is_none(), "the refused write's batch did not commit");
    // A batch that fails its own precondition fails the write: neither commits.
    let mut stale = joiners(&w, "idp", &["E2"])?;
    stale.base_import = None;
    expect_code(
        w.store.scim_write(&w.schema, &write("idp", "u2", ScimChange::Create(body("bob", "E2"))), Some(&stale)),
        Code::Conflict,
        "a stale batch",
    )?;
    ensure!(w.store.scim_get("idp", ScimKind::User, "u2")?.is_none(), "the resource of a failed batch is not written");
    ensure!(w.store.identity(&w.schema, "E2")?.is_none(), "nor its identity");
    // A batch of another source never rides on a source's write.
    let foreign = joiners(&w, "hr", &["E3"])?;
    expect_code(
        w.store.scim_write(&w.schema, &write("idp", "u3", ScimChange::Create(body("cy", "E3"))), Some(&foreign)),
        Code::Conflict,
        "another source's batch",
    )?;
    ensure!(w.store.scim_get("idp", ScimKind::User, "u3")?.is_none(), "nothing written");
    ensure_eq!(w.actions()?.len(), 4, "no audit record of the failed writes");
    w.chain_verifies()
}
