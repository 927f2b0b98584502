//! `rotor status`: profiles, expiry, generation, in-doubt fences,
//! needs-reauth marks, and who holds which refresh lock for how long.
use std::process::ExitCode;

use rotor_fs::Layout;

use super::token::{exit, init_logs, report_error, usage_error, StateDirArgs};

/// Arguments of `rotor status`.
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  rotor status --state-dir ~/.rotor\n",
    "  rotor status --json | jq '.stores[].profiles'\n"
))]
pub struct StatusArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `rotor status`.
pub fn run(args: StatusArgs) -> ExitCode {
    init_logs();
    match args.state.store_url() {
        Err(message) => return usage_error("status", &message, args.json),
        Ok(Some(url)) => return pg_status(&url, args.json),
        Ok(None) => {}
    }
    let state_dir = match args.state.resolve() {
        Ok(dir) => dir,
        Err(message) => return usage_error("status", &message, args.json),
    };
    if !state_dir.exists() {
        eprintln!(
            "rotor status: no state directory at {}: run `rotor login`",
            state_dir.display()
        );
        return ExitCode::from(exit::NO_CREDENTIAL);
    }
    match rotor_fs::status::gather(&Layout::new(&state_dir)) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::SUCCESS
        }
        Err(fault) => report_error("status", &rotor_fs::Error::Store(fault), args.json),
    }
}

/// `rotor status --store postgres://…`: the same report from the server
/// (the URL redacted; per lock its epoch and the holding server session).
fn pg_status(url: &str, json: bool) -> ExitCode {
    let report = rotor_pg::PgRotor::open(url).and_then(|rotor| rotor.status());
    match report {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::SUCCESS
        }
        Err(error) => super::backend::report("status", &error.into(), json),
    }
}
