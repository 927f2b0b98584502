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
