//! `rotor login` (not built yet).
use std::process::ExitCode;

/// Arguments of `rotor login`.
#[derive(clap::Args)]
pub struct LoginArgs {}

/// Runs `rotor login`.
pub fn run(_args: LoginArgs) -> ExitCode {
    eprintln!("rotor login: not built yet");
    ExitCode::from(2)
}
