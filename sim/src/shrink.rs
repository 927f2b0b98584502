//! Shrinking a failing run to a short counterexample.
//!
//! Greedy, like QuickCheck's: try a smaller variant of the configuration;
//! keep it if it still violates the same guarantee in fewer events; repeat
//! until nothing smaller fails. The variants: one process fewer, one agent
//! fewer, one request fewer, one fault kind or background actor removed, one
//! drawn fault masked (the fault stream is separate, so masking one fault
//! does not shift the others), and a handful of other seeds with the same
//! shape. Every run stops at the violation, so the trace also ends there.

use crate::config::{ActorKind, ActorSet, Config, FaultKind, FaultSet};
use crate::guarantee::Guarantee;
use crate::rng::Rng;
use crate::run::{run_config, RunOptions};
use crate::trace::TraceMode;
use crate::world::{RunOutcome, StopOn};

/// A shrunk counterexample.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The shrunk run, with its full trace.
    pub outcome: RunOutcome,
    /// Events in the original run, up to the violation.
    pub original_events: u32,
    /// Runs the shrinker made.
    pub runs: u32,
}

/// Shrinks `config`, which violates `target` under `options`' hooks, within
/// `runs_max` runs.
pub fn shrink(config: &Config, target: Guarantee, options: &RunOptions, runs_max: u32) -> Shrunk {
    let probe = options
        .with_trace(TraceMode::Hash)
        .with_stop(StopOn::Guarantee(target));
    let mut runs = 1u32;
    let first = run_config(config.clone(), &probe);
    let original_events = first.trace.len();
    let mut best = config.clone();
    let mut best_events = if first.violated(target) {
        original_events
    } else {
        u32::MAX
    };
    let derivable = *config == Config::derive(config.seed, &config.as_overrides());
    let mut improved = best_events != u32::MAX;
    while improved && runs < runs_max {
        improved = false;
        for candidate in candidates(&best, derivable) {
            if runs >= runs_max {
                break;
            }
            runs += 1;
            let outcome = run_config(candidate.clone(), &probe);
            if outcome.violated(target) && outcome.trace.len() < best_events {
                best_events = outcome.trace.len();
                best = candidate;
                improved = true;
                break;
            }
        }
    }
    let outcome = run_config(
        best,
        &options
            .with_trace(TraceMode::Full)
            .with_stop(StopOn::Guarantee(target)),
    );
    Shrunk {
        outcome,
        original_events,
        runs: runs + 1,
    }
}

/// Smaller variants of `config`, most promising first: a smaller shape with
/// the same seed and then with other seeds (a smaller world draws differently,
/// so the same seed rarely fails the same way), then single faults, actors and
/// drawn faults removed, then other seeds of the same shape.
fn candidates(config: &Config, derivable: bool) -> Vec<Config> {
    let reseed = |base: &Config, seed: u64| {
        let mut candidate = if derivable {
            Config::derive(seed, &base.as_overrides())
        } else {
            Config {
                seed,
                ..base.clone()
            }
        };
        candidate.fault_mask = 0;
        candidate
    };
    let mut seeds = Rng::new(config.seed).fork(0x5eed);
    let mut out = Vec::new();
    let shapes: [&dyn Fn(&mut Config); 5] = [
        &|c| c.processes = c.processes.saturating_sub(1).max(1),
        &|c| c.agents = c.agents.saturating_sub(1).max(1),
        &|c| c.actors = ActorSet::none(),
        &|c| c.faults = FaultSet::none(),
        &|c| c.requests = 1,
    ];
    for shape in shapes {
        let mut smaller = config.clone();
        shape(&mut smaller);
        if smaller == *config {
            continue;
        }
        out.push(smaller.clone());
        for _ in 0..SEEDS_PER_SHAPE {
            out.push(reseed(&smaller, seeds.next_u64()));
        }
    }
    let mut push = |change: &dyn Fn(&mut Config)| {
        let mut candidate = config.clone();
        change(&mut candidate);
        if candidate != *config {
            out.push(candidate);
        }
    };
    for kind in FaultKind::ALL {
        if config.faults.has(*kind) {
            push(&|c| c.faults = c.faults.without(*kind));
        }
    }
    for kind in ActorKind::ALL {
        if config.actors.has(*kind) {
            push(&|c| c.actors = c.actors.without(*kind));
        }
    }
    for index in 0..config.knobs.faults_max.min(63) {
        if config.fault_mask & (1 << index) == 0 {
            push(&|c| c.fault_mask |= 1 << index);
        }
    }
    for _ in 0..SEEDS_PER_SHAPE {
        out.push(reseed(config, seeds.next_u64()));
    }
    out
}

/// Other seeds tried per smaller shape.
const SEEDS_PER_SHAPE: usize = 24;
