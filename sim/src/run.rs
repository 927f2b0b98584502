//! Running seeds: one run, a sweep of many, and the trace file a failure
//! leaves behind for `rotor replay trace.json`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Overrides};
use crate::coverage::{Coverage, Stats};
use crate::guarantee::Violation;
use crate::hooks::{HostHooks, Shipped};
use crate::trace::{Event, TraceMode};
use crate::world::{RunOutcome, StopOn, World};

/// How to run: which host, how much trace, when to stop.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The host's hooks ([`Shipped`] unless a test builds a broken host).
    pub hooks: Arc<dyn HostHooks>,
    /// How much of the trace to keep.
    pub trace: TraceMode,
    /// When to stop early.
    pub stop: StopOn,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            hooks: Arc::new(Shipped),
            trace: TraceMode::Off,
            stop: StopOn::First,
        }
    }
}

impl RunOptions {
    /// These options with another trace mode.
    pub fn with_trace(&self, trace: TraceMode) -> Self {
        RunOptions {
            trace,
            ..self.clone()
        }
    }

    /// These options with another stop rule.
    pub fn with_stop(&self, stop: StopOn) -> Self {
        RunOptions {
            stop,
            ..self.clone()
        }
    }
}

/// Runs one configuration.
pub fn run_config(config: Config, options: &RunOptions) -> RunOutcome {
    World::new(config, options.hooks.clone(), options.trace, options.stop).run()
}

/// Runs one seed (swarm-drawn configuration plus `overrides`).
pub fn run_seed(seed: u64, overrides: &Overrides, options: &RunOptions) -> RunOutcome {
    run_config(Config::derive(seed, overrides), options)
}

/// The result of many seeds.
#[derive(Clone, Debug, Default)]
pub struct SweepReport {
    /// Counters summed over every seed.
    pub stats: Stats,
    /// Branches and faults hit by any seed.
    pub coverage: Coverage,
    /// The failing runs (at most `failures_max`, traces off).
    pub failures: Vec<RunOutcome>,
    /// The first expected finding per seed that had one (lease limit).
    pub findings: Vec<(u64, Violation)>,
}

/// Runs `seeds`, calling `progress` after each with the count so far.
pub fn sweep(
    seeds: impl IntoIterator<Item = u64>,
    overrides: &Overrides,
    options: &RunOptions,
    failures_max: usize,
    mut progress: impl FnMut(u64),
) -> SweepReport {
    let mut report = SweepReport::default();
    let mut done = 0u64;
    for seed in seeds {
        let outcome = run_seed(seed, overrides, options);
        report.stats.merge(&outcome.stats);
        report.coverage.merge(&outcome.coverage);
        if let Some(finding) = outcome.findings.first() {
            if report.findings.len() < failures_max {
                report.findings.push((seed, finding.clone()));
            }
        }
        if !outcome.violations.is_empty() && report.failures.len() < failures_max {
            report.failures.push(outcome);
        }
        done += 1;
        progress(done);
    }
    report
}

/// A failure written to disk: everything `rotor replay trace.json` needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceFile {
    /// Format version.
    pub rotor_trace: u32,
    /// The exact configuration (seed, overrides, drawn knobs).
    pub config: Config,
    /// The command line that rebuilds this configuration from its seed.
    pub replay: String,
    /// The violations seen.
    pub violations: Vec<Violation>,
    /// Events before shrinking, if this trace was shrunk.
    pub shrunk_from_events: Option<u32>,
    /// The trace hash, hex.
    pub hash: String,
    /// One entry per event.
    pub events: Vec<Event>,
}

/// The trace file format version.
pub const TRACE_VERSION: u32 = 1;

impl TraceFile {
    /// The trace file of a run made with [`TraceMode::Full`].
    pub fn from_outcome(outcome: &RunOutcome, shrunk_from_events: Option<u32>) -> Self {
        TraceFile {
            rotor_trace: TRACE_VERSION,
            config: outcome.config.clone(),
            replay: outcome.config.replay_command(),
            violations: outcome.violations.clone(),
            shrunk_from_events,
            hash: format!("{:016x}", outcome.trace.hash()),
            events: outcome.trace.events().to_vec(),
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // Every field serializes: plain data, string map keys.
        serde_json::to_string_pretty(self).expect("bug: a trace file did not serialize")
    }

    /// Reads a trace file.
    pub fn from_json(text: &str) -> Result<TraceFile, String> {
        let file: TraceFile =
            serde_json::from_str(text).map_err(|e| format!("not a rotor trace file: {e}"))?;
        if file.rotor_trace != TRACE_VERSION {
            return Err(format!(
                "trace format version {} is not supported (this rotor reads version {TRACE_VERSION})",
                file.rotor_trace
            ));
        }
        Ok(file)
    }
}
