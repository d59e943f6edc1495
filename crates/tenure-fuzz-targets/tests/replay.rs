//! Replays every checked-in fuzz input (`fuzz/corpus/NAME/*`) through its target's check, the
//! same function `fuzz/fuzz_targets/NAME.rs` calls, so a bug the fuzzer once found stays fixed
//! on the stable toolchain, without cargo-fuzz.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tenure_fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn names_in(dir: &Path, strip: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(strip).to_string())
        .collect()
}

#[test]
fn every_target_has_a_fuzz_target_and_a_corpus() {
    let ours: BTreeSet<String> = TARGETS.iter().map(|(n, _)| (*n).to_string()).collect();
    assert_eq!(names_in(&fuzz_dir().join("fuzz_targets"), ".rs"), ours, "fuzz/fuzz_targets/*.rs");
    assert_eq!(names_in(&fuzz_dir().join("corpus"), ""), ours, "fuzz/corpus/*/");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &ours {
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no [[bin]] `{name}`");
    }
}

#[test]
fn the_corpus_replays_without_a_crash() {
    let mut total = 0;
    for (name, check) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no inputs", dir.display());
        for file in &files {
            let data = std::fs::read(file).unwrap();
            // A panic names the input, so it can be run again with `cargo fuzz run NAME FILE`.
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{name}: {} crashes", file.display());
        }
        total += files.len();
    }
    assert!(total >= TARGETS.len());
}
