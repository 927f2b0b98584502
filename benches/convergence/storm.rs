//! One refresh storm: N worker processes, started and made ready first,
//! released at once by a shared barrier pipe, each resolving the same
//! expired credential; timed from the release until the last one reports
//! the token it holds.
//!
//! Workers are this bench binary re-executed as `__worker <kind> …`:
//!
//! - `rotor`: `rotor_fs::Rotor::token` (the library behind `rotor token`);
//! - `baseline`: [`BaselineHost::resolve`](crate::baseline), the seed's
//!   lock discipline;
//! - `cli`: `exec`s the real `rotor token --json` after the barrier, so its
//!   time includes exec, start-up and argument parsing;
//! - `fast`: calls `Rotor::token` on a fresh token in a loop (fast path).
//!
//! Barrier: every worker's stdin is a read end of one pipe whose only write
//! end the parent holds. A worker prints `ready`, then reads stdin to end of
//! file; dropping the write end wakes all of them at once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rotor_fs::Rotor;

use crate::baseline::BaselineHost;
use crate::{PROFILE, PROVIDER};

/// Which implementation the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// rotor's library, in pre-started processes.
    Rotor,
    /// The seed's lock discipline, in pre-started processes.
    Baseline,
    /// `rotor token --json`, exec'd at the release.
    Cli,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rotor => "rotor",
            Kind::Baseline => "baseline",
            Kind::Cli => "rotor-cli",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Rotor, Kind::Baseline, Kind::Cli]
            .into_iter()
            .find(|kind| kind.name() == text)
    }
}

/// What one worker reported.
#[derive(Clone, Debug)]
pub struct Report {
    /// The access token it holds, or why it holds none.
    pub result: Result<String, String>,
    /// cached, adopted-peer, refreshed, …
    pub outcome: String,
    /// When it held the token, ms after the release (from the worker's
    /// own `CLOCK_MONOTONIC` stamp; `None` for the CLI, which has none).
    pub held_at_ms: Option<f64>,
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the
/// machine, so a worker's stamp compares with the parent's.
pub fn monotonic_ns() -> u64 {
    // SAFETY: a zeroed timespec is valid; clock_gettime only writes it.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `now` is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Paths a worker needs.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// This bench binary (re-executed as workers).
    pub bench: PathBuf,
    /// The `rotor` binary.
    pub rotor: PathBuf,
}

/// A started worker that printed `ready`.
struct Ready {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

fn start(binaries: &Binaries, args: &[String], barrier: &std::io::PipeReader) -> Ready {
    let mut child = Command::new(&binaries.bench)
        .arg("__worker")
        .args(args)
        .stdin(Stdio::from(barrier.try_clone().expect("clone the barrier")))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a worker");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("worker ready line");
    assert_eq!(line.trim(), "ready", "a worker failed to start: {line:?}");
    Ready { child, stdout }
}

/// Reaps `child` with `wait4`, returning its peak RSS in KiB.
pub fn reap(child: Child) -> u64 {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unreaped child; `status` and `usage` are valid
    // for writes. std's `Child` is dropped without waiting afterwards.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(
        reaped,
        pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    drop(child);
    // Linux reports ru_maxrss in KiB.
    u64::try_from(usage.ru_maxrss).unwrap_or(0)
}

/// Parses a worker's result line (ours: `ok <access> <outcome> <mono_ns>`,
/// or `rotor token --json`'s).
pub fn parse_result(line: &str) -> (Result<String, String>, String) {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("ok ") {
        let mut parts = rest.split(' ');
        let access = parts.next().unwrap_or_default().to_owned();
        let outcome = parts.next().unwrap_or_default().to_owned();
        return (Ok(access), outcome);
    }
    if let Some(error) = line.strip_prefix("err ") {
        return (Err(error.to_owned()), "failed".into());
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(value) => match value["access_token"].as_str() {
            Some(access) => (
                Ok(access.to_owned()),
                value["outcome"].as_str().unwrap_or("?").to_owned(),
            ),
            None => (Err(value["error"].to_string()), "failed".into()),
        },
        Err(_) => (Err(format!("no result: {line:?}")), "failed".into()),
    }
}

/// Runs one storm of `processes` workers of `kind` on `state_dir`; returns
/// the time from the release to the last report, and the reports.
pub fn storm(
    binaries: &Binaries,
    kind: Kind,
    processes: usize,
    state_dir: &Path,
) -> (Duration, Vec<Report>) {
    let (reader, writer) = std::io::pipe().expect("barrier pipe");
    let args = vec![
        kind.name().to_owned(),
        state_dir.display().to_string(),
        binaries.rotor.display().to_string(),
    ];
    let mut ready: Vec<Ready> = (0..processes)
        .map(|_| start(binaries, &args, &reader))
        .collect();
    drop(reader);
    let released = Instant::now();
    let released_ns = monotonic_ns();
    drop(writer);
    let mut lines = Vec::with_capacity(processes);
    for worker in &mut ready {
        let mut line = String::new();
        let _ = worker.stdout.read_line(&mut line);
        lines.push(line);
    }
    let elapsed = released.elapsed();
    let reports = ready
        .into_iter()
        .zip(lines)
        .map(|(worker, line)| {
            drop(worker.stdout);
            reap(worker.child);
            let (result, outcome) = parse_result(&line);
            let held_at_ms = line
                .trim()
                .strip_prefix("ok ")
                .and_then(|rest| rest.split(' ').nth(2)?.parse::<u64>().ok())
                .map(|ns| ns.saturating_sub(released_ns) as f64 / 1e6);
            Report {
                result,
                outcome,
                held_at_ms,
            }
        })
        .collect();
    (elapsed, reports)
}

/// Starts `processes` fast-path workers that each call `Rotor::token` on a
/// fresh token for `duration`; returns the calls made and any failures.
pub fn fast_storm(
    binaries: &Binaries,
    processes: usize,
    state_dir: &Path,
    duration: Duration,
) -> (u64, Vec<String>) {
    let (reader, writer) = std::io::pipe().expect("barrier pipe");
    let args = vec![
        "fast".to_owned(),
        state_dir.display().to_string(),
        duration.as_millis().to_string(),
    ];
    let mut ready: Vec<Ready> = (0..processes)
        .map(|_| start(binaries, &args, &reader))
        .collect();
    drop(reader);
    drop(writer);
    let mut calls = 0;
    let mut failures = Vec::new();
    for worker in &mut ready {
        let mut line = String::new();
        let _ = worker.stdout.read_line(&mut line);
        match line.trim().strip_prefix("calls ") {
            Some(count) => calls += count.parse::<u64>().unwrap_or(0),
            None => failures.push(line.trim().to_owned()),
        }
    }
    for worker in ready {
        drop(worker.stdout);
        reap(worker.child);
    }
    (calls, failures)
}

/// The worker side: `__worker <kind> <state_dir> <rotor_bin | duration_ms>`.
pub fn worker(args: &[String]) -> ! {
    let [kind, state_dir, extra] = args else {
        eprintln!("usage: __worker <kind> <state_dir> <rotor_bin|duration_ms>");
        std::process::exit(2);
    };
    let state_dir = PathBuf::from(state_dir);
    let mut out = std::io::stdout().lock();
    let mut report = |line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    if kind == "fast" {
        let rotor = Rotor::open(&state_dir).expect("open the state directory");
        let duration = Duration::from_millis(extra.parse().unwrap_or(1_000));
        report("ready".into());
        wait_for_release();
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < duration {
            match rotor.token("main", PROVIDER, PROFILE) {
                Ok(granted) if granted.outcome == rotor_kernel::Outcome::Cached => calls += 1,
                Ok(granted) => {
                    report(format!("err not cached: {:?}", granted.outcome));
                    std::process::exit(1);
                }
                Err(error) => {
                    report(format!("err {error}"));
                    std::process::exit(1);
                }
            }
        }
        report(format!("calls {calls}"));
        std::process::exit(0);
    }
    match Kind::parse(kind) {
        Some(Kind::Rotor) => {
            let rotor = Rotor::open(&state_dir).expect("open the state directory");
            report("ready".into());
            wait_for_release();
            report(match rotor.token("main", PROVIDER, PROFILE) {
                Ok(granted) => format!(
                    "ok {} {} {}",
                    granted.access.expose(),
                    outcome_name(granted.outcome),
                    monotonic_ns()
                ),
                Err(error) => format!("err {error}"),
            });
        }
        Some(Kind::Baseline) => {
            let host = BaselineHost::new(&state_dir, PROVIDER, PROFILE);
            let mut rng = rand::rng();
            report("ready".into());
            wait_for_release();
            report(match host.resolve(&mut rng) {
                Ok(held) => format!("ok {} {} {}", held.access, held.outcome, monotonic_ns()),
                Err(error) => format!("err {error}"),
            });
        }
        Some(Kind::Cli) => {
            report("ready".into());
            wait_for_release();
            let error = Command::new(extra)
                .args(["token", "--json", "--state-dir"])
                .arg(&state_dir)
                .args(["--profile", PROFILE, "--provider", PROVIDER])
                .stdin(Stdio::null())
                .exec();
            report(format!("err exec {extra}: {error}"));
        }
        None => {
            eprintln!("unknown worker kind {kind}");
            std::process::exit(2);
        }
    }
    std::process::exit(0);
}

fn wait_for_release() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut sink);
}

fn outcome_name(outcome: rotor_kernel::Outcome) -> &'static str {
    use rotor_kernel::{Outcome, Source};
    match outcome {
        Outcome::Cached => "cached",
        Outcome::Adopted { from: Source::Main } => "adopted-main",
        Outcome::Adopted { from: Source::Peer } => "adopted-peer",
        Outcome::Refreshed => "refreshed",
    }
}

/// Counts of each outcome among `reports`.
pub fn outcomes(reports: &[Report]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for report in reports {
        *counts.entry(report.outcome.clone()).or_insert(0) += 1;
    }
    counts
}
