//! scim2-tester (`scim2 --url URL test`) against the router on a real socket.
//!
//! The tool comes from PyPI (`scim2-cli`), installed into the test kit's shared venv on first
//! use; a missing tool that cannot be installed fails the test, it never skips. `scim2 test`
//! exits non-zero when any check is anything but SUCCESS (a SKIPPED check fails it too).
//!
//! The router is nested at `/scim/v2` behind a bearer-token check, the way the server mounts
//! it, and the suite is run as the acceptance runs it: `scim2 --url URL --header
//! "Authorization: Bearer TOKEN" test`.

use crate::reference_backend::ReferenceBackendForProtocolTests;
use axum::response::IntoResponse;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_passes_every_check() {
    let bin = tokio::task::spawn_blocking(|| tenure_testkit::peers::ensure_venv(&["scim2-cli"], "scim2"))
        .await
        .unwrap()
        .expect("installing scim2-cli");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let token = format!("test-{}", std::process::id());
    let expected = format!("Bearer {token}");
    let app =
        axum::Router::new().nest(
            "/scim/v2",
            tenure_scim::router(ReferenceBackendForProtocolTests::default()).layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let ok = req.headers().get("authorization").is_some_and(|v| v.as_bytes() == expected.as_bytes());
                    async move {
                        if ok { next.run(req).await } else { axum::http::StatusCode::UNAUTHORIZED.into_response() }
                    }
                },
            )),
        );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let run = tokio::process::Command::new(bin.join("scim2"))
        .args(["--url", &format!("http://127.0.0.1:{port}/scim/v2")])
        .args(["--header", &format!("Authorization: Bearer {token}"), "test"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run).await.expect("scim2 test timed out").unwrap();
    // The token check is real: without it, the same server refuses.
    let anonymous = tokio::process::Command::new(bin.join("scim2"))
        .args(["--url", &format!("http://127.0.0.1:{port}/scim/v2"), "test"])
        .kill_on_drop(true)
        .output();
    let anonymous =
        tokio::time::timeout(Duration::from_secs(120), anonymous).await.expect("scim2 test timed out").unwrap();
    server.abort();
    assert!(!anonymous.status.success(), "scim2 test passed without a token");

    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdicts: Vec<&str> = stdout.lines().filter(|l| !l.starts_with(' ') && !l.starts_with("Performing")).collect();
    let failed: Vec<&&str> = verdicts.iter().filter(|l| !l.starts_with("SUCCESS ")).collect();
    // Shown with `--nocapture`: the counts for the record.
    eprintln!("{stdout}\nscim2 test: {} checks, {} not SUCCESS", verdicts.len(), failed.len());
    assert!(
        out.status.success() && failed.is_empty(),
        "scim2 test exited with {}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The suite reached the resources, not only discovery: every CRUD and PATCH family ran.
    for check in [
        "object_creation",
        "object_query",
        "object_query_without_id",
        "object_query_with_attributes",
        "object_list_with_attributes",
        "search_with_attributes",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_remove_attribute",
        "check_replace_attribute",
    ] {
        assert!(verdicts.iter().any(|l| *l == format!("SUCCESS {check}")), "no `{check}` check ran:\n{stdout}");
    }
}
