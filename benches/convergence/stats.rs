//! Median, p90 (nearest rank), min and max of a few timings.

use std::fmt;

/// A summary of samples in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub median: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
}

/// The nearest-rank percentile `p` (0..=100) of sorted `samples`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Summarizes `samples` (any order).
    pub fn of(samples: &[f64]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Summary {
            count: sorted.len(),
            median,
            p90: percentile(&sorted, 90.0),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "median {:8.1} ms  p90 {:8.1} ms  min {:8.1}  max {:8.1}  (n={})",
            self.median, self.p90, self.min, self.max, self.count
        )
    }
}

/// Checks the percentile arithmetic; the bench runs it first.
pub fn self_check() {
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    let summary = Summary::of(&ten);
    assert_eq!(
        (summary.median, summary.p90),
        (5.5, 9.0),
        "stats: {summary:?}"
    );
    let five = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
    assert_eq!(
        (five.median, five.p90, five.min, five.max),
        (3.0, 5.0, 1.0, 5.0)
    );
}
