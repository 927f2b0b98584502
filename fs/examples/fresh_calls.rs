//! The per-call cost of a fresh-token call through the Rust library, for
//! BENCHMARKS.md (node/bench/fresh-token.mjs runs it beside the Node addon
//! and the CLI): `calls` sequential `Rotor::token` calls, then as many
//! `AsyncRotor::token` calls on a current-thread runtime, on a state
//! directory whose token is fresh (every call answers `Cached`).
//!
//! ```sh
//! cargo run --release -p rotor-fs --features tokio --example fresh_calls -- \
//!     <state dir> <provider> <profile> <calls>
//! ```
//! Prints `{"blocking_us": …, "async_us": …}` (mean µs per call).

use std::time::Instant;

use rotor_fs::{AsyncRotor, Rotor};
use rotor_kernel::Outcome;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        eprintln!("usage: fresh_calls <state dir> <provider> <profile> <calls>");
        std::process::exit(2);
    }
    let (provider, profile) = (&args[1], &args[2]);
    let calls: u32 = args[3].parse().expect("calls: a number");
    let rotor = Rotor::open(&args[0]).expect("open the state directory");
    let start = Instant::now();
    for _ in 0..calls {
        let granted = rotor.token("main", provider, profile).expect("a token");
        assert_eq!(granted.outcome, Outcome::Cached, "the token must be fresh");
    }
    let blocking_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let rotor = AsyncRotor::from(rotor);
    let start = Instant::now();
    runtime.block_on(async {
        for _ in 0..calls {
            let granted = rotor
                .token("main", provider, profile)
                .await
                .expect("a token");
            assert_eq!(granted.outcome, Outcome::Cached, "the token must be fresh");
        }
    });
    let async_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
    println!("{{\"blocking_us\": {blocking_us:.1}, \"async_us\": {async_us:.1}}}");
}
