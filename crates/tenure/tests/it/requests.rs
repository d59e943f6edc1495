//! Access requests through the binary without peers: `tenure request revoke ID` as documented
//! spells it, its reason optional (recorded as `revoked early by NAME`), a blank one refused.

use crate::Env;

const HEADER: &str = "employee_id,first_name,last_name,work_email,login,dept,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status";

fn row(id: &str, login: &str, manager: &str) -> String {
    format!(
        "{id},{login},L,{login}@example.com,{login},Sales,Rep,Berlin,CC1,{manager},employee,employee,,2020-01-01,,active"
    )
}

#[test]
fn request_revoke_needs_no_reason_and_records_who_ended_it() {
    let env = Env::new();
    let csv = [HEADER.to_string(), row("T", "tia", ""), row("E1", "eli", "T")];
    env.write("hr.csv", &(csv.join("\n") + "\n"));
    let at = |now: &str, args: &[&str]| {
        let out = env.run_at(now, args);
        assert_eq!(out.code, 0, "tenure {args:?}\n{}\n{}", out.stdout, out.stderr);
        out
    };
    at("2030-01-01T09:00:00Z", &["import", "--source", "hr", "hr.csv"]);
    let ask = ["request", "warehouse-admin", "--for", "E1", "--reason", "close", "--as", "eli", "--format", "json"];
    let id = at("2030-01-01T09:01:00Z", &ask).json()["id"].to_string();

    let blank = env.run_at("2030-01-01T09:02:00Z", &["request", "revoke", &id, "--reason", " ", "--as", "tia"]);
    assert_eq!(blank.code, 1, "a blank reason is refused: {}", blank.stderr);
    assert!(blank.stderr.contains("needs a reason"), "{}", blank.stderr);
    let open = at("2030-01-01T09:02:30Z", &["requests", "--open", "--format", "json"]).json();
    assert_eq!(open.as_array().map(Vec::len), Some(1), "unchanged: {open}");

    at("2030-01-01T09:03:00Z", &["request", "revoke", &id, "--as", "tia"]);
    let open = at("2030-01-01T09:04:00Z", &["requests", "--open", "--format", "json"]).json();
    assert_eq!(open.as_array().map(Vec::len), Some(0), "{open}");
    let audit = at("2030-01-01T09:05:00Z", &["audit", "export", "--format", "jsonl"]);
    assert!(audit.stdout.contains("revoked early by tia"), "{}", audit.stdout);
}
