//! `rotor check`: run a swarm of simulated worlds and check G1..G11.
//!
//! With no arguments it runs the default swarm (every knob drawn from each
//! seed) on every core and prints a summary. On a failure it shrinks the
//! counterexample, prints it one line per event, writes it as JSON and prints
//! the exact `rotor replay` command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rotor_sim::config::{in_range, parse_number, AGENTS_MAX, PROCESSES_MAX, REQUESTS_MAX};
use rotor_sim::shrink::shrink;
use rotor_sim::{
    sweep, ActorSet, Backend, Config, FaultSet, HostHooks, Overrides, RunOptions, RunOutcome,
    Stats, StopOn, SweepReport, TraceFile, TraceMode,
};

/// Seeds in the default swarm: under a minute in release mode on two cores.
pub const DEFAULT_SEEDS: u64 = 100_000;

/// How a world is shaped; every field left out is drawn from the seed.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct WorldArgs {
    /// Processes per world (1..=4).
    #[arg(long, value_parser = parse_processes)]
    pub processes: Option<u8>,
    /// Agents per process (1..=4); agent 0 of each process is a main agent.
    #[arg(long, value_parser = parse_agents)]
    pub agents: Option<u8>,
    /// Refresh-lock backend: advisory, lease or fenced-lease.
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<Backend>,
    /// Fault kinds, comma-separated (crash,pause,write-error,disk-full,
    /// lost-fsync,torn-write,clock-jump,not-sent,server-error,timeout,
    /// lost-response), `all` or `none`.
    #[arg(long, value_parser = parse_faults)]
    pub faults: Option<FaultSet>,
    /// Background actors, comma-separated (usage,relogin,logout,edit,
    /// foreign-login), `all` or `none`.
    #[arg(long, value_parser = parse_actors)]
    pub actors: Option<ActorSet>,
    /// Requests per agent in the safety phase (1..=6).
    #[arg(long, value_parser = parse_requests)]
    pub requests: Option<u8>,
    /// Drawn faults to skip, by index, as a bit mask (set by the shrinker).
    #[arg(long, value_parser = parse_mask)]
    pub fault_mask: Option<u64>,
    /// Also make every store read and write, and hold the refresh lock,
    /// with the shipped fs host code over a simulated disk, and fail where
    /// it disagrees with the simulator's store and lock models (slower; CI
    /// runs a sweep of it).
    #[arg(long)]
    pub shipped_host: bool,
}

impl WorldArgs {
    /// The overrides these arguments give.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            processes: self.processes,
            agents: self.agents,
            backend: self.backend,
            faults: self.faults,
            actors: self.actors,
            requests: self.requests,
            fault_mask: self.fault_mask,
            shipped_host: self.shipped_host,
        }
    }
}

fn parse_processes(text: &str) -> Result<u8, String> {
    let value = parse_number(text).map_err(|e| e.to_string())?;
    in_range("--processes", value, 1, PROCESSES_MAX as u64)
        .map(|v| v as u8)
        .map_err(|e| e.to_string())
}

fn parse_agents(text: &str) -> Result<u8, String> {
    let value = parse_number(text).map_err(|e| e.to_string())?;
    in_range("--agents", value, 1, AGENTS_MAX as u64)
        .map(|v| v as u8)
        .map_err(|e| e.to_string())
}

fn parse_requests(text: &str) -> Result<u8, String> {
    let value = parse_number(text).map_err(|e| e.to_string())?;
    in_range("--requests", value, 1, REQUESTS_MAX as u64)
        .map(|v| v as u8)
        .map_err(|e| e.to_string())
}

fn parse_backend(text: &str) -> Result<Backend, String> {
    Backend::parse(text).map_err(|e| e.to_string())
}

fn parse_faults(text: &str) -> Result<FaultSet, String> {
    FaultSet::parse_list(text).map_err(|e| e.to_string())
}

fn parse_actors(text: &str) -> Result<ActorSet, String> {
    ActorSet::parse_list(text).map_err(|e| e.to_string())
}

fn parse_mask(text: &str) -> Result<u64, String> {
    parse_number(text).map_err(|e| e.to_string())
}

/// Parses a seed (decimal or 0x hex).
pub fn parse_seed(text: &str) -> Result<u64, String> {
    parse_number(text).map_err(|e| e.to_string())
}

/// Arguments of `rotor check`.
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  rotor check                                  # the default swarm of 100,000 seeds\n",
    "  rotor check --seeds 1000 --processes 3 --faults torn-write,clock-jump --json\n",
    "  rotor check --exhaustive crash-faults        # every reachable state of a small world\n\n",
    "A violation prints a shrunk trace, the trace file, and the `rotor replay` command to rerun it.\n"
))]
pub struct CheckArgs {
    /// How many seeds to run.
    #[arg(long)]
    pub seeds: Option<u64>,
    /// The first seed (alone: run just this seed).
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Start from a seed drawn from the clock (printed), for fresh coverage.
    #[arg(long, conflicts_with = "seed")]
    pub fresh: bool,
    /// The world's shape; anything left out is drawn per seed (swarm).
    #[command(flatten)]
    pub world: WorldArgs,
    /// Run every seed twice and fail unless both traces hash the same.
    #[arg(long)]
    pub twice: bool,
    /// Fail unless every protocol branch and fault kind was hit.
    #[arg(long)]
    pub require_coverage: bool,
    /// Where failure traces are written (the simulator's and, with
    /// --exhaustive, the explorer's).
    #[arg(long, default_value = ".")]
    pub trace_dir: PathBuf,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Stop starting new seeds after this many seconds (CI's fresh seeds).
    #[arg(long)]
    pub max_seconds: Option<f64>,
    /// Print the summary as JSON on stdout (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Explore every reachable state of a named small world instead of
    /// sampling seeds: crash-faults, single-flight, identity or relogin.
    #[arg(long, value_parser = parse_world)]
    pub exhaustive: Option<String>,
    /// With --exhaustive: replay this path (the comma-separated choices a
    /// counterexample prints) instead of exploring.
    #[arg(long, requires = "exhaustive", value_parser = parse_path)]
    pub path: Option<StepPath>,
    /// With --exhaustive: explore every renaming of interchangeable
    /// processes separately instead of once (to compare the figures).
    #[arg(long, requires = "exhaustive")]
    pub no_symmetry: bool,
}

pub(crate) fn parse_world(text: &str) -> Result<String, String> {
    match rotor_sim::explore::ExploreConfig::preset(text) {
        Some(_) => Ok(text.to_string()),
        None => Err(format!(
            "unknown world {text:?}; expected one of {:?}",
            rotor_sim::explore::PRESETS
        )),
    }
}

/// A counterexample's path: the step chosen at each depth.
#[derive(Clone, Debug)]
pub struct StepPath(pub Vec<u32>);

pub(crate) fn parse_path(text: &str) -> Result<StepPath, String> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("a path is comma-separated step choices, not {part:?}"))
        })
        .collect::<Result<Vec<u32>, String>>()
        .map(StepPath)
}

/// `rotor check --exhaustive <world> --path ...` and `rotor replay
/// --exhaustive <world> --path ...`: replays one path of a named world with
/// the shipped host and prints its lines and what the checkers found.
pub(crate) fn replay_path(world: &str, choices: &[u32], shipped_host: bool) -> ExitCode {
    use rotor_sim::explore::{replay, ExploreConfig};
    let Some(preset) = ExploreConfig::preset(world) else {
        eprintln!("rotor check: unknown world {world:?}");
        return ExitCode::from(2);
    };
    let config = ExploreConfig {
        shipped_host,
        ..preset
    };
    match replay(&config, std::sync::Arc::new(rotor_sim::Shipped), choices) {
        Ok((lines, found)) => {
            for (i, line) in lines.iter().enumerate() {
                println!("{:>5}  {line}", i + 1);
            }
            for f in &found {
                println!("{} ({}): {}", f.guarantee, f.guarantee.title(), f.detail);
            }
            if found.iter().any(|f| !f.expected) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("rotor check: {error}");
            ExitCode::from(2)
        }
    }
}

/// `rotor check --exhaustive <world>`: explores a named world with the
/// shipped host (with symmetry reduction unless `--no-symmetry`); prints
/// TLC-style figures, the symmetry used, and the shortest counterexample
/// per violated guarantee, each written as an explorer trace in `trace_dir`.
fn run_exhaustive(world: &str, trace_dir: &Path, symmetry: bool, shipped_host: bool) -> ExitCode {
    use rotor_sim::explore::{explore, ExploreConfig};
    let Some(preset) = ExploreConfig::preset(world) else {
        eprintln!("rotor check: unknown world {world:?}");
        return ExitCode::from(2);
    };
    let config = ExploreConfig {
        symmetry,
        shipped_host,
        ..preset
    };
    let hooks: Arc<dyn HostHooks> = Arc::new(rotor_sim::Shipped);
    let report = explore(&config, hooks.clone());
    println!("rotor check --exhaustive {world}: {report}");
    for finding in &report.findings {
        println!("expected finding: {finding}");
    }
    for counterexample in &report.violations {
        print!(
            "{}",
            report_counterexample(world, &config, hooks.clone(), counterexample, trace_dir)
        );
    }
    if report.violations.is_empty() && !report.truncated {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes one counterexample of `world` as an explorer trace in `trace_dir`;
/// returns what to print: the counterexample, the file, and both replay
/// commands (of the file, and of the path alone).
pub(crate) fn report_counterexample(
    world: &str,
    config: &rotor_sim::explore::ExploreConfig,
    hooks: Arc<dyn HostHooks>,
    counterexample: &rotor_sim::explore::Counterexample,
    trace_dir: &Path,
) -> String {
    let file = rotor_sim::explore::ExploreTraceFile::new(world, config, hooks, counterexample);
    let path = trace_dir.join(file.file_name());
    let mut out = format!("FAILURE: {counterexample}\nreplay: {}\n", file.replay);
    out.push_str(&trace_line(&path, std::fs::write(&path, file.to_json())));
    out
}

/// Runs `rotor check`.
pub fn run(args: CheckArgs) -> ExitCode {
    if let Some(world) = args.exhaustive.as_deref() {
        return match &args.path {
            Some(path) => replay_path(world, &path.0, args.world.shipped_host),
            None => run_exhaustive(
                world,
                &args.trace_dir,
                !args.no_symmetry,
                args.world.shipped_host,
            ),
        };
    }
    let start = match (args.seed, args.fresh) {
        (Some(seed), _) => seed,
        (None, true) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let seed = rotor_sim::rng::Rng::new(nanos).next_u64();
            eprintln!("rotor check: fresh seeds start at {seed:#x}");
            seed
        }
        (None, false) => 0,
    };
    let count = match (args.seeds, args.seed) {
        (Some(count), _) => count,
        (None, Some(_)) => 1,
        (None, None) => DEFAULT_SEEDS,
    };
    let overrides = args.world.overrides();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    let bar = progress_bar(count, args.json);
    let began = Instant::now();
    let deadline = args
        .max_seconds
        .map(|seconds| began + std::time::Duration::from_secs_f64(seconds.max(0.0)));
    let report = parallel_sweep(
        start, count, &overrides, threads, args.twice, deadline, &bar,
    );
    bar.finish_and_clear();
    let elapsed = began.elapsed();
    let count = report.sweep.stats.seeds;
    let missing = report.sweep.coverage.missing();
    if args.json {
        print_json(&report, &missing, start, count, elapsed.as_secs_f64());
    } else {
        print_summary(
            &report.sweep.stats,
            start,
            count,
            elapsed.as_secs_f64(),
            threads,
        );
        if missing.is_empty() {
            println!("coverage: every protocol branch and fault kind was hit");
        } else {
            println!("coverage: never hit: {}", missing.join(", "));
        }
        for (seed, finding) in &report.sweep.findings {
            println!("expected finding (lease limit), seed {seed:#x}: {finding}");
        }
    }
    let mut failed = false;
    for (seed, first, second) in &report.nondeterministic {
        failed = true;
        eprintln!(
            "NONDETERMINISM: seed {seed:#x} gave trace hashes {first:016x} and {second:016x}"
        );
    }
    for outcome in first_per_guarantee(&report.sweep.failures) {
        failed = true;
        report_failure(outcome, &args.trace_dir, args.json);
    }
    if args.require_coverage && !missing.is_empty() {
        failed = true;
        eprintln!(
            "rotor check: coverage incomplete (never hit: {}); a sweep that never reaches a branch proves nothing about it",
            missing.join(", ")
        );
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn progress_bar(count: u64, json: bool) -> indicatif::ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(count);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} seeds ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// A sweep, plus the seeds whose two runs disagreed.
struct Report {
    sweep: SweepReport,
    nondeterministic: Vec<(u64, u64, u64)>,
}

/// Splits the seeds over `threads` workers; each seed runs alone, so the
/// result does not depend on the split.
fn parallel_sweep(
    start: u64,
    count: u64,
    overrides: &Overrides,
    threads: usize,
    twice: bool,
    deadline: Option<Instant>,
    bar: &indicatif::ProgressBar,
) -> Report {
    let done = AtomicU64::new(0);
    let options = RunOptions::default().with_trace(if twice {
        TraceMode::Hash
    } else {
        TraceMode::Off
    });
    let chunk = count.div_ceil(threads as u64).max(1);
    let results: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|worker| {
                let (done, options) = (&done, &options);
                scope.spawn(move || {
                    let from = worker * chunk;
                    let to = (from + chunk).min(count);
                    let in_time = move || deadline.is_none_or(|d| Instant::now() < d);
                    let seeds = (from..to)
                        .take_while(move |_| in_time())
                        .map(|i| start.wrapping_add(i));
                    let mut nondeterministic = Vec::new();
                    let sweep = sweep(seeds, overrides, options, 16, |_| {
                        let total = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if total % 256 == 0 || total == count {
                            bar.set_position(total);
                        }
                    });
                    if twice {
                        let ran = sweep.stats.seeds;
                        for i in from..from + ran {
                            let seed = start.wrapping_add(i);
                            let a = rotor_sim::run_seed(seed, overrides, options);
                            let b = rotor_sim::run_seed(seed, overrides, options);
                            if a.trace.hash() != b.trace.hash() {
                                nondeterministic.push((seed, a.trace.hash(), b.trace.hash()));
                            }
                        }
                    }
                    Report {
                        sweep,
                        nondeterministic,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sweep worker panicked"))
            .collect()
    });
    let mut total = Report {
        sweep: SweepReport::default(),
        nondeterministic: Vec::new(),
    };
    for part in results {
        total.sweep.stats.merge(&part.sweep.stats);
        total.sweep.coverage.merge(&part.sweep.coverage);
        total.sweep.failures.extend(part.sweep.failures);
        total.sweep.findings.extend(part.sweep.findings);
        total.nondeterministic.extend(part.nondeterministic);
    }
    total
}

fn print_summary(stats: &Stats, start: u64, count: u64, seconds: f64, threads: usize) {
    println!(
        "rotor check: {count} seeds from {start:#x} in {seconds:.1} s on {threads} thread(s) ({:.0} seeds/s)",
        count as f64 / seconds.max(1e-9)
    );
    print!("{stats}");
}

fn print_json(report: &Report, missing: &[&str], start: u64, count: u64, seconds: f64) {
    let failures: Vec<_> = first_per_guarantee(&report.sweep.failures)
        .into_iter()
        .map(|o| {
            serde_json::json!({
                "seed": o.config.seed,
                "violations": o.violations,
                "replay": o.config.replay_command(),
            })
        })
        .collect();
    let faults: serde_json::Map<String, serde_json::Value> = rotor_sim::FaultKind::ALL
        .iter()
        .map(|kind| {
            let count = report.sweep.stats.faults[*kind as usize];
            (kind.name().to_string(), serde_json::Value::from(count))
        })
        .collect();
    let summary = serde_json::json!({
        "faults_by_kind": faults,
        "start_seed": start,
        "seeds": count,
        "seconds": seconds,
        "stats": report.sweep.stats,
        "coverage_missing": missing,
        "failures": failures,
        "expected_findings": report.sweep.findings,
        "nondeterministic_seeds": report.nondeterministic.iter().map(|n| n.0).collect::<Vec<_>>(),
    });
    println!("{summary:#}");
}

/// The first failing run of each guarantee, in seed order.
fn first_per_guarantee(failures: &[RunOutcome]) -> Vec<&RunOutcome> {
    let mut sorted: Vec<&RunOutcome> = failures.iter().collect();
    sorted.sort_by_key(|o| o.config.seed);
    let mut seen = Vec::new();
    sorted
        .into_iter()
        .filter(|o| {
            let guarantee = o.first().map(|v| v.guarantee);
            if seen.contains(&guarantee) {
                false
            } else {
                seen.push(guarantee);
                true
            }
        })
        .collect()
}

/// Shrinks one failure, prints it and writes its trace.
fn report_failure(outcome: &RunOutcome, trace_dir: &std::path::Path, json: bool) {
    let Some(violation) = outcome.first() else {
        return;
    };
    let options = RunOptions::default();
    let shrunk = shrink(&outcome.config, violation.guarantee, &options, 400);
    let file = TraceFile::from_outcome(&shrunk.outcome, Some(shrunk.original_events));
    let path = trace_dir.join(format!(
        "rotor-trace-{:#x}-{}.json",
        outcome.config.seed, violation.guarantee
    ));
    let written = std::fs::write(&path, file.to_json());
    let mut out = String::new();
    out.push_str(&format!(
        "\nFAILURE: seed {:#x} violates {violation}\n",
        outcome.config.seed
    ));
    out.push_str(&format!(
        "shrunk from {} to {} events ({} runs):\n",
        shrunk.original_events,
        shrunk.outcome.trace.len(),
        shrunk.runs
    ));
    for event in shrunk.outcome.trace.events() {
        out.push_str(&format!("{event}\n"));
    }
    for v in &shrunk.outcome.violations {
        out.push_str(&format!("  {v}\n"));
    }
    out.push_str(&format!(
        "replay: {} --stop-at {}\n",
        shrunk.outcome.config.replay_command(),
        violation.guarantee
    ));
    out.push_str(&trace_line(&path, written));
    if json {
        eprint!("{out}");
    } else {
        print!("{out}");
    }
}

/// Builds the configuration `rotor replay` flags describe.
pub fn config_from(seed: u64, world: &WorldArgs) -> Config {
    Config::derive(seed, &world.overrides())
}

/// How `--stop-at` reads a guarantee.
pub fn parse_guarantee(text: &str) -> Result<StopOn, String> {
    use rotor_sim::Guarantee;
    let wanted = text.trim().to_ascii_lowercase();
    Guarantee::ALL
        .iter()
        .find(|g| g.to_string().to_ascii_lowercase() == wanted)
        .map(|g| StopOn::Guarantee(*g))
        .ok_or_else(|| format!("unknown guarantee {text:?}: use G1..G8, G11 or liveness"))
}

/// The line that says where a trace file went and how to replay it, or why
/// it could not be written.
fn trace_line(path: &Path, written: std::io::Result<()>) -> String {
    match written {
        Ok(()) => format!(
            "trace:  {} (replay: rotor replay {})\n",
            path.display(),
            path.display()
        ),
        Err(error) => format!("trace not written to {}: {error}\n", path.display()),
    }
}
