use anyhow::Result; use std::path::Path; use std::process::ExitCode; pub fn demo(_d: Option<&Path>, _p: usize) -> Result<ExitCode> { anyhow::bail!("demo: being written") }
