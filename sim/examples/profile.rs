use rotor_sim::*;
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20000);
    let o = RunOptions::default();
    let mut steps = 0;
    for s in 0..n {
        steps += run_seed(s, &Overrides::default(), &o).stats.steps;
    }
    println!("{steps}");
}
