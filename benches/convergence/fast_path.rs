//! The fast path and the CLI's memory.
//!
//! Fast path: `rotor token` while the token is fresh. Each of P loops runs
//! the real CLI again and again (one process at a time per loop) and checks
//! that it answered `cached` (SPEC §3 step 1: returned before any lock).
//!
//! Peak memory: `ru_maxrss` from `wait4`. Linux keeps, across `execve`, the
//! peak of the image the child had before it (with `vfork`/`posix_spawn`,
//! the spawning parent's own peak): a child of a big process reports at
//! least the parent's size. So the CLI is measured through a small
//! intermediary, this bench binary started as `__measure <program> <args>`
//! (it spawns the program, reaps it with `wait4`, prints `rss <KiB>`), and
//! the same intermediary running `/bin/true` gives the floor of the method.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::storm::{parse_result, reap};
use crate::{PROFILE, PROVIDER};

/// What the loops measured.
#[derive(Clone, Debug, Default)]
pub struct CliFastPath {
    /// Calls completed (all `cached`).
    pub calls: u64,
    /// Wall time of the measurement.
    pub elapsed: Duration,
    /// Per-call latency, milliseconds, sorted.
    pub latencies_ms: Vec<f64>,
    /// Calls that failed or did not answer `cached`.
    pub failures: Vec<String>,
}

/// Runs one `rotor token --json`; returns its result line's parse and how
/// long it took.
pub fn run_cli(rotor: &Path, state_dir: &Path) -> (Result<String, String>, String, Duration) {
    let start = Instant::now();
    let mut child = Command::new(rotor)
        .args(["token", "--json", "--state-dir"])
        .arg(state_dir)
        .args(["--profile", PROFILE, "--provider", PROVIDER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rotor token");
    let mut output = String::new();
    let _ = child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut output);
    reap(child);
    let elapsed = start.elapsed();
    let (result, outcome) = parse_result(&output);
    (result, outcome, elapsed)
}

/// `loops` concurrent loops of `rotor token` for `duration`.
pub fn cli_fast_path(
    rotor: &Path,
    state_dir: &Path,
    loops: usize,
    duration: Duration,
) -> CliFastPath {
    let start = Instant::now();
    let results: Vec<CliFastPath> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..loops)
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = CliFastPath::default();
                    while start.elapsed() < duration {
                        let (result, outcome, took) = run_cli(rotor, state_dir);
                        match result {
                            Ok(_) if outcome == "cached" => {
                                mine.calls += 1;
                                mine.latencies_ms.push(took.as_secs_f64() * 1e3);
                            }
                            Ok(_) => mine.failures.push(format!("outcome {outcome}")),
                            Err(error) => mine.failures.push(error),
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a loop panicked"))
            .collect()
    });
    let mut total = CliFastPath {
        elapsed: start.elapsed(),
        ..CliFastPath::default()
    };
    for part in results {
        total.calls += part.calls;
        total.latencies_ms.extend(part.latencies_ms);
        total.failures.extend(part.failures);
    }
    total.latencies_ms.sort_by(f64::total_cmp);
    total
}

/// Runs `program args` through the `__measure` intermediary; returns the
/// program's first output line and its peak RSS in KiB.
pub fn measure(bench: &Path, program: &Path, args: &[String]) -> (String, u64) {
    let output = Command::new(bench)
        .arg("__measure")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn the measuring intermediary");
    let text = String::from_utf8_lossy(&output.stdout);
    let rss = text
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("rss "))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("the intermediary printed no rss line: {text:?}"));
    let first = text.lines().next().unwrap_or_default().to_owned();
    (first, rss)
}

/// The intermediary's side: spawn, reap with `wait4`, print `rss <KiB>`.
pub fn measure_worker(args: &[String]) -> ! {
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: __measure <program> [args...]");
        std::process::exit(2);
    };
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the measured program");
    let rss = reap(child);
    println!("rss {rss}");
    std::process::exit(0);
}
