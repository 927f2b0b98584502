//! Whole-process benchmarks of rotor against the seed's lock discipline.
//!
//! 1. **Convergence.** N processes (1, 2, 8, 32, 64) all need the refresh at
//!    once; the token endpoint answers after a fixed 50 ms on loopback. The
//!    time from the simultaneous release until all N hold the new token, and
//!    the endpoint calls, for rotor (`Rotor::token` in pre-started
//!    processes), the baseline (the seed's `O_EXCL` lock file with retries
//!    and jittered back-off, [`baseline`]) and the real `rotor token` CLI
//!    (exec'd at the release). Runs of the three are interleaved so that
//!    machine noise hits them alike.
//! 2. **Fast path.** `rotor token` calls per second from 8 concurrent
//!    loops while the token is fresh, and the same through the library.
//! 3. **Memory.** Peak RSS of one `rotor token` process, cached and
//!    refreshing.
//!
//! Run: `cargo bench --bench convergence` (a few minutes), or
//! `cargo bench --bench convergence -- --test` (quick: N = 2, one run; CI).
//! Environment overrides: `ROTOR_BENCH_NS=1,2,8`, `ROTOR_BENCH_RUNS=10`,
//! `ROTOR_BENCH_BASELINE_RUNS=5`, `ROTOR_BENCH_FAST_MS=3000`,
//! `ROTOR_BENCH_LATENCY_MS=50`.
//!
//! The bench only reports. It exits non-zero when a correctness check
//! fails (a rotor worker without the new token, or more than one endpoint
//! call per storm: G1, G2), never because of a time.

mod baseline;
mod fast_path;
mod report;
mod server;
mod stats;
mod storm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rotor_fs::settings::{AuthMethod, EndpointSettings, HttpSettings};
use rotor_fs::Rotor;
use rotor_kernel::Credential;

use crate::report::{machine, print_convergence_table, Row};
use crate::server::TokenServer;
use crate::stats::Summary;
use crate::storm::{Binaries, Kind};

pub const PROVIDER: &str = "acme";
pub const PROFILE: &str = "acme:default";
/// The endpoint's fixed latency (`ROTOR_BENCH_LATENCY_MS` overrides it).
pub const LATENCY_MS_DEFAULT: u64 = 50;

pub struct Config {
    pub quick: bool,
    pub processes: Vec<usize>,
    pub runs: usize,
    pub baseline_runs: usize,
    pub fast: Duration,
    pub fast_loops: usize,
    pub latency: Duration,
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

impl Config {
    fn from_args(args: &[String]) -> Config {
        let quick = args.iter().any(|a| a == "--test");
        let processes = std::env::var("ROTOR_BENCH_NS")
            .ok()
            .map(|text| {
                text.split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_else(|| {
                if quick {
                    vec![2]
                } else {
                    vec![1, 2, 8, 32, 64]
                }
            });
        let runs =
            env_number("ROTOR_BENCH_RUNS").map_or(if quick { 1 } else { 10 }, |n| n as usize);
        Config {
            quick,
            processes,
            runs,
            baseline_runs: env_number("ROTOR_BENCH_BASELINE_RUNS").map_or(runs, |n| n as usize),
            fast: Duration::from_millis(env_number("ROTOR_BENCH_FAST_MS").unwrap_or(if quick {
                300
            } else {
                3_000
            })),
            fast_loops: 8,
            latency: Duration::from_millis(
                env_number("ROTOR_BENCH_LATENCY_MS").unwrap_or(LATENCY_MS_DEFAULT),
            ),
        }
    }
}

/// A state directory whose main store holds one credential of `PROFILE`,
/// expired or fresh, refreshable once at `server`.
fn prepare(root: &Path, name: &str, server: &TokenServer, fresh: bool) -> PathBuf {
    let state = root.join(name);
    let rotor = Rotor::open(&state).expect("open a state directory");
    let refresh = format!("rt-{name}");
    server.accept(&refresh);
    let expires_at_ms = if fresh {
        baseline::epoch_ms() + 3_600_000
    } else {
        1
    };
    let mut credential = Credential::oauth(PROVIDER, format!("at-{name}"), refresh, expires_at_ms);
    EndpointSettings::Http(HttpSettings {
        token_url: server.url.clone(),
        client_id: "rotor-bench".into(),
        client_secret: None,
        auth_method: AuthMethod::None,
        scope: None,
        ca_file: None,
    })
    .install(&mut credential);
    rotor
        .login("main", PROFILE, credential)
        .expect("log in the bench credential");
    state
}

fn run_storm(
    binaries: &Binaries,
    server: &TokenServer,
    root: &Path,
    kind: Kind,
    processes: usize,
    run: usize,
    row: &mut Row,
) {
    let name = format!("{}-{processes}-{run}", kind.name());
    let state = prepare(root, &name, server, false);
    let before = server.counters();
    let (elapsed, reports) = storm::storm(binaries, kind, processes, &state);
    let after = server.counters();
    let expected = server.last_access();
    row.elapsed_ms.push(elapsed.as_secs_f64() * 1e3);
    row.calls.push(after.received - before.received);
    row.reused += after.reused - before.reused;
    for report in &reports {
        match &report.result {
            Ok(access) if Some(access) == expected.as_ref() => {}
            Ok(_) => row.wrong_token += 1,
            Err(error) => row.failures.push(error.clone()),
        }
    }
    let leader = reports
        .iter()
        .find(|r| r.outcome == "refreshed")
        .and_then(|r| r.held_at_ms);
    let last = reports
        .iter()
        .filter_map(|r| r.held_at_ms)
        .max_by(f64::total_cmp);
    if let (Some(leader), Some(last)) = (leader, last) {
        row.leader_ms.push(leader);
        if processes > 1 {
            row.handoff_ms
                .push((last - leader) / (processes - 1) as f64);
        }
    }
    for (outcome, count) in storm::outcomes(&reports) {
        *row.outcomes.entry(outcome).or_insert(0) += count;
    }
    let _ = std::fs::remove_dir_all(&state);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("__worker") => storm::worker(&args[2..]),
        Some("__measure") => fast_path::measure_worker(&args[2..]),
        _ => {}
    }
    baseline::self_check();
    stats::self_check();
    let config = Config::from_args(&args);
    let binaries = Binaries {
        bench: std::env::current_exe().expect("the bench binary's path"),
        rotor: PathBuf::from(env!("CARGO_BIN_EXE_rotor")),
    };
    let temp = tempfile::tempdir().expect("a temp dir");
    let root = temp.path();
    let server = TokenServer::start(config.latency).expect("start the token endpoint");
    println!(
        "rotor convergence bench ({}), machine: {}, endpoint latency {} ms, temp dir {}",
        if config.quick { "quick" } else { "full" },
        machine(),
        config.latency.as_millis(),
        root.display()
    );
    let mut problems = Vec::new();

    // 1. Convergence.
    let kinds = [Kind::Rotor, Kind::Baseline, Kind::Cli];
    let mut rows: BTreeMap<(usize, Kind), Row> = BTreeMap::new();
    for &processes in &config.processes {
        for run in 0..config.runs.max(config.baseline_runs) {
            for kind in kinds {
                let runs = if kind == Kind::Baseline {
                    config.baseline_runs
                } else {
                    config.runs
                };
                if run < runs {
                    let row = rows.entry((processes, kind)).or_default();
                    run_storm(&binaries, &server, root, kind, processes, run, row);
                }
            }
        }
        for kind in kinds {
            let row = &rows[&(processes, kind)];
            let summary = Summary::of(&row.elapsed_ms);
            println!(
                "N={processes:>2} {:<9} {summary}  calls/storm {}  outcomes {:?}  failures {}",
                kind.name(),
                row.calls_text(),
                row.outcomes,
                row.failures.len()
            );
            if !row.leader_ms.is_empty() && !row.handoff_ms.is_empty() {
                println!(
                    "      {:<9} leader holds at median {:.1} ms; per hand-off median {:.2} ms",
                    "",
                    Summary::of(&row.leader_ms).median,
                    Summary::of(&row.handoff_ms).median
                );
            }
            if kind != Kind::Baseline {
                for problem in row.correctness_problems() {
                    problems.push(format!("N={processes} {}: {problem}", kind.name()));
                }
            } else if !row.failures.is_empty() {
                println!("      baseline failures: {:?}", row.failures);
            }
        }
    }
    print_convergence_table(&config, &rows);

    // 2. Fast path.
    let fresh = prepare(root, "fast", &server, true);
    let untouched_before = untouched_files(&fresh);
    let cli = fast_path::cli_fast_path(&binaries.rotor, &fresh, config.fast_loops, config.fast);
    let cli_rate = cli.calls as f64 / cli.elapsed.as_secs_f64();
    let latency = Summary::of(&cli.latencies_ms);
    println!(
        "\nfast path, `rotor token` CLI, {} loops for {:.1} s: {} calls, {cli_rate:.0} calls/s; per call {latency}",
        config.fast_loops,
        cli.elapsed.as_secs_f64(),
        cli.calls
    );
    if !cli.failures.is_empty() || cli.calls == 0 {
        problems.push(format!(
            "fast path CLI: {} calls, failures {:?}",
            cli.calls, cli.failures
        ));
    }
    let (lib_calls, lib_failures) =
        storm::fast_storm(&binaries, config.fast_loops, &fresh, config.fast);
    let lib_rate = lib_calls as f64 / config.fast.as_secs_f64();
    println!(
        "fast path, `Rotor::token` in {} processes for {:.1} s: {lib_calls} calls, {lib_rate:.0} calls/s",
        config.fast_loops,
        config.fast.as_secs_f64()
    );
    if !lib_failures.is_empty() || lib_calls == 0 {
        problems.push(format!(
            "fast path library: {lib_calls} calls, failures {lib_failures:?}"
        ));
    }

    // Independent of the outcomes the calls reported: no refresh lock was
    // taken (taking it writes the holder line into the lock file) and no
    // store was written.
    if untouched_files(&fresh) != untouched_before {
        problems.push("fast path: the refresh lock file or the store changed".into());
    } else {
        println!(
            "fast path: refresh lock file and store unchanged (no lock taken, nothing written)"
        );
    }

    // 3. Memory.
    let token_args = |state: &Path| -> Vec<String> {
        vec![
            "token".into(),
            "--json".into(),
            "--state-dir".into(),
            state.display().to_string(),
            "--profile".into(),
            PROFILE.into(),
            "--provider".into(),
            PROVIDER.into(),
        ]
    };
    let (_, floor_kib) = fast_path::measure(&binaries.bench, Path::new("/bin/true"), &[]);
    let mut cached_kib = 0;
    for _ in 0..3 {
        let (line, kib) = fast_path::measure(&binaries.bench, &binaries.rotor, &token_args(&fresh));
        check_outcome(&line, "cached", &mut problems);
        cached_kib = cached_kib.max(kib);
    }
    let mut refreshed_kib = 0;
    for i in 0..3 {
        let state = prepare(root, &format!("memory-{i}"), &server, false);
        let (line, kib) = fast_path::measure(&binaries.bench, &binaries.rotor, &token_args(&state));
        check_outcome(&line, "refreshed", &mut problems);
        refreshed_kib = refreshed_kib.max(kib);
    }
    println!(
        "peak RSS of `rotor token`: cached {cached_kib} KiB, refreshing {refreshed_kib} KiB \
         (method floor, /bin/true through the same intermediary: {floor_kib} KiB)"
    );

    if problems.is_empty() {
        println!("\ncorrectness checks passed (every rotor worker held the new token; one endpoint call per storm: G1, G2)");
    } else {
        for problem in &problems {
            eprintln!("CHECK FAILED: {problem}");
        }
        std::process::exit(1);
    }
}

/// Modification times of the refresh lock file and the main store.
fn untouched_files(state: &Path) -> Vec<Option<std::time::SystemTime>> {
    let layout = rotor_fs::Layout::new(state);
    let paths = [
        layout.lock_path(&rotor_kernel::LockKey::new(PROVIDER, PROFILE)),
        layout.store_path(&rotor_fs::AgentId::main()),
    ];
    paths
        .iter()
        .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .collect()
}

fn check_outcome(line: &str, expected: &str, problems: &mut Vec<String>) {
    let (result, outcome) = storm::parse_result(line);
    if result.is_err() || outcome != expected {
        problems.push(format!("memory run: expected {expected}, got {line:?}"));
    }
}
