//! `rotor replay`: rerun one simulated world exactly, from its seed and shape
//! (the command `rotor check` prints) or from a trace file it wrote.
//!
//! A trace file is the simulator's (a seed and a configuration: the run is
//! rebuilt and its trace hash compared) or the explorer's (a path in a world:
//! the path is re-walked with the shipped host and must give the file's lines
//! and violated guarantees). Exit codes: 0 no violation, 1 the violation is
//! there, 2 the file does not reproduce or cannot be read.

use std::path::PathBuf;
use std::process::ExitCode;

use rotor_sim::explore::{read_trace_file, AnyTraceFile, ExploreConfig, ExploreTraceFile};
use rotor_sim::{run_config, HostHooks, RunOptions, Shipped, StopOn, TraceFile, TraceMode};

use super::check::{
    config_from, parse_guarantee, parse_path, parse_seed, parse_world, replay_path, StepPath,
    WorldArgs,
};

/// Arguments of `rotor replay`.
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples (paste the command `rotor check` printed):\n",
    "  rotor replay --seed 0x102f0f1 --processes 2 --agents 2 --backend advisory --faults pause\n",
    "  rotor replay target/sim-traces/rotor-trace-<seed>-<G>.json\n",
    "  rotor replay --exhaustive crash-faults --path <choices as printed>\n"
))]
pub struct ReplayArgs {
    /// A trace file written by `rotor check` or `rotor check --exhaustive`
    /// (instead of --seed).
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
        return replay_path(world, &path.0, args.world.shipped_host);
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
            let file: TraceFile = match read_trace_file(&text) {
                Ok(AnyTraceFile::Simulator(file)) => *file,
                Ok(AnyTraceFile::Explorer(file)) => {
                    return replay_explorer_file(&path.display().to_string(), &file, args.json)
                }
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

/// Replays an explorer trace with the shipped host; exit 1 when it
/// reproduces (the violation is there), 2 when it does not.
fn replay_explorer_file(name: &str, file: &ExploreTraceFile, json: bool) -> ExitCode {
    match replay_explorer(file) {
        Ok(printed) => {
            if json {
                println!("{}", file.to_json());
            } else {
                print!("{printed}");
            }
            eprintln!(
                "rotor replay: {name} reproduces: the same {} steps and violations",
                file.path.len()
            );
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("rotor replay: {name}: {message}");
            ExitCode::from(2)
        }
    }
}

/// Re-walks an explorer trace's path on its world with the shipped host:
/// the lines and violations to print when the replay reproduces the file,
/// else why it does not.
pub(crate) fn replay_explorer(file: &ExploreTraceFile) -> Result<String, String> {
    let mut notes = String::new();
    if file.host != Shipped.name() {
        notes.push_str(&format!(
            " (found with the host {:?}; rotor replay runs the shipped host)",
            file.host
        ));
    }
    if ExploreConfig::preset(&file.world).as_ref() != Some(&file.config) {
        notes.push_str(&format!(
            " (not the named world {:?} of this rotor: the file's own world was walked)",
            file.world
        ));
    }
    let hooks: std::sync::Arc<dyn HostHooks> = std::sync::Arc::new(Shipped);
    let (lines, violations) = file
        .replay(hooks)
        .map_err(|error| format!("does not reproduce: {error}{notes}"))?;
    let mut out = format!("{}\n", file.replay);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(&format!("{:>5}  {line}\n", i + 1));
    }
    for v in &violations {
        out.push_str(&format!(
            "VIOLATION: {} ({}): {}\n",
            v.guarantee,
            v.guarantee.title(),
            v.detail
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rotor_sim::explore::{replay, Counterexample, ExploreConfig, Found};
    use rotor_sim::Guarantee;

    use super::*;
    use crate::cli::check::report_counterexample;

    /// `rotor check --exhaustive crash-faults` writes a counterexample as an
    /// explorer trace and prints both replay commands; `rotor replay <file>`
    /// reads it as one and re-walks it. The shipped host violates nothing
    /// there, so a file claiming G8 at the end of a real path is reported as
    /// not reproducing, with exit 2.
    #[test]
    fn replay_of_a_hand_made_explorer_trace_reports_it_does_not_reproduce_g8() {
        let world = "crash-faults";
        let config = ExploreConfig::preset(world).expect("a preset");
        let choices = vec![0, 0, 0];
        let (lines, _) = replay(&config, Arc::new(Shipped), &choices).expect("a real path");
        let counterexample = Counterexample {
            found: Found {
                guarantee: Guarantee::G8,
                detail: "hand-made".into(),
                expected: false,
            },
            choices,
            lines,
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let printed = report_counterexample(
            world,
            &config,
            Arc::new(Shipped),
            &counterexample,
            dir.path(),
        );
        let path = dir.path().join("rotor-explore-crash-faults-G8.json");
        assert!(
            printed.contains("replay: rotor replay --exhaustive crash-faults --path 0,0,0\n"),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("(replay: rotor replay {})", path.display())),
            "{printed}"
        );
        // The shipped host found no violation on this path: the file says so
        // until the claim is written into it by hand.
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("the file was written"))
                .expect("JSON");
        assert_eq!(value["violations"], serde_json::json!([]));
        value["violations"] =
            serde_json::json!([{ "guarantee": "G8", "detail": "hand-made", "expected": false }]);
        std::fs::write(&path, value.to_string()).expect("the file is rewritten");

        let Ok(AnyTraceFile::Explorer(file)) =
            read_trace_file(&std::fs::read_to_string(&path).expect("read"))
        else {
            panic!("not read as an explorer trace");
        };
        let error = replay_explorer(&file).expect_err("the shipped host reproduced G8");
        assert!(
            error.starts_with(
                "does not reproduce: the file records violations of [G8], the replay found []"
            ),
            "{error}"
        );
        assert_eq!(run(replay_of(path)), ExitCode::from(2));
    }

    /// `rotor replay <path>`.
    fn replay_of(path: std::path::PathBuf) -> ReplayArgs {
        ReplayArgs {
            trace: Some(path),
            seed: None,
            world: WorldArgs::default(),
            stop_at: None,
            json: false,
            exhaustive: None,
            path: None,
        }
    }

    /// A file that is no trace is refused with exit 2, not a panic.
    #[test]
    fn replay_of_garbage_is_refused() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("garbage.json");
        std::fs::write(&path, "{\"hello\": 1}").expect("written");
        assert_eq!(run(replay_of(path)), ExitCode::from(2));
    }
}
