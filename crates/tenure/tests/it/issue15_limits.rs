//! Issue 15: a SCIM target that misbehaves on purpose (`tenure_testkit::peers::HostileScim`)
//! against the real binary. Reconciliation of a listing without end stops at the listing's caps
//! after a bounded number of requests, a server that ignores `startIndex` is caught on its
//! second page, and what the connector noticed about a server is printed, not dropped.

use crate::Env;
use serde_json::{Value, json};
use tenure_testkit::peers::HostileScim;
use tenure_testkit::peers::hostile_scim::list_response;

/// The starter env with the `chat` target pointed at `server`, plus `extra` keys for it.
fn env_for(server: &HostileScim, extra: &str) -> Env {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let chat = "url = \"http://127.0.0.1:8000/scim/v2\"\ntoken_env = \"CHAT_SCIM_TOKEN\"\n";
    assert!(config.contains(chat), "the starter's chat target: {config}");
    env.write(
        "tenure.toml",
        &config.replace(chat, &format!("url = \"{}\"\ntoken_env = \"CHAT_SCIM_TOKEN\"\n{extra}", server.url)),
    );
    env
}

fn reconcile(env: &Env, format: &[&str]) -> crate::Out {
    let mut args = vec!["reconcile", "--target", "chat"];
    args.extend_from_slice(format);
    env.run_with(&[("CHAT_SCIM_TOKEN", "t0k3n"), ("TENURE_TODAY", crate::TODAY)], &args)
}

fn no_groups(req: &tenure_testkit::peers::hostile_scim::Seen) -> Option<(u16, String)> {
    req.path.ends_with("/Groups").then(|| (200, list_response(&[], 0, 1)))
}

#[test]
fn issue15_reconcile_of_endless_scim_pages_stops_at_max_listing_items() {
    // 500 new users a page, a billion claimed: without a listing cap this grew until the kernel
    // stopped it.
    let server = HostileScim::start(|req| {
        if let Some(a) = no_groups(req) {
            return a;
        }
        let (start, count) = (req.number("startIndex").unwrap_or(1), req.number("count").unwrap_or(500));
        let users: Vec<Value> =
            (start..start + count).map(|i| json!({"id": format!("u{i}"), "userName": format!("user{i}")})).collect();
        (200, list_response(&users, 1_000_000_000, start))
    })
    .unwrap();
    let env = env_for(&server, "max_listing_items = 2000\n");
    env.ok(&["check"]);
    let out = reconcile(&env, &[]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "chat: NOT reconciled: reading its accounts failed: scim target `chat`: listing users: the listing holds \
             more than 2000 entries (`max_listing_items` = 2000); raise `max_listing_items` in the target's settings"
        ),
        "{}",
        out.stdout
    );
    // Pages of 500: the fifth passes 2,000, and nothing more is asked for.
    assert_eq!(server.requests_to("/Users"), 5, "{:?}", server.seen());
}

#[test]
fn issue15_reconcile_of_a_scim_server_ignoring_start_index_fails_on_its_second_page() {
    // With the default caps: the same first page forever used to cost 10,000 pages.
    let server = HostileScim::start(|req| {
        if let Some(a) = no_groups(req) {
            return a;
        }
        let users: Vec<Value> =
            (1..=500).map(|i| json!({"id": format!("u{i}"), "userName": format!("user{i}")})).collect();
        (200, list_response(&users, 1_000_000_000, 1))
    })
    .unwrap();
    let env = env_for(&server, "");
    let out = reconcile(&env, &["--format", "json"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    let reason = report["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("scim target `chat`: listing users: page 2 (`startIndex` 501)"), "{report:#}");
    assert!(reason.contains("seems to ignore `startIndex`"), "{report:#}");
    assert_eq!(server.requests_to("/Users"), 2);
}

#[test]
fn issue15_what_the_scim_connector_noticed_is_printed_by_reconcile() {
    // itemsPerPage claims the page size asked for, not what the page holds.
    let server = HostileScim::start(|req| {
        if let Some(a) = no_groups(req) {
            return a;
        }
        let users: Vec<Value> =
            (1..=2).map(|i| json!({"id": format!("u{i}"), "userName": format!("user{i}")})).collect();
        let mut page: Value = serde_json::from_str(&list_response(&users, 2, 1)).unwrap();
        page["itemsPerPage"] = json!(500);
        (200, page.to_string())
    })
    .unwrap();
    let env = env_for(&server, "");
    let out = reconcile(&env, &[]);
    assert!(
        out.stdout.contains("chat: note: listing Users: page 1 claimed itemsPerPage 500 but held 2 resources; paging by what was returned"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let report = reconcile(&env, &["--format", "json"]).json();
    let notes = &report["targets"][0]["notes"];
    assert_eq!(notes.as_array().map(Vec::len), Some(1), "{report:#}");
}

#[test]
fn issue15_check_warns_about_tls_verify_false() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let chat = "url = \"http://127.0.0.1:8000/scim/v2\"\n";
    env.write("tenure.toml", &config.replace(chat, "url = \"https://127.0.0.1:8443/scim/v2\"\ntls_verify = false\n"));
    let out = env.ok(&["check"]);
    assert!(
        out.stderr
            .contains("warning: target `chat`: `tls_verify = false`: the SCIM service's certificate is not checked"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let report = env.ok(&["check", "--format", "json"]).json();
    let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{report:#}");
    assert!(warnings[0].as_str().unwrap_or_default().starts_with("target `chat`: `tls_verify = false`"), "{report:#}");
    // Without the setting, nothing to warn about.
    let env = Env::new();
    assert!(!env.ok(&["check"]).stderr.contains("warning:"));
}

// ---- a rotated PostgreSQL password never reaches a log, at any level ----

fn service_of(co: &tenure_testkit::company::Company, owner: &str) -> tenure_testkit::company::Person {
    let mut p = co.get(owner).unwrap().clone();
    p.id = "S000001".into();
    p.given = "Nightly".into();
    p.family = "ETL".into();
    p.email = "svc-etl@example.com".into();
    p.username = "svc-etl".into();
    p.title = "Service Account".into();
    p.manager = None;
    p.employment_type = String::new();
    p.kind = "service".into();
    p.owner = Some(owner.to_string());
    p.end = None;
    p
}

#[test]
fn issue15_serve_at_rust_log_trace_never_logs_a_rotated_passwords_verifier() {
    let stack = tenure_testkit::stack::Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    let config = format!("{}\n[nhi]\nsecret_sink = \"secrets\"\n", stack.config_toml(25));
    env.write("tenure.toml", &config);
    env.ok(&["check"]);
    let mut co = crate::company(10);
    let owner = co.hire("Engineering");
    co.people.push(service_of(&co, &owner));
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    env.run(&["apply", "--wait"]);

    // The server's executor carries out the rotation, logging everything it is allowed to.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tenure"));
    let server = rt
        .block_on(tenure_testkit::server::Server::start_with(
            &bin,
            env.dir.path(),
            &config,
            &[("RUST_LOG", "trace"), ("TENURE_TODAY", crate::TODAY)],
        ))
        .unwrap();
    env.ok(&["rotate", "S000001"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let ops = env.ok(&["plan", "--all", "--identity", "S000001", "--format", "json"]).json();
        let rotation = ops.as_array().unwrap().iter().find(|o| o["kind"] == "rotate_credential").cloned().unwrap();
        if rotation["state"] == "verified" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the server did not verify the rotation: {rotation:#}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let secret = std::fs::read_to_string(env.path("secrets/warehouse/svc-etl")).unwrap().trim_end().to_string();
    let (_, logs) = server.terminate().unwrap();
    // The log is at trace: PostgreSQL was talked to and the executor's work was logged.
    assert!(logs.len() > 20, "too little was logged to show anything: {logs:#?}");
    assert!(logs.iter().any(|l| l.contains("TRACE") || l.contains("\"level\":\"TRACE\"")), "{logs:#?}");
    for line in &logs {
        assert!(!line.contains("SCRAM-SHA-256$"), "a SCRAM verifier in the server's log: {line}");
        assert!(!line.contains(&secret), "the rotated password in the server's log: {line}");
        assert!(!line.contains("ALTER ROLE"), "a statement in the server's log: {line}");
    }
}

// ---- a group deleted by hand ----

#[test]
fn issue15_a_directory_group_deleted_by_hand_is_granted_again_by_remediation_on_real_slapd() {
    let stack = tenure_testkit::stack::Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    env.write("tenure.toml", &stack.config_toml(25));
    env.ok(&["check"]);
    let co = crate::company(12);
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    env.ok(&["apply", "--wait"]);
    let engineers: Vec<&str> =
        co.people.iter().filter(|p| p.department == "Engineering").map(|p| p.username.as_str()).collect();
    assert!(!engineers.is_empty());
    let l = &stack.ldap;
    let members = || {
        let out = std::process::Command::new("ldapsearch")
            .args(["-x", "-LLL", "-H", &l.url, "-D", &l.bind_dn, "-y"])
            .arg(&l.password_file)
            .args(["-b", &l.groups_dn, "(cn=engineers)", "member"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(members().contains(&format!("uid={},", engineers[0])), "{}", members());

    // Someone deletes the group by hand.
    let deleted = std::process::Command::new("ldapdelete")
        .args(["-x", "-H", &l.url, "-D", &l.bind_dn, "-y"])
        .arg(&l.password_file)
        .arg(format!("cn=engineers,{}", l.groups_dn))
        .status()
        .unwrap();
    assert!(deleted.success());
    assert_eq!(members(), "");

    let report = env.expect(1, &["reconcile", "--target", "directory", "--format", "json"]).json();
    let findings = report["targets"][0]["findings"].as_array().cloned().unwrap_or_default();
    let gone: Vec<&Value> = findings.iter().filter(|f| f["entitlement"] == "engineers").collect();
    assert_eq!(gone.len(), engineers.len(), "{report:#}");
    assert!(gone.iter().all(|f| f["kind"] == "missing"), "{report:#}");
    assert!(gone[0]["detail"].as_str().unwrap_or_default().contains("does not exist in `directory` (deleted?)"));
    // Its holders no longer show the membership as verified.
    let engineer = co.people.iter().find(|p| p.department == "Engineering").unwrap().id.clone();
    let shown = env.ok(&["identity", "show", &engineer, "--format", "json"]).json();
    let dir = &shown["accounts"]["directory"];
    assert_eq!(dir["not_found"], json!(["engineers"]), "{dir:#}");
    assert!(!dir["verified"]["grants"].as_array().unwrap().contains(&json!("engineers")), "{dir:#}");
    let text = env.ok(&["identity", "show", &engineer]).stdout;
    assert!(text.contains("(not found by reconciliation: engineers)"), "{text}");

    // Remediation grants it again, which creates the group with every engineer in it.
    let fixed = env.expect(1, &["reconcile", "--target", "directory", "--remediate", "--format", "json"]).json();
    assert_eq!(fixed["remediation"]["operations"], json!(engineers.len()), "{fixed:#}");
    assert_eq!(fixed["remediation"]["held"], Value::Null, "{fixed:#}");
    env.ok(&["apply", "--wait"]);
    let now = members();
    for name in &engineers {
        assert!(now.contains(&format!("uid={name},")), "{name} is back in engineers: {now}");
    }
    // Granted again and read back: verified again, even before the next reconciliation.
    let shown = env.ok(&["identity", "show", &engineer, "--format", "json"]).json();
    let dir = &shown["accounts"]["directory"];
    assert!(dir.get("not_found").is_none(), "{dir:#}");
    assert!(dir["verified"]["grants"].as_array().unwrap().contains(&json!("engineers")), "{dir:#}");
    let after = env.run(&["reconcile", "--target", "directory", "--format", "json"]).json();
    let left: Vec<&Value> = after["targets"][0]["findings"]
        .as_array()
        .map(|f| f.iter().filter(|f| f["entitlement"] == "engineers").collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{after:#}");
}

#[test]
fn issue15_what_the_scim_connector_noticed_is_printed_by_apply() {
    // The `entra` dialect removes a member by value, which scim2-server (RFC 7644) refuses: the
    // connector switches to a filtered path and says so, and `apply` shows it.
    let stack = tenure_testkit::stack::Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    let config = stack.config_toml(25);
    assert!(config.contains("kind = \"scim\"\n"), "{config}");
    env.write("tenure.toml", &config.replacen("kind = \"scim\"\n", "kind = \"scim\"\ndialect = \"entra\"\n", 1));
    env.ok(&["check"]);
    let mut co = crate::company(8);
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    env.ok(&["apply", "--wait"]);
    let mover = co.people.iter().find(|p| p.department == "Engineering").unwrap().id.clone();
    co.get_mut(&mover).unwrap().department = "Sales".into();
    env.write("day2.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day2.csv"]);
    let report = env.ok(&["apply", "--wait", "--format", "json"]).json();
    let notes = report["report"]["notes"]["chat"].as_array().cloned().unwrap_or_default();
    assert_eq!(notes.len(), 1, "{report:#}");
    assert!(notes[0].as_str().unwrap_or_default().contains("refused removing a group member by value"), "{report:#}");
    // In text too: a person sees it.
    co.get_mut(&mover).unwrap().department = "Engineering".into();
    env.write("day3.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day3.csv"]);
    co.get_mut(&mover).unwrap().department = "Sales".into();
    env.write("day4.csv", &co.to_csv());
    env.ok(&["apply", "--wait"]);
    env.ok(&["import", "--source", "hr", "day4.csv"]);
    let out = env.ok(&["apply", "--wait"]);
    assert!(out.stdout.contains("chat: note: the server refused removing a group member by value"), "{}", out.stdout);
}

#[test]
fn issue15_an_account_deleted_by_hand_is_not_shown_verified_and_enabled_on_real_slapd() {
    let stack = tenure_testkit::stack::Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    env.write("tenure.toml", &stack.config_toml(25));
    let co = crate::company(6);
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    env.ok(&["apply", "--wait"]);
    let person = co.people.iter().find(|p| p.department == "Engineering").unwrap();
    let shown = env.ok(&["identity", "show", &person.id, "--format", "json"]).json();
    let dir = &shown["accounts"]["directory"];
    assert_eq!((dir["verified"]["exists"].clone(), dir["verified"]["enabled"].clone()), (json!(true), json!(true)));
    let held = dir["verified"]["grants"].clone();
    assert!(held.as_array().is_some_and(|g| !g.is_empty()), "{dir:#}");

    // Someone deletes the account by hand; reconciliation finds it missing.
    let l = &stack.ldap;
    let deleted = std::process::Command::new("ldapdelete")
        .args(["-x", "-H", &l.url, "-D", &l.bind_dn, "-y"])
        .arg(&l.password_file)
        .arg(format!("uid={},{}", person.username, l.users_dn))
        .status()
        .unwrap();
    assert!(deleted.success());
    let report = env.expect(1, &["reconcile", "--target", "directory", "--format", "json"]).json();
    let findings = report["targets"][0]["findings"].as_array().cloned().unwrap_or_default();
    assert!(
        findings
            .iter()
            .any(|f| f["identity"] == json!(person.id) && f["kind"] == "missing" && f["entitlement"].is_null()),
        "{report:#}"
    );
    // Not verified, not enabled, and its grants are not in place.
    let shown = env.ok(&["identity", "show", &person.id, "--format", "json"]).json();
    let dir = &shown["accounts"]["directory"];
    assert_eq!(dir["verified"]["exists"], json!(false), "{dir:#}");
    assert_eq!(dir["verified"]["enabled"], json!(false), "{dir:#}");
    assert_eq!(dir["verified"]["grants"], json!([]), "{dir:#}");
    assert_eq!(dir["not_found"], held, "{dir:#}");
}
