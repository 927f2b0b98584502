//! The lease backend's documented limit (ARCHITECTURE.md, "The lease backend's limit"): a holder that
//! stalls past its lease loses the lock without knowing it, and a double
//! presentation follows that no client-side scheme can prevent. The simulator
//! must find it with the lease backend (an expected finding, not a failure)
//! and never with the advisory backend under the same stalls.

use rotor_sim::{
    run_config, ActorSet, Backend, Config, FaultKind, FaultSet, Guarantee, Overrides, RunOptions,
    StopOn,
};

fn stalling(seed: u64, backend: Backend) -> Config {
    let mut config = Config::derive(seed, &Overrides::default());
    config.backend = backend;
    config.processes = 3;
    config.agents = 1;
    config.requests = 4;
    config.faults = FaultSet::none().with(FaultKind::Pause);
    config.actors = ActorSet::none();
    config.knobs.fault_rate_per_mille = 200;
    config.knobs.faults_max = 6;
    config
}

#[test]
fn lease_backend_with_a_pause_past_the_lease_shows_the_g1_limit() {
    let options = RunOptions::default().with_stop(StopOn::Never);
    let mut found = None;
    for seed in 0..3_000 {
        let outcome = run_config(stalling(seed, Backend::Lease), &options);
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: the lease limit must be an expected finding, not {:?}",
            outcome.violations
        );
        if let Some(finding) = outcome.findings.first() {
            assert_eq!(finding.guarantee, Guarantee::G1);
            found = Some((seed, finding.clone()));
            break;
        }
    }
    let (seed, finding) = found.expect("the lease limit was not found in 3000 seeds");
    eprintln!("lease limit found at seed {seed}: {finding}");
}

#[test]
fn advisory_backend_under_the_same_pauses_keeps_g1() {
    let options = RunOptions::default().with_stop(StopOn::Never);
    for seed in 0..600 {
        let config = stalling(seed, Backend::Advisory);
        let replay = config.replay_command();
        let outcome = run_config(config, &options);
        assert!(
            outcome.violations.is_empty() && outcome.findings.is_empty(),
            "seed {seed}: {:?} {:?}\nreplay: {replay}",
            outcome.violations,
            outcome.findings
        );
    }
}
