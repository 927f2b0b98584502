//! The disk's fault model: one fault, injected at one numbered I/O call.
//!
//! Every call a host makes through the simulated disk ([`super::SimDisk`])
//! gets the next number, starting at 0: `lstat`, `mkdir`, `read`,
//! `create_new`, a handle's `write_all` and `sync`, `rename`, `sync_dir`,
//! `remove`, `list_dir` and `lock_exclusive`. A [`FaultPlan`] names the call
//! that fails and how, so "every crash point of a write" is a loop over
//! call numbers, and a finding replays from its number alone.

use core::fmt;

/// What happens at the planned call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskFault {
    /// The call fails with `EIO`; nothing it would have done is done.
    Eio,
    /// The call fails with `ENOSPC`; nothing it would have done is done.
    Enospc,
    /// The machine loses power before the call: everything not durable is
    /// dropped (file data not fsynced, directory entries of directories not
    /// fsynced since they changed) and every later call fails with `EIO`
    /// until [`super::SimDisk::reboot`].
    PowerLoss,
    /// As [`DiskFault::PowerLoss`], but a file whose data was not fsynced
    /// keeps a torn prefix of it (half of what was written) instead of its
    /// durable bytes: what a write in place leaves behind.
    PowerLossTorn,
}

impl DiskFault {
    /// Every fault, in report order.
    pub const ALL: [DiskFault; 4] = [
        DiskFault::Eio,
        DiskFault::Enospc,
        DiskFault::PowerLoss,
        DiskFault::PowerLossTorn,
    ];

    /// Whether the fault takes the machine down.
    pub fn is_power_loss(self) -> bool {
        matches!(self, DiskFault::PowerLoss | DiskFault::PowerLossTorn)
    }
}

impl fmt::Display for DiskFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskFault::Eio => "eio",
            DiskFault::Enospc => "enospc",
            DiskFault::PowerLoss => "power-loss",
            DiskFault::PowerLossTorn => "power-loss-torn",
        })
    }
}

/// The one fault of a run, at the call numbered `at_call`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultPlan {
    /// The number of the call that fails (0 is the first call).
    pub at_call: u64,
    /// How it fails.
    pub fault: DiskFault,
}
