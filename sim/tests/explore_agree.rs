//! The explorer and the simulator agree: on the same small world, the set of
//! guarantees the explorer finds violated over every reachable state equals
//! the set the simulator finds over many seeds, for a broken host (B4, B9)
//! and for the shipped host (both empty).
//!
//! Both stop a path at its first violation (the explorer does not expand a
//! violating state; the simulator runs with `StopOn::First`), so the sets
//! compared are the guarantees that can be reported *first*
//! (`ExploreReport::first_found`); the cascade after a first violation, and a
//! second guarantee broken by the same step, are not compared.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{TimeoutReleasesEarly, WritesWithoutStoreLock};
use rotor_sim::config::IdentityShape;
use rotor_sim::explore::{explore, ExploreConfig};
use rotor_sim::{
    run_config, ActorKind, ActorSet, Backend, Config, FaultKind, FaultSet, Guarantee, HostHooks,
    Overrides, RunOptions, Shipped, StopOn,
};

/// One process, one main agent, one request, the advisory lock; the
/// simulator's draw of everything else fixed to what the explorer models.
fn sim_world(seed: u64, faults: FaultSet, actors: ActorSet) -> Config {
    let mut c = Config::derive(seed, &Overrides::default());
    c.processes = 1;
    c.agents = 1;
    c.requests = 1;
    c.backend = Backend::Advisory;
    c.faults = faults;
    c.actors = actors;
    c.knobs.other_account_store = false;
    c.knobs.main_absent = false;
    c.knobs.identity = IdentityShape::Account;
    c.knobs.grace_window_ms = None;
    c.knobs.provider_grace_ms = None;
    c.knobs.single_session = false;
    c.knobs.fault_rate_per_mille = 300;
    c.knobs.faults_max = 1;
    c
}

/// Seeds per simulator sweep (about a second in debug).
const SEEDS: u64 = 20_000;

fn sim_guarantees(
    hooks: Arc<dyn HostHooks>,
    faults: FaultSet,
    actors: ActorSet,
) -> BTreeSet<Guarantee> {
    let options = RunOptions {
        hooks,
        stop: StopOn::First,
        ..RunOptions::default()
    };
    let mut seen = BTreeSet::new();
    for seed in 0..SEEDS {
        let outcome = run_config(sim_world(seed, faults, actors), &options);
        seen.extend(
            outcome
                .violations
                .iter()
                .map(|v| v.guarantee)
                .filter(|g| *g != Guarantee::Liveness),
        );
    }
    seen
}

fn explorer_guarantees(hooks: Arc<dyn HostHooks>, config: &ExploreConfig) -> BTreeSet<Guarantee> {
    explore(config, hooks)
        .first_found
        .into_iter()
        .filter(|g| *g != Guarantee::Liveness)
        .collect()
}

fn agree(
    name: &str,
    hooks: Arc<dyn HostHooks>,
    faults: FaultSet,
    actors: ActorSet,
    config: ExploreConfig,
) -> BTreeSet<Guarantee> {
    let sim = sim_guarantees(hooks.clone(), faults, actors);
    let exhaustive = explorer_guarantees(hooks, &config);
    eprintln!("{name}: simulator {sim:?}, explorer {exhaustive:?}");
    assert_eq!(
        sim, exhaustive,
        "{name}: the simulator and the explorer disagree"
    );
    sim
}

fn writer_world() -> ExploreConfig {
    ExploreConfig {
        agents_per_process: vec![1],
        writer: true,
        time_steps_max: 0,
        ..ExploreConfig::default()
    }
}

fn timeout_world() -> ExploreConfig {
    ExploreConfig {
        agents_per_process: vec![1],
        endpoint_faults_max: 1,
        time_steps_max: 0,
        ..ExploreConfig::default()
    }
}

#[test]
fn b4_both_find_the_same_guarantees() {
    let usage = ActorSet::none().with(ActorKind::Usage);
    let found = agree(
        "B4",
        Arc::new(WritesWithoutStoreLock),
        FaultSet::none(),
        usage,
        writer_world(),
    );
    assert!(
        found.contains(&Guarantee::G4),
        "both must see B4's G4: {found:?}"
    );
}

#[test]
fn b9_both_find_the_same_guarantees() {
    let timeout = FaultSet::none().with(FaultKind::Timeout);
    let found = agree(
        "B9",
        Arc::new(TimeoutReleasesEarly),
        timeout,
        ActorSet::none(),
        timeout_world(),
    );
    assert!(
        found.contains(&Guarantee::G8),
        "both must see B9's G8: {found:?}"
    );
}

#[test]
fn the_shipped_host_both_find_nothing() {
    let usage = ActorSet::none().with(ActorKind::Usage);
    let found = agree(
        "shipped, writer",
        Arc::new(Shipped),
        FaultSet::none(),
        usage,
        writer_world(),
    );
    assert!(found.is_empty(), "shipped host: {found:?}");
    let timeout = FaultSet::none().with(FaultKind::Timeout);
    let found = agree(
        "shipped, timeout",
        Arc::new(Shipped),
        timeout,
        ActorSet::none(),
        timeout_world(),
    );
    assert!(found.is_empty(), "shipped host: {found:?}");
}
