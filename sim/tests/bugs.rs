//! docs/bugs.md's broken hosts (test-only, in `common`): each test asserts
//! the simulator reports a violation of the bug's named guarantee within a
//! bounded number of seeds, and prints the median seeds to detection.
//!
//! Each broken host overrides one hook of `HostHooks`; the shipped host is
//! the default of every hook. A run whose config the bug needs (a background
//! writer for B4, legacy identities for B16...) sets it in `shape`.

mod common;

use std::sync::Arc;

use common::{
    LockPerAgentStore, MirrorAfterRelease, PermissiveGate, ReentrantInProcess, StrictGate,
    TimeoutReleasesEarly, WritesWithoutStoreLock,
};
use rotor_sim::config::IdentityShape;
use rotor_sim::{
    run_config, ActorKind, ActorSet, Config, FaultKind, FaultSet, Guarantee, HostHooks, Overrides,
    RunOptions, StopOn,
};

/// Runs `trials` independent searches; each tries seeds until the guarantee
/// is violated (at most `seeds_max`). Returns the seeds needed per trial.
fn seeds_to_detection(
    name: &str,
    hooks: Arc<dyn HostHooks>,
    guarantee: Guarantee,
    shape: impl Fn(&mut Config),
    trials: u64,
    seeds_max: u64,
) -> Vec<u64> {
    let options = RunOptions {
        hooks,
        stop: StopOn::Guarantee(guarantee),
        ..RunOptions::default()
    };
    let mut needed = Vec::new();
    for trial in 0..trials {
        let found = (1..=seeds_max).find(|k| {
            let seed = trial * 1_000_003 + k;
            let mut config = Config::derive(seed, &Overrides::default());
            shape(&mut config);
            run_config(config, &options).violated(guarantee)
        });
        match found {
            Some(k) => needed.push(k),
            None => panic!(
                "{name}: no {guarantee} violation within {seeds_max} seeds (trial {trial}): the checker is blind to this bug"
            ),
        }
    }
    needed.sort_unstable();
    eprintln!(
        "{name}: {guarantee} found; seeds to detection over {trials} trials: median {}, max {}",
        needed[needed.len() / 2],
        needed[needed.len() - 1]
    );
    needed
}

/// No faults, no actors: the bug alone.
fn quiet(config: &mut Config) {
    config.faults = FaultSet::none();
    config.actors = ActorSet::none();
    config.knobs.other_account_store = false;
}

#[test]
fn b1_lock_keyed_per_agent_store_breaks_g1() {
    seeds_to_detection(
        "B1",
        Arc::new(LockPerAgentStore),
        Guarantee::G1,
        |c| {
            quiet(c);
            c.processes = 2;
            c.agents = 3;
        },
        5,
        200,
    );
}

#[test]
fn b3_reentrant_lock_in_one_process_breaks_g1() {
    seeds_to_detection(
        "B3",
        Arc::new(ReentrantInProcess),
        Guarantee::G1,
        |c| {
            quiet(c);
            c.processes = 1;
            c.agents = 3;
        },
        5,
        200,
    );
}

#[test]
fn b4_writes_without_the_store_lock_break_g4() {
    seeds_to_detection(
        "B4",
        Arc::new(WritesWithoutStoreLock),
        Guarantee::G4,
        |c| {
            quiet(c);
            c.actors = ActorSet::none().with(ActorKind::Usage);
            c.requests = 4;
        },
        3,
        2_000,
    );
}

#[test]
fn b6_mirror_after_release_breaks_the_release_order_g1_rests_on() {
    seeds_to_detection(
        "B6",
        Arc::new(MirrorAfterRelease),
        Guarantee::G1,
        |c| {
            quiet(c);
            c.agents = 3;
        },
        5,
        200,
    );
}

#[test]
fn b9_timeout_that_releases_while_in_flight_breaks_g8() {
    seeds_to_detection(
        "B9",
        Arc::new(TimeoutReleasesEarly),
        Guarantee::G8,
        |c| {
            quiet(c);
            c.faults = FaultSet::none().with(FaultKind::Timeout);
            c.knobs.fault_rate_per_mille = 300;
            c.knobs.faults_max = 4;
        },
        5,
        500,
    );
}

#[test]
fn b14_permissive_gate_breaks_g3() {
    seeds_to_detection(
        "B14",
        Arc::new(PermissiveGate),
        Guarantee::G3,
        |c| {
            quiet(c);
            c.agents = c.agents.max(2);
            c.knobs.other_account_store = true;
            c.knobs.identity = IdentityShape::Account;
        },
        5,
        300,
    );
}

#[test]
fn b16_strict_gate_breaks_g2() {
    seeds_to_detection(
        "B16",
        Arc::new(StrictGate),
        Guarantee::G2,
        |c| {
            quiet(c);
            c.agents = c.agents.max(2);
            c.requests = 3;
            c.knobs.identity = IdentityShape::Legacy;
            c.knobs.provider_reports_identity = true;
        },
        5,
        300,
    );
}

/// The control: the shipped host over the same shapes finds nothing.
#[test]
fn the_shipped_host_passes_every_bug_shape() {
    let shapes: [&dyn Fn(&mut Config); 4] = [
        &|c| {
            quiet(c);
            c.processes = 2;
            c.agents = 3;
        },
        &|c| {
            quiet(c);
            c.actors = ActorSet::none().with(ActorKind::Usage);
            c.requests = 4;
        },
        &|c| {
            quiet(c);
            c.agents = c.agents.max(2);
            c.knobs.other_account_store = true;
            c.knobs.identity = IdentityShape::Account;
        },
        &|c| {
            quiet(c);
            c.agents = c.agents.max(2);
            c.knobs.identity = IdentityShape::Legacy;
            c.knobs.provider_reports_identity = true;
        },
    ];
    let options = RunOptions::default().with_stop(StopOn::Never);
    for (index, shape) in shapes.iter().enumerate() {
        for seed in 0..150 {
            let mut config = Config::derive(seed, &Overrides::default());
            shape(&mut config);
            let replay = config.replay_command();
            let outcome = run_config(config, &options);
            assert!(
                outcome.violations.is_empty(),
                "shape {index}, seed {seed}: {:?}\nreplay (shipped host): {replay}",
                outcome.violations
            );
        }
    }
}
