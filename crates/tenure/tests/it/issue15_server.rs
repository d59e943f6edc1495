//! Hardening of `tenure serve` against a real server on loopback: slow and idle connections are
//! closed, more connections than the cap still leave room for `/healthz`, bad tokens never lock
//! out a valid one (with and without trusted proxies), webhook secrets and ids are bounded, SCIM
//! values are held to the field limit, `If-Match` lists match, and the OpenAPI document says
//! what the server accepts.
//!
//! Every wait here is bounded by a count of steps, never by a measured duration.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;
use tenure_testkit::server::Server;

/// `tenure init` in a temp dir, `extra` appended to its config, and the server started.
async fn server_with(extra: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::TempDir::new().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tenure"));
    let init = std::process::Command::new(&bin).args(["init", "."]).current_dir(dir.path()).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let mut config = std::fs::read_to_string(dir.path().join("tenure.toml")).unwrap();
    config = with_server_section(&config, extra);
    let s = Server::start_with(&bin, dir.path(), &config, env).await.unwrap();
    (dir, s)
}

/// `config` with `extra` keys added to its `[server]` section.
fn with_server_section(config: &str, extra: &str) -> String {
    if extra.is_empty() {
        return config.to_string();
    }
    assert!(config.contains("[server]\n"), "the starter config has a [server] section");
    config.replacen("[server]\n", &format!("[server]\n{extra}\n"), 1)
}

fn addr(s: &Server) -> String {
    s.base_url.trim_start_matches("http://").to_string()
}

/// Whether the server has closed `c`: a read that ends (EOF or reset) within `wait`.
fn closed(c: &mut TcpStream, wait: Duration) -> bool {
    closed_after(c, wait, &mut Vec::new())
}

/// [`closed`], keeping what the server sent before closing in `got`.
fn closed_after(c: &mut TcpStream, wait: Duration, got: &mut Vec<u8>) -> bool {
    c.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// `GET /healthz` on a fresh connection, by hand: the status line.
fn healthz(a: &str) -> String {
    let to: std::net::SocketAddr = a.parse().unwrap();
    let Ok(mut c) = TcpStream::connect_timeout(&to, Duration::from_secs(10)) else { return String::new() };
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_headers_trickled_slower_than_the_timeout_and_idle_connections_are_closed() {
    let (_dir, s) = server_with("header_read_timeout = \"1s\"\nidle_timeout = \"2s\"", &[]).await;
    let a = addr(&s);
    // Slowloris: a request line, then a header line every 250 ms, each well inside any
    // per-read timeout but the whole head far slower than one second. The server must close
    // the connection before 40 lines (10 s) have gone.
    let mut slow = TcpStream::connect(&a).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").unwrap();
    let mut lines = 0;
    let dropped = loop {
        if closed(&mut slow, Duration::from_millis(250)) {
            break true;
        }
        if slow.write_all(format!("x-slow-{lines}: y\r\n").as_bytes()).is_err() {
            break true;
        }
        lines += 1;
        if lines == 40 {
            break false;
        }
    };
    assert!(dropped, "a head trickled over 10 s was still being read");

    // A connection that sends nothing is closed after the idle timeout (2 s), well before 10 s.
    let mut idle = TcpStream::connect(&a).unwrap();
    let gone = (0..40).any(|_| closed(&mut idle, Duration::from_millis(250)));
    assert!(gone, "an idle connection stayed open");

    // A keep-alive connection is served, then closed when it idles.
    let mut keep = TcpStream::connect(&a).unwrap();
    keep.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    keep.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 256];
    let n = keep.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "served on a kept connection");
    let gone = (0..40).any(|_| closed(&mut keep, Duration::from_millis(250)));
    assert!(gone, "an idle keep-alive connection stayed open");
    assert!(healthz(&a).starts_with("HTTP/1.1 200"), "the server still answers");

    // A head far over 64 KiB is refused, not buffered whole.
    let mut big = TcpStream::connect(&a).unwrap();
    let head = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "b".repeat(300 * 1024));
    let _ = big.write_all(head.as_bytes());
    let mut got = Vec::new();
    let gone = (0..40).any(|_| closed_after(&mut big, Duration::from_millis(250), &mut got));
    assert!(gone, "a 300 KiB head kept the connection open");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 431"), "{}", String::from_utf8_lossy(&got));

    // A request whose body never comes (ten of its hundred bytes sent) is closed once the
    // client has stalled it for the idle timeout, although a request is under way.
    let mut body = TcpStream::connect(&a).unwrap();
    let head = format!(
        "POST /api/v1/events?source=hr HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"records\"",
        s.admin_token
    );
    body.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let gone = (0..40).any(|_| closed_after(&mut body, Duration::from_millis(250), &mut got));
    assert!(gone, "a request whose body stalled stayed open");
    assert!(got.is_empty(), "closed unanswered, not answered first: {}", String::from_utf8_lossy(&got));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_more_connections_than_the_cap_leave_room_for_healthz() {
    // Long timeouts, so only the cap can make room.
    let (_dir, s) = server_with("max_connections = 8\nheader_read_timeout = \"5m\"\nidle_timeout = \"10m\"", &[]).await;
    let a = addr(&s);
    // Forty connections: idle ones and ones stuck in the middle of their headers.
    let mut held: Vec<TcpStream> = (0..40)
        .map(|i| {
            let mut c = TcpStream::connect(&a).unwrap();
            if i % 2 == 0 {
                c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ").unwrap();
            }
            c
        })
        .collect();
    for _ in 0..3 {
        assert!(healthz(&a).starts_with("HTTP/1.1 200"), "/healthz with 40 slow connections open");
    }
    // The cap holds: at most 8 of the 40 (and the probes') connections are still open.
    let open = held.iter_mut().map(|c| !closed(c, Duration::from_millis(100))).filter(|o| *o).count();
    assert!(open <= 8, "{open} of 40 connections beyond a cap of 8 are still open");
    assert!(healthz(&a).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_idle_connections_never_exhaust_the_descriptors_healthz_needs() {
    // The server runs under an open-file limit of 160 with the default cap (512): the cap it
    // serves is lowered below the limit, so 300 idle sockets cannot take the last descriptor.
    let dir = tempfile::TempDir::new().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tenure"));
    let init = std::process::Command::new(&bin).args(["init", "."]).current_dir(dir.path()).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let wrapper = dir.path().join("tenure-limited");
    std::fs::write(&wrapper, format!("#!/bin/sh\nulimit -n 160 || exit 99\nexec {:?} \"$@\"\n", bin)).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = std::fs::read_to_string(dir.path().join("tenure.toml")).unwrap();
    let s = Server::start_with(&wrapper, dir.path(), &config, &[]).await.unwrap();
    let a = addr(&s);
    let to: std::net::SocketAddr = a.parse().unwrap();
    let _held: Vec<TcpStream> = (0..300)
        .map(|i| {
            TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect();
    for _ in 0..3 {
        assert!(healthz(&a).starts_with("HTTP/1.1 200"), "/healthz with 300 idle connections open");
    }
    assert!(s.logs().iter().any(|l| l.contains("open-file limit")), "the lowered cap is logged");
}

async fn get(s: &Server, path: &str, token: Option<&str>, forwarded: Option<&str>) -> u16 {
    let mut req = s.client.get(s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap().status().as_u16()
}

const BAD: &str = "tnr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_bad_tokens_from_an_address_never_lock_out_a_valid_token() {
    let (_dir, s) = server_with("", &[("TENURE_AUTH_FAILURES", "5")]).await;
    let statuses: Vec<u16> = futures_statuses(&s, 10, None).await;
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], &[429; 5], "{statuses:?}");
    // The valid token from the same address is served, every time, throttle or not.
    for _ in 0..3 {
        assert_eq!(get(&s, "/api/v1/cases", Some(&s.admin_token), None).await, 200);
    }
    let source = s.token("hr-push", "source", Some("hr")).unwrap();
    assert_eq!(get(&s, "/scim/v2/ServiceProviderConfig", Some(&source), None).await, 403, "authenticated, not 429");
    // Failing attempts stay throttled: unknown, malformed and missing tokens.
    assert_eq!(get(&s, "/api/v1/cases", Some(BAD), None).await, 429);
    assert_eq!(get(&s, "/api/v1/cases", Some("not-a-token"), None).await, 429);
    assert_eq!(get(&s, "/api/v1/cases", None, None).await, 429);
    // Without `trusted_proxies`, `X-Forwarded-For` is the client's own word and ignored.
    assert_eq!(get(&s, "/api/v1/cases", Some(BAD), Some("198.51.100.99")).await, 429);
}

/// `n` requests with an unknown token, one after another; their statuses.
async fn futures_statuses(s: &Server, n: usize, forwarded: Option<&str>) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(s, "/api/v1/cases", Some(BAD), forwarded).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_behind_a_trusted_proxy_the_throttle_counts_each_forwarded_client() {
    let (_dir, s) =
        server_with("trusted_proxies = [\"127.0.0.1/32\", \"::1\"]", &[("TENURE_AUTH_FAILURES", "3")]).await;
    let one = futures_statuses(&s, 4, Some("198.51.100.7")).await;
    assert_eq!(one, [401, 401, 401, 429], "the forwarded client is throttled");
    // Another client behind the same proxy is not.
    assert_eq!(get(&s, "/api/v1/cases", Some(BAD), Some("198.51.100.8")).await, 401);
    // What a client writes left of the proxy's entry does not move it to another bucket.
    assert_eq!(get(&s, "/api/v1/cases", Some(BAD), Some("203.0.113.1, 198.51.100.7")).await, 429);
    // And the throttled client's valid token still works.
    assert_eq!(get(&s, "/api/v1/cases", Some(&s.admin_token), Some("198.51.100.7")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_a_weak_webhook_secret_fails_check_and_serve_and_a_long_webhook_id_is_refused() {
    let env = crate::Env::new();
    let mut config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    config.push('\n');
    config.push_str(&tenure_sample::company::webhook_source_toml("workday", "workday.secret"));
    env.write("tenure.toml", &config);
    for weak in ["whsec_AA==", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        env.write("workday.secret", weak);
        let out = env.run(&["check"]);
        assert_eq!(out.code, 1, "{weak}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("source `workday`: the webhook secret"), "{}", out.stdout);
        assert!(!out.stdout.contains(weak.trim_start_matches("whsec_")), "the secret is not printed");
        let serve = env.run(&["serve", "--listen", "127.0.0.1:0"]);
        assert_eq!(serve.code, 1, "serve refuses to start: {}{}", serve.stdout, serve.stderr);
        assert!(serve.stderr.contains("the webhook secret"), "{}", serve.stderr);
    }
    let good = tenure_server::webhook::Secret::generate();
    env.write("workday.secret", &good);
    assert_eq!(env.run(&["check"]).code, 0);

    let s = Server::start_with(std::path::Path::new(env!("CARGO_BIN_EXE_tenure")), env.dir.path(), &config, &[])
        .await
        .unwrap();
    let token = s.token("workday", "source", Some("workday")).unwrap();
    let secret = tenure_server::webhook::Secret::parse(&good).unwrap();
    let push = |id: String| {
        let body = br#"{"employee_id": "W0001", "first_name": "Wen", "last_name": "Ng", "login": "wng1", "work_email": "wng1@example.com", "dept": "Engineering", "title": "Engineer", "employment_type": "employee", "kind": "employee", "employment_status": "active"}"#.to_vec();
        let now = chrono::Utc::now().timestamp();
        s.client
            .post(s.url("/hooks/workday"))
            .bearer_auth(&token)
            .header("webhook-id", id.clone())
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", secret.sign(&id, now, &body))
            .body(body)
            .send()
    };
    let res = push("m".repeat(257)).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let text = res.text().await.unwrap();
    assert!(text.contains("`webhook-id` is 257 bytes; at most 256 are allowed"), "{text}");
    let res = push("m".repeat(256)).await.unwrap();
    assert_eq!(res.status().as_u16(), 202, "256 bytes is within the limit: {}", res.text().await.unwrap());
}

#[test]
fn issue15_ingested_push_journal_entries_are_pruned_by_the_retention_schedule() {
    let env = crate::Env::new();
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    env.write("tenure.toml", &with_server_section(&config, "journal_retention = \"2d\""));
    env.ok(&["check"]);
    // Any command opens (and creates) the store.
    env.ok(&["token", "list"]);
    let db = rusqlite::Connection::open(env.db()).unwrap();
    let row = |delivery: &str, at: &str, state: &str| {
        db.execute(
            "INSERT INTO push_journal (source, delivery, actor, received_at, records, response, state)
             VALUES ('hr', ?1, 'source:hr', ?2, '[]', '{}', ?3)",
            rusqlite::params![delivery, at, state],
        )
        .unwrap();
    };
    row("old-ingested", "2026-11-10T09:00:00.000000Z", "ingested");
    row("old-pending", "2026-11-10T09:00:00.000000Z", "pending");
    row("recent-ingested", "2026-11-20T09:00:00.000000Z", "ingested");
    let out =
        env.run_on_clock("2026-11-21T10:00:00Z", &["schedule", "run-once", "--job", "retention", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("1 ingested push journal entries past retention deleted"), "{}", out.stdout);
    let mut stmt = db.prepare("SELECT delivery FROM push_journal ORDER BY delivery").unwrap();
    let left: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(left, ["old-pending", "recent-ingested"]);
    // A retention shorter than a replay could still arrive is refused.
    env.write("tenure.toml", &with_server_section(&config, "journal_retention = \"5m\""));
    let bad = env.run(&["check"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stdout.contains("`journal_retention` in [server]"), "{}", bad.stdout);
}

/// A `kind = "scim"` source `idp` and its token.
async fn scim_server() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::TempDir::new().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tenure"));
    let init = std::process::Command::new(&bin).args(["init", "."]).current_dir(dir.path()).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let mut config = std::fs::read_to_string(dir.path().join("tenure.toml")).unwrap();
    config.push_str("\n[[source]]\nname = \"idp\"\nkind = \"scim\"\n");
    let s = Server::start_with(&bin, dir.path(), &config, &[]).await.unwrap();
    let token = s.token("idp-push", "source", Some("idp")).unwrap();
    (dir, s, token)
}

fn user(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut u = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "externalId": format!("X-{name}"),
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
    });
    if let (Some(u), Some(extra)) = (u.as_object_mut(), extra.as_object()) {
        u.extend(extra.clone());
    }
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_unmapped_scim_attributes_are_held_to_the_field_limit() {
    let (_dir, s, token) = scim_server().await;
    let long = "x".repeat(5000);
    let post = |body: serde_json::Value| {
        s.client
            .post(s.url("/scim/v2/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let cases = [
        (serde_json::json!({"nickName": long}), "`nickName`: value is 5000 bytes; the limit is 4096"),
        (
            serde_json::json!({"addresses": [{"type": "work", "streetAddress": long}]}),
            "`addresses[0].streetAddress`: value is 5000 bytes",
        ),
    ];
    for (i, (extra, want)) in cases.into_iter().enumerate() {
        let res = post(user(&format!("u{i}"), extra)).await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(status, 400, "{text}");
        assert!(text.contains(want), "{text}");
        assert!(!text.contains(&long[..100]), "the value is not echoed");
    }
    let ok = post(user("fits", serde_json::json!({"nickName": "x".repeat(4096)}))).await.unwrap();
    assert_eq!(ok.status().as_u16(), 201, "{}", ok.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_if_match_with_a_list_holding_the_current_etag_succeeds() {
    let (_dir, s, token) = scim_server().await;
    let res = s
        .client
        .post(s.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(user("ada", serde_json::json!({})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let mut etag = res.headers()["etag"].to_str().unwrap().to_string();
    let created: serde_json::Value = res.json().await.unwrap();
    let uri = s.url(&format!("/scim/v2/Users/{}", created["id"].as_str().unwrap()));
    let patch = |title: &str| {
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": title}],
        })
        .to_string()
    };
    // One field holding a list, several fields, and `*` among stale tags: each matches.
    let lists: [&[String]; 3] = [
        &[format!("W/\"999\", {etag}")],
        &["W/\"998\"".to_string(), "W/\"999\"".to_string()],
        &["W/\"999\"".to_string(), "*".to_string()],
    ];
    for (i, fields) in lists.into_iter().enumerate() {
        let mut fields = fields.to_vec();
        if i == 1 {
            fields.push(etag.clone());
        }
        let mut req = s
            .client
            .patch(&uri)
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(patch(&format!("Engineer {i}")));
        for f in &fields {
            req = req.header("if-match", f);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let next = res.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(status, 200, "If-Match {fields:?}: {}", res.text().await.unwrap());
        etag = next.unwrap();
    }
    // A list with no current tag still fails.
    let res = s
        .client
        .patch(&uri)
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .header("if-match", "W/\"998\", W/\"999\"")
        .body(patch("stale"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 412);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_the_openapi_document_spells_enums_as_the_server_accepts_them() {
    let (_dir, s) = server_with("", &[]).await;
    let res = s.client.get(s.url("/api/v1/openapi.json")).bearer_auth(&s.admin_token).send().await.unwrap();
    let doc: serde_json::Value = res.json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    let values = |name: &str| -> Vec<String> {
        let s = &schemas[name];
        let list = s["enum"].as_array().unwrap_or_else(|| panic!("`{name}` is an enum: {s}"));
        list.iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(values("ReviewDecision"), ["keep", "revoke"]);
    for (name, all) in [
        ("OpKind", tenure_core::OpKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
        ("Status", tenure_core::Status::ALL.iter().map(|k| k.as_str()).collect()),
        ("Kind", tenure_core::Kind::ALL.iter().map(|k| k.as_str()).collect()),
    ] {
        assert!(schemas.get(name).is_some(), "the document has the `{name}` schema");
        assert_eq!(values(name), all, "{name}");
    }
    // And the server takes the documented spelling: a review decision of `keep` is read (the
    // item does not exist, so 404), while `Keep` is refused as malformed.
    let decide = |decision: &str| {
        s.client
            .post(s.url("/api/v1/reviews/999"))
            .bearer_auth(&s.admin_token)
            .json(&serde_json::json!({"decision": decision, "reason": "ok"}))
            .send()
    };
    let documented = decide("keep").await.unwrap().status().as_u16();
    assert_ne!(documented, 400, "the documented spelling is accepted");
    let capitalised = decide("Keep").await.unwrap().status().as_u16();
    assert!(capitalised == 400 || capitalised == 422, "{capitalised}");
}

/// A connection from `from` (a loopback address of the test's choosing) to `to`.
async fn connect_from(from: &str, to: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(to.parse().unwrap()).await.unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Reads from `c` until `want` has arrived (or the connection ends); what was read.
fn read_until(c: &mut TcpStream, want: &str) -> String {
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(want) {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A request under way on `c`: `POST /api/v1/events` announcing a 100-byte body, of which
/// `sent` is sent once the server, reading the body, has answered `100 Continue` (so the
/// request is known to have begun).
fn begin_request(c: &mut TcpStream, token: &str, sent: &str) {
    let head = format!(
        "POST /api/v1/events?source=hr HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\nexpect: 100-continue\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    let got = read_until(c, "\r\n\r\n");
    assert!(got.starts_with("HTTP/1.1 100"), "the request began: {got}");
    c.write_all(sent.as_bytes()).unwrap();
}

/// `GET path` on a fresh connection from `from`, by hand, with `token`: the whole answer.
async fn get_from(from: &str, a: &str, path: &str, token: &str) -> String {
    let mut c = connect_from(from, a).await;
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).unwrap();
    read_until(&mut c, "\u{0}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_a_body_trickled_byte_by_byte_is_closed_after_the_body_timeout() {
    // Long idle and header timeouts: only the body deadline can close it. A byte every 250 ms
    // is progress each time, so no single wait comes near the idle timeout.
    let (_dir, s) =
        server_with("header_read_timeout = \"5m\"\nidle_timeout = \"10m\"\nbody_timeout = \"2s\"", &[]).await;
    let source = s.token("hr-trickle", "source", Some("hr")).unwrap();
    let a = addr(&s);
    let mut c = TcpStream::connect(&a).unwrap();
    let head = format!(
        "POST /hooks/hr HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {source}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    // 80 bytes at most (20 s at this pace) of the 1000 announced.
    let gone = (0..80).any(|_| closed(&mut c, Duration::from_millis(250)) || c.write_all(b" ").is_err());
    assert!(gone, "a body trickled a byte at a time held its connection past 80 bytes");
    assert!(healthz(&a).starts_with("HTTP/1.1 200"), "the server still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_with_every_connection_busy_healthz_answers_and_the_rest_get_503() {
    let (_dir, s) = server_with(
        "max_connections = 4\nheader_read_timeout = \"5m\"\nidle_timeout = \"10m\"\nbody_timeout = \"10m\"",
        &[],
    )
    .await;
    let a = addr(&s);
    // Four requests under way, each with a body it never finishes: the cap is full of busy
    // connections, none of them idle.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(&a).unwrap();
        begin_request(&mut c, &s.admin_token, "{\"records\"");
        held.push(c);
    }
    let refused = get_from("127.0.0.1", &a, "/api/v1/cases", &s.admin_token).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("\"overloaded\"") && refused.to_ascii_lowercase().contains("retry-after: 1"), "{refused}");
    for _ in 0..3 {
        assert!(healthz(&a).starts_with("HTTP/1.1 200"), "/healthz with every connection busy");
        let ready = get_from("127.0.0.1", &a, "/readyz", "none").await;
        assert!(ready.starts_with("HTTP/1.1 200"), "/readyz with every connection busy: {ready}");
    }
    // The busy connections were left alone.
    for c in &mut held {
        assert!(!closed(c, Duration::from_millis(100)), "a request under way was closed to make room");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_one_client_address_holds_only_its_share_of_the_connections() {
    let (_dir, s) = server_with(
        "max_connections = 16\nmax_client_connections = 2\nheader_read_timeout = \"5m\"\nidle_timeout = \"10m\"\nbody_timeout = \"10m\"",
        &[],
    )
    .await;
    let a = addr(&s);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect_from("127.0.0.3", &a).await;
        begin_request(&mut c, &s.admin_token, "{");
        held.push(c);
    }
    let same = get_from("127.0.0.3", &a, "/api/v1/cases", &s.admin_token).await;
    assert!(same.starts_with("HTTP/1.1 503"), "a third from the same address: {same}");
    let other = get_from("127.0.0.4", &a, "/api/v1/cases", &s.admin_token).await;
    assert!(other.starts_with("HTTP/1.1 200"), "another address is served: {other}");
    let probe = get_from("127.0.0.3", &a, "/healthz", "none").await;
    assert!(probe.starts_with("HTTP/1.1 200"), "the busy address can still probe: {probe}");
}

/// The `content-length` of an answer's head.
fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no content-length: {head}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_shutdown_sends_responses_whole_finishes_requests_and_gives_up_after_the_drain_timeout() {
    let (_dir, s) = server_with(
        "header_read_timeout = \"5m\"\nidle_timeout = \"10m\"\nbody_timeout = \"10m\"\ndrain_timeout = \"3s\"",
        &[],
    )
    .await;
    let a = addr(&s);
    let token = s.admin_token.clone();
    // An answer the client has not read yet (the handler is done; what does not fit the
    // client's small window waits in the server) is sent whole after the signal.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut large = socket.connect(a.parse().unwrap()).await.unwrap().into_std().unwrap();
    large.set_nonblocking(false).unwrap();
    let req = format!("GET /api/v1/openapi.json HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n");
    large.write_all(req.as_bytes()).unwrap();
    let mut got = read_until(&mut large, "\r\n\r\n").into_bytes();
    let text = String::from_utf8_lossy(&got).into_owned();
    let head_len = text.find("\r\n\r\n").unwrap() + 4;
    let want = content_length(&text[..head_len]);
    assert!(want > 64 * 1024, "{want} bytes");
    // A request whose body is half sent, finished during the drain.
    let mut finishing = TcpStream::connect(&a).unwrap();
    begin_request(&mut finishing, &token, "{\"records\": []}");
    // And one trickled forever.
    let mut trickle = TcpStream::connect(&a).unwrap();
    begin_request(&mut trickle, &token, "{");

    let stopping = std::thread::spawn(move || s.terminate());
    // Shutdown has begun once the listener is gone (bounded: 200 tries).
    let to: std::net::SocketAddr = a.parse().unwrap();
    let refused = (0..200).any(|_| {
        TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_err() || {
            std::thread::sleep(Duration::from_millis(25));
            false
        }
    });
    assert!(refused, "the server stopped accepting");

    // The large answer arrives whole.
    large.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < head_len + want {
        match large.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(got.len() - head_len, want, "the answer was cut off by the shutdown");

    // The half-sent request is finished and answered.
    finishing.write_all(&[b' '; 100 - 15]).unwrap();
    let answer = read_until(&mut finishing, "\u{0}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("answered: {answer}"));
    assert!(head.starts_with("HTTP/1.1 ") && !head.starts_with("HTTP/1.1 5"), "handled: {answer}");
    assert_eq!(body.len(), content_length(head), "answered whole: {answer}");

    // The trickle is given up on after the drain timeout: the process exits within 80 steps.
    let mut steps = 0;
    while !stopping.is_finished() && steps < 80 {
        let _ = trickle.write_all(b" ");
        std::thread::sleep(Duration::from_millis(250));
        steps += 1;
    }
    assert!(stopping.is_finished(), "shutdown waited on a trickled body for 20 s");
    let (code, logs) = stopping.join().unwrap().unwrap();
    assert_eq!(code, Some(0), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("drain_timeout")), "{logs:?}");
}
