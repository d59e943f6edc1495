//! `config_toml`: `tenure.toml` text through `tenure_core::config::parse`.

/// Loads `data` as a config. A refusal must say why, on a line of the file (or line 0, the
/// file as a whole); an accepted config must produce its warnings without panicking.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match tenure_core::config::parse("tenure.toml", text) {
        Ok(config) => {
            let _ = config.warnings();
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "a refused config names no problem");
            let lines = text.lines().count() + 1;
            for p in &problems {
                assert!(p.line <= lines, "problem on line {} of a {lines}-line file: {}", p.line, p.message);
            }
        }
    }
}
