//! The one source of the policy and lease numbers every simulated world and
//! every explored world runs under (SPEC §6): the kernel's defaults
//! ([`PolicyConfig::default`]), the grace window the world configures, and on
//! a lease backend the shortest lease the kernel accepts for that
//! configuration ([`LeaseConfig::for_config`]: at least twice the call
//! deadline and longer than the longest legitimate hold, renewed every third
//! of it). Neither the simulator nor the explorer writes a number of its own.

use rotor_kernel::{LeaseConfig, Policy, PolicyConfig};

/// The lease a lease backend holds for a world with this grace window.
pub fn lease(grace_window_ms: Option<u64>) -> LeaseConfig {
    LeaseConfig::for_config(&PolicyConfig {
        grace_window_ms,
        ..PolicyConfig::default()
    })
}

/// The policy configuration of a world: SPEC §6's defaults, `grace_window_ms`,
/// and [`lease`] when `lease_backend`.
pub fn config(grace_window_ms: Option<u64>, lease_backend: bool) -> PolicyConfig {
    PolicyConfig {
        grace_window_ms,
        lease: lease_backend.then(|| lease(grace_window_ms)),
        ..PolicyConfig::default()
    }
}

/// The policy of a world, built by the kernel's checked constructor.
///
/// # Panics
/// When the kernel refuses the configuration: a bug in this module.
pub fn policy(grace_window_ms: Option<u64>, lease_backend: bool) -> Policy {
    Policy::new(config(grace_window_ms, lease_backend))
        .unwrap_or_else(|error| panic!("bug: the simulator built an invalid policy: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lease is the kernel's shortest valid one (SPEC §6: 102 s with the
    /// defaults, renewed every 34 s) and passes the kernel's invariants, with
    /// and without a grace window (G8).
    #[test]
    fn lease_and_policy_come_from_the_kernel_g8() {
        let plain = lease(None);
        assert_eq!((plain.lease_ms, plain.renew_every_ms), (102_000, 34_000));
        for grace in [None, Some(5_000), Some(60_000)] {
            let built = policy(grace, true);
            assert_eq!(built.lease(), Some(&lease(grace)));
            assert_eq!(built.grace_window_ms(), grace);
            assert!(built.lease().unwrap().lease_ms > built.longest_hold_ms());
            assert!(policy(grace, false).lease().is_none());
        }
    }
}
