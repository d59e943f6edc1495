//! The independent SCIM compliance suite against a real `tenure serve`: scim2-tester (PyPI
//! `scim2-cli`) run as the acceptance runs it, `scim2 --url URL --header "Authorization: Bearer
//! TOKEN" test`, with a `source` token of a `kind = "scim"` source, over a real socket, on the
//! store and the engine (every User it writes is a push). Zero checks may be anything but
//! SUCCESS; the counts are printed for the record (`--nocapture`).

use crate::Env;
use crate::pushes::serve;
use std::process::Command;

#[test]
fn scim2_tester_passes_every_check_against_tenure_serve() {
    let scim2 =
        tenure_testkit::peers::ensure_venv(&["scim2-cli"], "scim2").expect("installing scim2-cli").join("scim2");
    let env = Env::new();
    let mut config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    config.push_str("\n[[source]]\nname = \"idp\"\nkind = \"scim\"\n");
    env.write("tenure.toml", &config);
    env.ok(&["check"]);
    let token = env.ok(&["token", "create", "--name", "idp", "--scope", "source", "--source", "idp"]);
    let token = token.stdout.trim().to_string();
    let admin = env.ok(&["token", "create", "--name", "ops", "--scope", "admin"]).stdout.trim().to_string();
    let server = serve(&env);
    let url = format!("{}/scim/v2", server.url);

    let run = |bearer: Option<&str>| {
        let mut cmd = Command::new(&scim2);
        cmd.args(["--url", &url]);
        if let Some(t) = bearer {
            cmd.args(["--header", &format!("Authorization: Bearer {t}")]);
        }
        cmd.arg("test").output().unwrap()
    };
    let out = run(Some(&token));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let verdicts: Vec<&str> = stdout.lines().filter(|l| !l.starts_with(' ') && !l.starts_with("Performing")).collect();
    let count = |status: &str| verdicts.iter().filter(|l| l.starts_with(&format!("{status} "))).count();
    let (passed, skipped) = (count("SUCCESS"), count("SKIPPED"));
    let failed = verdicts.len() - passed - skipped;
    eprintln!("{stdout}\nscim2 test against tenure serve: {passed} passed, {failed} failed, {skipped} skipped");
    assert!(
        out.status.success() && failed == 0 && skipped == 0 && passed > 0,
        "scim2 test exited with {}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // It reached the resources, not only discovery: every CRUD and PATCH family ran.
    for check in [
        "object_creation",
        "object_query",
        "object_query_without_id",
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
    // Without a token, or with a token that is not a SCIM source's, the same server refuses.
    assert!(!run(None).status.success(), "scim2 test passed without a token");
    assert!(!run(Some(&admin)).status.success(), "scim2 test passed with an admin token");
    drop(server);

    // Every User the suite wrote went through the engine: the pushes are imports of `idp`, and
    // the audit chain that describes them verifies.
    let imports = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(imports.lines().any(|l| l.contains("\"scim.user.created\"")), "no SCIM write audited");
    env.ok(&["audit", "verify"]);
}
