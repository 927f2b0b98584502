//! `rotor logout`: leaves a logout tombstone for a profile (G11). It takes
//! the refresh lock like a refresh does, so it waits for a refresh in flight
//! in any process to finish and store its rotation, then replaces the
//! credential with a tombstone at a higher generation; a write computed from
//! the old credential is rejected by its compare-and-swap from then on, and
//! every later `rotor token` reports "logged out" (exit 3) until a login.
use std::process::ExitCode;

use serde_json::json;

use super::backend::{self, Backend};
use super::token::{exit, init_logs, PolicyArgs, StateDirArgs};

/// Arguments of `rotor logout`.
#[derive(clap::Args)]
#[command(after_help = "\
Example:
  rotor logout --profile acme:default             # the main store
  rotor logout --profile acme:default --json      # prints the generation and store

Exit codes:
   0  logged out: a tombstone is stored (logging out again is fine)
   2  usage error, or a refused agent/provider/profile id
   3  no credential for the profile (and no --provider): nothing to log out
   8  refresh lock timeout: a refresh held it too long; the message names the holder
   9  store error: a corrupt, unsafe or unreadable store or lock file
   1  internal error")]
pub struct LogoutArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    /// The agent whose store gets the tombstone ("main" is the main store).
    #[arg(long, default_value = "main")]
    pub agent: String,
    /// The profile id, e.g. "acme:default".
    #[arg(long)]
    pub profile: String,
    /// The provider id (default: the one stored for the profile; with it, a
    /// tombstone is left even when nothing is stored).
    #[arg(long)]
    pub provider: Option<String>,
    /// Print the result as JSON (on failure, {"error": {...}}).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Runs `rotor logout`.
pub fn run(args: LogoutArgs) -> ExitCode {
    init_logs();
    let json = args.json;
    let rotor = match Backend::open("logout", &args.state, &args.policy, json) {
        Ok(rotor) => rotor,
        Err(code) => return code,
    };
    let provider = match &args.provider {
        Some(provider) => provider.clone(),
        None => match rotor.provider_of(&args.agent, &args.profile) {
            Ok(Some(provider)) => provider,
            Ok(None) => return nothing_to_log_out(&args.profile, json),
            Err(error) => return backend::report("logout", &error, json),
        },
    };
    let path = match rotor.store_name(&args.agent) {
        Ok(path) => path,
        Err(error) => return backend::report("logout", &error, json),
    };
    match rotor.logout(&args.agent, &provider, &args.profile) {
        Ok(generation) => {
            if json {
                let value = json!({
                    "agent": args.agent,
                    "provider": provider,
                    "profile": args.profile,
                    "generation": generation,
                    "store": path,
                });
                println!("{value}");
            } else {
                eprintln!(
                    "rotor logout: {} logged out in {path} (tombstone at generation {generation})",
                    args.profile
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => backend::report("logout", &error, json),
    }
}

/// No credential and no --provider: exit 3 (as `rotor token` would), and
/// the way to leave a tombstone anyway.
fn nothing_to_log_out(profile: &str, json: bool) -> ExitCode {
    let message = format!(
        "nothing to log out: no credential stored for {profile} \
         (pass --provider to leave a tombstone anyway)"
    );
    eprintln!("rotor logout: {message}");
    if json {
        let value = json!({"error": {
            "kind": "no_credential", "message": message, "exit_code": exit::NO_CREDENTIAL,
        }});
        println!("{value}");
    }
    ExitCode::from(exit::NO_CREDENTIAL)
}
