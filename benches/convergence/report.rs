//! What the convergence bench prints: per-(kind, N) rows, the markdown
//! tables BENCHMARKS.md quotes, the targets, and the machine.

use std::collections::BTreeMap;

use crate::stats::Summary;
use crate::storm::Kind;
use crate::Config;

/// The storms of one (kind, N).
#[derive(Default)]
pub struct Row {
    pub elapsed_ms: Vec<f64>,
    pub calls: Vec<u64>,
    pub reused: u64,
    pub failures: Vec<String>,
    pub wrong_token: usize,
    pub outcomes: BTreeMap<String, usize>,
    /// When the refreshing worker held the new token, ms after the release.
    pub leader_ms: Vec<f64>,
    /// (last worker holds − leader holds) / (N − 1): the cost of one
    /// hand-off after the refresh, ms (N > 1, workers with stamps only).
    pub handoff_ms: Vec<f64>,
}

impl Row {
    pub fn calls_text(&self) -> String {
        let min = self.calls.iter().min().copied().unwrap_or(0);
        let max = self.calls.iter().max().copied().unwrap_or(0);
        if min == max {
            format!("{min}")
        } else {
            format!("{min}–{max}")
        }
    }

    /// G1, G2 for rotor's rows: every worker holds the new token, one call.
    pub fn correctness_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.failures.is_empty() {
            problems.push(format!(
                "{} workers failed: {:?}",
                self.failures.len(),
                self.failures
            ));
        }
        if self.wrong_token > 0 {
            problems.push(format!(
                "G2: {} workers hold another token",
                self.wrong_token
            ));
        }
        if self.calls.iter().any(|c| *c != 1) {
            problems.push(format!(
                "G2: endpoint calls per storm {:?}, expected 1",
                self.calls
            ));
        }
        if self.reused > 0 {
            problems.push(format!(
                "G1: {} refresh tokens presented twice",
                self.reused
            ));
        }
        problems
    }
}

/// Cores and CPU model.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// The comparison tables and the targets at N = 32.
pub fn print_convergence_table(config: &Config, rows: &BTreeMap<(usize, Kind), Row>) {
    println!("\n| N | rotor median / p90 (ms) | rotor CLI median / p90 (ms) | baseline median / p90 (ms) | calls rotor / CLI / baseline | rotor / baseline (median) | baseline ÷ rotor (median) |");
    println!("|---|---|---|---|---|---|---|");
    for &processes in &config.processes {
        let get = |kind| &rows[&(processes, kind)];
        let (rotor, cli, base) = (get(Kind::Rotor), get(Kind::Cli), get(Kind::Baseline));
        let (r, c, b) = (
            Summary::of(&rotor.elapsed_ms),
            Summary::of(&cli.elapsed_ms),
            Summary::of(&base.elapsed_ms),
        );
        println!(
            "| {processes} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {} / {} / {} | {:.3} | {:.1}× |",
            r.median,
            r.p90,
            c.median,
            c.p90,
            b.median,
            b.p90,
            rotor.calls_text(),
            cli.calls_text(),
            base.calls_text(),
            r.median / b.median,
            b.median / r.median
        );
    }
    println!("\n| N | rotor: leader holds at (median ms) | rotor: per hand-off (median ms) | baseline: leader holds at | baseline: per hand-off |");
    println!("|---|---|---|---|---|");
    for &processes in &config.processes {
        let rotor = &rows[&(processes, Kind::Rotor)];
        let base = &rows[&(processes, Kind::Baseline)];
        let median = |v: &[f64]| {
            if v.is_empty() {
                "–".to_owned()
            } else {
                format!("{:.1}", Summary::of(v).median)
            }
        };
        println!(
            "| {processes} | {} | {} | {} | {} |",
            median(&rotor.leader_ms),
            median(&rotor.handoff_ms),
            median(&base.leader_ms),
            median(&base.handoff_ms)
        );
    }
    if let (Some(rotor), Some(base)) = (
        rows.get(&(32, Kind::Rotor)),
        rows.get(&(32, Kind::Baseline)),
    ) {
        let (r, b) = (
            Summary::of(&rotor.elapsed_ms),
            Summary::of(&base.elapsed_ms),
        );
        let budget_ms = config.latency.as_secs_f64() * 1e3 + 32.0;
        println!(
            "\ntarget N=32: rotor median {:.1} ms {} {budget_ms:.0} ms (latency + 32 × 1 ms): {}; \
             baseline ÷ rotor {:.1}× (target ≥ 10×): {}",
            r.median,
            if r.median <= budget_ms { "≤" } else { ">" },
            if r.median <= budget_ms {
                "met"
            } else {
                "NOT met"
            },
            b.median / r.median,
            if b.median / r.median >= 10.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
