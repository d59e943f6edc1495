//! Issue 10: `tenure check` refuses a secret sink a rotation would refuse (open to others, a
//! symbolic link, not a directory), and accepts one that does not exist yet.

use crate::Env;
use std::os::unix::fs::PermissionsExt as _;

#[test]
fn issue10_check_names_a_secret_sink_that_is_open_to_others() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    env.write("tenure.toml", &format!("{config}\n[nhi]\nsecret_sink = \"sink\"\n"));
    env.ok(&["check"]);
    std::fs::create_dir(env.path("sink")).unwrap();
    std::fs::set_permissions(env.path("sink"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.expect(1, &["check"]);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("is open to others (mode 0755); `chmod 700` it"), "{all}");
    std::fs::set_permissions(env.path("sink"), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.ok(&["check"]);
    std::fs::remove_dir(env.path("sink")).unwrap();
    std::os::unix::fs::symlink(env.path("elsewhere"), env.path("sink")).unwrap();
    let out = env.expect(1, &["check", "--format", "json"]).json();
    assert!(out["problems"].to_string().contains("is a symbolic link"), "{out}");
}
