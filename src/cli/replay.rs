//! `rotor replay`: rerun one simulated world exactly, from its seed and shape
//! (the command `rotor check` prints) or from a trace file it wrote.

use std::path::PathBuf;
use std::process::ExitCode;

use rotor_sim::{run_config, RunOptions, StopOn, TraceFile, TraceMode};

use super::check::{
    config_from, parse_guarantee, parse_path, parse_seed, parse_world, run_exhaustive, StepPath,
    WorldArgs,
};

/// Arguments of `rotor replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {
    /// A trace file written by `rotor check` (instead of --seed).
    #[arg(conflicts_with = "seed")]
    pub trace: Option<PathBuf>,
    /// The seed to replay.
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// The world's shape, as printed by `rotor check`.
    #[command(flatten)]
    pub world: WorldArgs,
    /// Stop at the first violation of this guarantee (G1..G8, G11,
    /// liveness) instead of at the first violation of any.
    #[arg(long, value_parser = parse_guarantee)]
    pub stop_at: Option<StopOn>,
    /// Print the trace as JSON instead of one line per event.
    #[arg(long)]
    pub json: bool,
    /// Replay a counterexample of the exhaustive explorer in this named
    /// world (with --path), as `rotor check --exhaustive` prints it.
    #[arg(long, value_parser = parse_world, requires = "path", conflicts_with_all = ["trace", "seed"])]
    pub exhaustive: Option<String>,
    /// With --exhaustive: the comma-separated step choices of the path.
    #[arg(long, requires = "exhaustive", value_parser = parse_path)]
    pub path: Option<StepPath>,
}

/// Runs `rotor replay`.
pub fn run(args: ReplayArgs) -> ExitCode {
    if let (Some(world), Some(path)) = (&args.exhaustive, &args.path) {
        return run_exhaustive(world, Some(&path.0));
    }
    let (config, stop, expected) = match (&args.trace, args.seed) {
        (Some(path), _) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!("rotor replay: cannot read {}: {error}", path.display());
                    return ExitCode::from(2);
                }
            };
            let file = match TraceFile::from_json(&text) {
                Ok(file) => file,
                Err(error) => {
                    eprintln!("rotor replay: {}: {error}", path.display());
                    return ExitCode::from(2);
                }
            };
            let stop = file
                .violations
                .first()
                .map_or(StopOn::First, |v| StopOn::Guarantee(v.guarantee));
            (file.config, stop, Some(file.hash))
        }
        (None, Some(seed)) => (
            config_from(seed, &args.world),
            args.stop_at.unwrap_or(StopOn::First),
            None,
        ),
        (None, None) => {
            eprintln!("rotor replay: give a trace file or --seed S (see rotor check's output)");
            return ExitCode::from(2);
        }
    };
    let options = RunOptions::default()
        .with_trace(TraceMode::Full)
        .with_stop(stop);
    let outcome = run_config(config, &options);
    let file = TraceFile::from_outcome(&outcome, None);
    if args.json {
        println!("{}", file.to_json());
    } else {
        println!("{}", outcome.config.replay_command());
        for event in outcome.trace.events() {
            println!("{event}");
        }
        for violation in &outcome.violations {
            println!("VIOLATION: {violation}");
        }
        if outcome.violations.is_empty() {
            println!("no violation");
        }
        println!("trace hash {}", file.hash);
    }
    if let Some(expected) = expected {
        if expected != file.hash {
            eprintln!(
                "rotor replay: the trace differs from the file (hash {} != {expected}): was the simulator or the kernel changed since it was written?",
                file.hash
            );
            return ExitCode::from(2);
        }
        eprintln!("rotor replay: identical to the trace file (hash {expected})");
    }
    if outcome.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
