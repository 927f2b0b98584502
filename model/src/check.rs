//! What the models check, and how a violation is reported.
//!
//! Checks happen at two moments:
//! - **as it happens**, inside the model host: a store write-back computed
//!   from a document that changed under it (G4), a stored or observed
//!   generation going down (G5), a lock released by a process that does not
//!   hold it, or a second thread of a process inside the refresh lock (G8).
//!   These are recorded in the [`Log`], never panicked on the spot, so one
//!   failing interleaving reports everything that went wrong in it;
//! - **at the end of a run**, by [`crate::verify::verify`]: no refresh token
//!   presented twice (G1), one endpoint call per token family and every agent
//!   holding the new token (G2), every agent and store still on its own
//!   account (G3), the background writers' updates all present (G4), every
//!   refresh lock released (G8).
//!
//! Deadlock freedom is checked by loom and shuttle themselves: a run in which
//! every thread waits fails with their deadlock report.

use std::fmt;

/// The guarantees of SPEC §1 that the models check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Guarantee {
    /// One exchange per generation.
    G1,
    /// Coalescing, bounded load.
    G2,
    /// Identity gate.
    G3,
    /// No lost update.
    G4,
    /// Monotonic generation.
    G5,
    /// Locks: no steal, no wedge, no cycle.
    G8,
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One broken guarantee, with what the model saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which guarantee.
    pub guarantee: Guarantee,
    /// What happened, in words a person can follow.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.guarantee, self.detail)
    }
}

/// Violations recorded while a run goes on.
///
/// This is bookkeeping of the checker, not part of the modelled system, so
/// it sits on a `std` mutex: taking it is not a scheduling point for loom or
/// shuttle and adds no interleavings. It is never held across a model
/// primitive, so it cannot block a modelled thread.
#[derive(Debug, Default)]
pub struct Log {
    violations: std::sync::Mutex<Vec<Violation>>,
}

impl Log {
    /// Records a violation of `guarantee`.
    pub fn violation(&self, guarantee: Guarantee, detail: impl Into<String>) {
        let violation = Violation {
            guarantee,
            detail: detail.into(),
        };
        self.violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(violation);
    }

    /// Everything recorded so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Which violations make a run fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// Any violation (the correct models).
    Any,
    /// Only a violation of this guarantee (a test that expects a broken
    /// variant to break it: the search goes on past runs that break only
    /// something else, so the test shows the named guarantee is caught).
    Only(Guarantee),
}

impl FailOn {
    /// True when `violations` contain one that fails the run.
    pub fn fails(&self, violations: &[Violation]) -> bool {
        match self {
            FailOn::Any => !violations.is_empty(),
            FailOn::Only(guarantee) => violations.iter().any(|v| v.guarantee == *guarantee),
        }
    }
}

/// The failure message of a run: every violation, the failing one first.
pub fn failure_message(scenario: &str, fail_on: FailOn, violations: &[Violation]) -> String {
    let mut ordered: Vec<&Violation> = violations.iter().collect();
    if let FailOn::Only(guarantee) = fail_on {
        ordered.sort_by_key(|v| v.guarantee != guarantee);
    }
    let mut message = format!(
        "rotor-model {scenario}: {} guarantee violation(s) in this interleaving",
        violations.len()
    );
    for violation in ordered {
        message.push_str("\n  ");
        message.push_str(&violation.to_string());
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_only_ignores_other_guarantees_and_the_message_names_the_target_first() {
        let log = Log::default();
        log.violation(Guarantee::G8, "two holders");
        log.violation(Guarantee::G1, "token presented twice");
        let violations = log.violations();
        assert!(FailOn::Any.fails(&violations));
        assert!(FailOn::Only(Guarantee::G1).fails(&violations));
        assert!(!FailOn::Only(Guarantee::G4).fails(&violations));
        let message = failure_message("m", FailOn::Only(Guarantee::G1), &violations);
        let g1 = message.find("G1 violated").unwrap();
        let g8 = message.find("G8 violated").unwrap();
        assert!(g1 < g8, "{message}");
    }
}
