//! `rotor token` (not built yet).
use std::process::ExitCode;

/// Arguments of `rotor token`.
#[derive(clap::Args)]
pub struct TokenArgs {}

/// Runs `rotor token`.
pub fn run(_args: TokenArgs) -> ExitCode {
    eprintln!("rotor token: not built yet");
    ExitCode::from(2)
}
