//! The secret sink's staging (review finding 6), on a real directory: a staged secret never
//! shares a name with an account's promoted file, and a staged secret left by an attempt whose
//! outcome is unknown is kept, not overwritten or discarded, by the next attempt. The executor's
//! sequence on a timeout followed by an outright refusal is stage, (no answer), stage, discard;
//! it is replayed here step by step on the sink, since no real peer can be made to time out
//! after taking a password.

use std::fs;
use tenure_connect::NewSecret;
use tenure_engine::sink::SinkFile;

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    v.sort();
    v
}

#[test]
fn staging_an_account_never_touches_the_promoted_secret_of_another_account() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sink");
    let dotted = SinkFile::prepare(&root, "warehouse", "x.new").unwrap();
    let live = NewSecret::generate();
    dotted.stage(&live).unwrap();
    dotted.promote().unwrap();

    let plain = SinkFile::prepare(&root, "warehouse", "x").unwrap();
    let refused = NewSecret::generate();
    plain.stage(&refused).unwrap();
    plain.discard();
    assert_eq!(fs::read_to_string(dotted.path()).unwrap().trim(), live.expose(), "`x.new`'s secret is intact");
    assert_eq!(names(&root.join("warehouse")), ["x.new"]);
}

#[test]
fn a_secret_staged_by_an_attempt_whose_outcome_is_unknown_is_kept_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sink");
    let f = SinkFile::prepare(&root, "warehouse", "svc-etl").unwrap();
    // The first attempt stages and times out: the target may have taken this secret.
    let maybe_live = NewSecret::generate();
    f.stage(&maybe_live).unwrap();
    // The retry stages a fresh one, and the target refuses it outright.
    let refused = NewSecret::generate();
    f.stage(&refused).unwrap();
    assert_eq!(fs::read_to_string(f.staged()).unwrap().trim(), refused.expose());
    f.discard();

    let left = names(&root.join("warehouse"));
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(".staged-svc-etl.") && left[0].ends_with('Z'), "{left:?}");
    let kept = root.join("warehouse").join(&left[0]);
    assert_eq!(fs::read_to_string(&kept).unwrap().trim(), maybe_live.expose(), "the maybe-live secret is kept");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);

    // A third attempt that succeeds keeps both earlier files apart from the promoted one.
    let third = NewSecret::generate();
    f.stage(&third).unwrap();
    f.promote().unwrap();
    assert_eq!(fs::read_to_string(f.path()).unwrap().trim(), third.expose());
    assert_eq!(names(&root.join("warehouse")).len(), 2, "the promoted secret and the one kept aside");
}
