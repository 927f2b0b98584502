//! `rotor check` (not built yet).
use std::process::ExitCode;

/// Arguments of `rotor check`.
#[derive(clap::Args)]
pub struct CheckArgs {}

/// Runs `rotor check`.
pub fn run(_args: CheckArgs) -> ExitCode {
    eprintln!("rotor check: not built yet");
    ExitCode::from(2)
}
