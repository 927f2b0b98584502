//! `rotor status` (not built yet).
use std::process::ExitCode;

/// Arguments of `rotor status`.
#[derive(clap::Args)]
pub struct StatusArgs {}

/// Runs `rotor status`.
pub fn run(_args: StatusArgs) -> ExitCode {
    eprintln!("rotor status: not built yet");
    ExitCode::from(2)
}
