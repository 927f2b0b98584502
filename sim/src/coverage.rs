//! What a run exercised: protocol branches of SPEC §3 and fault kinds, plus
//! the counters of the summary table.
//!
//! A sweep that never crashes a refresher mid-call proves nothing about G7;
//! [`Coverage::missing`] lists what a sweep never reached, and CI fails on a
//! non-empty list.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::config::FaultKind;

macro_rules! branches {
    ($($(#[$doc:meta])* $variant:ident = $name:literal),+ $(,)?) => {
        /// A protocol branch of SPEC §3, as seen from outcomes and effects.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[repr(u8)]
        pub enum Branch { $($(#[$doc])* $variant),+ }

        impl Branch {
            /// Every branch.
            pub const ALL: &'static [Branch] = &[$(Branch::$variant),+];
            /// Its name in reports.
            pub fn name(self) -> &'static str {
                match self { $(Branch::$variant => $name),+ }
            }
        }
    };
}

branches!(
    /// Step 1: own store usable.
    Cached = "cached",
    /// Steps 2/4: copied from main.
    AdoptedMain = "adopted-main",
    /// Step 4: a peer stored it while we waited.
    AdoptedPeer = "adopted-peer",
    /// Step 8: presented and stored.
    Refreshed = "refreshed",
    /// Step 8: mirrored into main.
    Mirror = "mirror",
    /// Step 5: a fence for the token: NeedsReauth.
    FenceNeedsReauth = "fence-needs-reauth",
    /// Step 5: a fence inside the grace window: one retry.
    GraceRetry = "grace-retry",
    /// Step 9: reuse, then a newer token adopted.
    ReuseAdopt = "reuse-adopt",
    /// Step 9: reuse, family marked: NeedsReauth.
    ReuseNeedsReauth = "reuse-needs-reauth",
    /// Step 9: not sent, retried.
    NotSentRetry = "not-sent-retry",
    /// Step 9: not sent twice: Transient.
    Transient = "transient",
    /// Step 9: definite refusal: Rejected.
    Rejected = "rejected",
    /// Step 9: unknown outcome: InDoubt.
    InDoubt = "in-doubt",
    /// Step 3: lock wait ran out.
    LockTimeout = "lock-timeout",
    /// A login or logout replaced the entry mid-refresh.
    Superseded = "superseded",
    /// A fault kind that matters most for G7: a crash while a call is in flight.
    CrashMidCall = "crash-mid-call",
    /// A fence's compare-and-swap lost to a login that replaced the entry
    /// after the refresher read it (no refresh lock masked it: another
    /// program's login; G11).
    CasFenceLogin = "cas-fence-login",
    /// A fence's compare-and-swap lost to a logout's tombstone (G11).
    CasFenceLogout = "cas-fence-logout",
    /// A commit's compare-and-swap lost to a login that replaced the entry
    /// while the refresh was in flight (G5, G11).
    CasCommitLogin = "cas-commit-login",
    /// A commit's compare-and-swap lost to a logout's tombstone (G11).
    CasCommitLogout = "cas-commit-logout",
    /// A mirror into main refused or lost because a login replaced main's
    /// entry (G11).
    CasMirrorLogin = "cas-mirror-login",
    /// A mirror into main refused or lost because of a logout's tombstone (G11).
    CasMirrorLogout = "cas-mirror-logout",
);

/// Branches and fault kinds hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Bit per [`Branch`].
    pub branches: u32,
    /// Bit per [`FaultKind`] (applied faults only).
    pub faults: u32,
}

impl Coverage {
    /// Marks a branch.
    #[inline]
    pub fn hit(&mut self, branch: Branch) {
        self.branches |= 1 << branch as u8;
    }

    /// Marks a fault kind.
    #[inline]
    pub fn fault(&mut self, kind: FaultKind) {
        self.faults |= 1 << kind as u8;
    }

    /// True when the branch was hit.
    pub fn has(&self, branch: Branch) -> bool {
        self.branches & (1 << branch as u8) != 0
    }

    /// True when the fault kind was hit.
    pub fn has_fault(&self, kind: FaultKind) -> bool {
        self.faults & (1 << kind as u8) != 0
    }

    /// Adds another run's coverage.
    pub fn merge(&mut self, other: &Coverage) {
        self.branches |= other.branches;
        self.faults |= other.faults;
    }

    /// Names of branches and fault kinds never hit.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing: Vec<&'static str> = Branch::ALL
            .iter()
            .filter(|b| !self.has(**b))
            .map(|b| b.name())
            .collect();
        missing.extend(
            FaultKind::ALL
                .iter()
                .filter(|k| !self.has_fault(**k))
                .map(|k| k.name()),
        );
        missing
    }
}

/// Counters for the summary table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Seeds run.
    pub seeds: u64,
    /// Steps run.
    pub steps: u64,
    /// Simulated time, ms.
    pub simulated_ms: u64,
    /// Resolves finished.
    pub resolves: u64,
    /// Successful rotations at the provider.
    pub rotations: u64,
    /// Endpoint calls made (including not-sent attempts).
    pub endpoint_calls: u64,
    /// Adoptions (main or peer).
    pub adoptions: u64,
    /// Faults applied, by kind.
    pub faults: [u64; 11],
    /// Seeds with a violation.
    pub failures: u64,
    /// Expected findings (the lease backend's limit).
    pub expected_findings: u64,
}

impl Stats {
    /// Adds another run's counters.
    pub fn merge(&mut self, other: &Stats) {
        self.seeds += other.seeds;
        self.steps += other.steps;
        self.simulated_ms += other.simulated_ms;
        self.resolves += other.resolves;
        self.rotations += other.rotations;
        self.endpoint_calls += other.endpoint_calls;
        self.adoptions += other.adoptions;
        for (sum, add) in self.faults.iter_mut().zip(other.faults.iter()) {
            *sum += add;
        }
        self.failures += other.failures;
        self.expected_findings += other.expected_findings;
    }

    /// Total faults applied.
    pub fn faults_total(&self) -> u64 {
        self.faults.iter().sum()
    }
}

impl fmt::Display for Stats {
    /// The summary table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: [(&str, u64); 9] = [
            ("seeds", self.seeds),
            ("steps", self.steps),
            ("resolves", self.resolves),
            ("rotations", self.rotations),
            ("endpoint calls", self.endpoint_calls),
            ("adoptions", self.adoptions),
            ("faults", self.faults_total()),
            ("expected findings (lease)", self.expected_findings),
            ("failures", self.failures),
        ];
        writeln!(f, "  {:<28} {:>12}", "measure", "count")?;
        writeln!(f, "  {:-<28} {:->12}", "", "")?;
        for (name, value) in rows {
            writeln!(f, "  {name:<28} {value:>12}")?;
        }
        writeln!(
            f,
            "  {:<28} {:>12.1}",
            "simulated hours",
            self.simulated_ms as f64 / 3_600_000.0
        )?;
        writeln!(f, "  faults by kind:")?;
        for kind in FaultKind::ALL {
            writeln!(
                f,
                "    {:<26} {:>12}",
                kind.name(),
                self.faults[*kind as usize]
            )?;
        }
        Ok(())
    }
}
