//! The guarantees the simulator checks (SPEC §1) and how a violation is told.

use core::fmt;

use serde::{Deserialize, Serialize};

/// A guarantee of SPEC §1, or the liveness phase's promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// Durable before visible, atomic always.
    G6,
    /// No silent loss of a rotation (in-doubt fences).
    G7,
    /// Locks: no steal, no wedge.
    G8,
    /// Typed, actionable failure; a corrupt store kept aside.
    G10,
    /// Logout and re-login stick.
    G11,
    /// With faults off, every agent's resolve finishes within the step
    /// bound (whether its outcome was justified is the outcome oracle's
    /// question, reported under G2, G7 or G8).
    Liveness,
}

impl Guarantee {
    /// Every checked guarantee, in report order.
    pub const ALL: [Guarantee; 11] = [
        Guarantee::G1,
        Guarantee::G2,
        Guarantee::G3,
        Guarantee::G4,
        Guarantee::G5,
        Guarantee::G6,
        Guarantee::G7,
        Guarantee::G8,
        Guarantee::G10,
        Guarantee::G11,
        Guarantee::Liveness,
    ];

    /// The guarantee's short title.
    pub fn title(self) -> &'static str {
        match self {
            Guarantee::G1 => "one exchange per generation",
            Guarantee::G2 => "coalescing, bounded load",
            Guarantee::G3 => "identity gate",
            Guarantee::G4 => "no lost update",
            Guarantee::G5 => "monotonic generation",
            Guarantee::G6 => "durable before visible",
            Guarantee::G7 => "no silent loss of a rotation",
            Guarantee::G8 => "locks: no steal, no wedge",
            Guarantee::G10 => "typed, actionable failure",
            Guarantee::G11 => "logout and re-login stick",
            Guarantee::Liveness => "liveness with faults off",
        }
    }

    /// Bit for sets of guarantees.
    pub fn bit(self) -> u16 {
        1 << Guarantee::ALL.iter().position(|g| *g == self).unwrap_or(0)
    }
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guarantee::Liveness => f.write_str("liveness"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One violated guarantee, where and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which guarantee.
    pub guarantee: Guarantee,
    /// The step at which the checker saw it.
    pub step: u32,
    /// Simulated time, ms.
    pub at_ms: u64,
    /// What happened, for a person.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) violated at step {} (t={}.{:03}s): {}",
            self.guarantee,
            self.guarantee.title(),
            self.step,
            self.at_ms / 1000,
            self.at_ms % 1000,
            self.detail
        )
    }
}
