//! `rotor replay` (not built yet).
use std::process::ExitCode;

/// Arguments of `rotor replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {}

/// Runs `rotor replay`.
pub fn run(_args: ReplayArgs) -> ExitCode {
    eprintln!("rotor replay: not built yet");
    ExitCode::from(2)
}
