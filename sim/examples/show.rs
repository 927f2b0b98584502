use rotor_sim::*;
fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let c = Config::derive(seed, &Overrides::default());
    println!("{:?}", c);
    let o = run_config(c, &RunOptions::default().with_trace(TraceMode::Full));
    for e in o.trace.events() {
        println!("{e}");
    }
    for v in &o.violations {
        println!("{v}");
    }
}
