//! Simulator throughput: seeds per second for the default configuration on
//! one core with traces off, and simulated seconds per wall second.
//!
//! `cargo bench --bench sim_throughput` measures; `cargo bench --bench
//! sim_throughput -- --test` runs each benchmark once (CI keeps it from
//! rotting).

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rotor_sim::{run_seed, Overrides, RunOptions};

const SEEDS_PER_ITERATION: u64 = 256;

fn default_swarm(c: &mut Criterion) {
    let options = RunOptions::default();
    let overrides = Overrides::default();
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(SEEDS_PER_ITERATION));
    let mut next = 0u64;
    group.bench_function("default swarm, traces off (elements = seeds)", |b| {
        b.iter(|| {
            for _ in 0..SEEDS_PER_ITERATION {
                black_box(run_seed(next, &overrides, &options));
                next += 1;
            }
        })
    });
    group.finish();

    // Simulated time per wall time, over a fixed batch (printed, not judged).
    let began = Instant::now();
    let mut simulated_ms = 0u64;
    let mut steps = 0u64;
    let seeds = 2_000u64;
    for seed in 0..seeds {
        let outcome = run_seed(seed, &overrides, &options);
        simulated_ms += outcome.stats.simulated_ms;
        steps += outcome.stats.steps;
    }
    let wall = began.elapsed().as_secs_f64();
    println!(
        "sim: {seeds} seeds in {wall:.3} s: {:.0} seeds/s, {:.0} steps/s, {:.0} simulated seconds per wall second",
        seeds as f64 / wall,
        steps as f64 / wall,
        simulated_ms as f64 / 1000.0 / wall
    );
}

criterion_group!(benches, default_swarm);
criterion_main!(benches);
