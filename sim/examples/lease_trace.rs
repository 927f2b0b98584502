//! Prints the lease limit's trace (the configuration of tests/lease.rs).
use rotor_sim::*;
fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(89);
    let mut config = Config::derive(seed, &Overrides::default());
    config.backend = Backend::Lease;
    config.processes = 3;
    config.agents = 1;
    config.requests = 4;
    config.faults = FaultSet::none().with(FaultKind::Pause);
    config.actors = ActorSet::none();
    config.knobs.fault_rate_per_mille = 200;
    config.knobs.faults_max = 6;
    let outcome = run_config(
        config,
        &RunOptions::default()
            .with_trace(TraceMode::Full)
            .with_stop(StopOn::Never),
    );
    for event in outcome.trace.events() {
        println!("{event}");
    }
    for finding in &outcome.findings {
        println!("expected finding: {finding}");
    }
}
