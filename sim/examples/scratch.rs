use rotor_sim::*;
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let t = std::time::Instant::now();
    let report = sweep(
        0..n,
        &Overrides::default(),
        &RunOptions::default(),
        20,
        |_| {},
    );
    let el = t.elapsed();
    println!("{}", report.stats);
    println!("seeds/s {:.0}", n as f64 / el.as_secs_f64());
    println!("missing {:?}", report.coverage.missing());
    let mut by: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for f in &report.failures {
        let v = f.first().unwrap();
        by.entry(format!("{}", v.guarantee))
            .or_default()
            .push(f.config.seed);
    }
    for (g, seeds) in &by {
        println!("{g}: {:?}", seeds);
    }
    for f in report.failures.iter().take(5) {
        println!("seed {} {}", f.config.seed, f.first().unwrap());
    }
}
