//! Timing policy and its invariants (SPEC §6, guarantee G8: locks never
//! stolen, never wedged; waits bounded and longer than the longest
//! legitimate hold).
//!
//! A [`Policy`] can only be built through [`Policy::new`], which rejects any
//! [`PolicyConfig`] that breaks an invariant, with a [`PolicyError`] naming it
//! and carrying the numbers. The central one: a waiter for the refresh lock
//! must be willing to wait longer than a holder can legitimately hold it,
//! otherwise a waiter gives up (or, with a lease backend, takes over) while
//! the holder's endpoint call may still be in flight (bugs B9, G1).
//!
//! The longest legitimate hold is every allowed endpoint attempt running to
//! its deadline, plus the store writes made under the refresh lock, each of
//! which may wait its full store-lock budget:
//!
//! ```text
//! longest_hold_ms = call_deadline_ms x (1 + transient_retries_max)
//!                 + STORE_WRITES_PER_REFRESH x store_lock_wait_ms_max
//! ```
//!
//! SPEC §6 also says "lease > call deadline + margin". We read "margin" as the
//! rest of the longest hold (the retries and the store-write allowance), so a
//! lease must exceed `longest_hold_ms`: a lease that expires while its holder
//! is still legitimately working lets a second holder in (G1's documented
//! limit). It must also be at least twice the call deadline, and be renewed at
//! least three times per lease.

use core::fmt;

/// Store writes a refresh makes under the refresh lock: the fence into own
/// and main store, then the credential into own and main store.
pub const STORE_WRITES_PER_REFRESH: u64 = 4;

/// The configurable numbers (SPEC §6 defaults in `Default`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Refresh when the access token expires within this margin.
    pub refresh_margin_ms: u64,
    /// Hard deadline of one endpoint call.
    pub call_deadline_ms: u64,
    /// Retries after a provably-not-sent failure.
    pub transient_retries_max: u32,
    /// How long a participant waits for the refresh lock.
    pub refresh_lock_wait_ms_max: u64,
    /// How long a writer waits for a store lock.
    pub store_lock_wait_ms_max: u64,
    /// Provider grace window during which a refresh token may be presented
    /// again (G7); `None` when the provider allows no reuse.
    pub grace_window_ms: Option<u64>,
    /// Lease timing, for lease lock backends; `None` for advisory locks.
    pub lease: Option<LeaseConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            refresh_margin_ms: 300_000,
            call_deadline_ms: 30_000,
            transient_retries_max: 1,
            refresh_lock_wait_ms_max: 120_000,
            store_lock_wait_ms_max: 10_000,
            grace_window_ms: None,
            lease: None,
        }
    }
}

impl PolicyConfig {
    fn call_attempts_max(&self) -> u64 {
        1 + u64::from(self.transient_retries_max)
    }

    fn store_write_allowance_ms(&self) -> u64 {
        STORE_WRITES_PER_REFRESH.saturating_mul(self.store_lock_wait_ms_max)
    }

    fn longest_hold_ms(&self) -> u64 {
        self.call_deadline_ms
            .saturating_mul(self.call_attempts_max())
            .saturating_add(self.store_write_allowance_ms())
    }
}

/// Lease timing for lease lock backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a lease lasts unless renewed.
    pub lease_ms: u64,
    /// How often the holder renews it (at most `lease_ms / 3`).
    pub renew_every_ms: u64,
}

impl LeaseConfig {
    /// The shortest lease valid for `config`: at least twice the call
    /// deadline and longer than the longest hold, rounded up to a multiple of
    /// 3 s; renewed every third of it. Saturates on absurd inputs (and
    /// [`Policy::new`] then rejects the result).
    pub fn for_config(config: &PolicyConfig) -> Self {
        const STEP_MS: u64 = 3_000;
        let floor_ms = config
            .call_deadline_ms
            .saturating_mul(2)
            .max(config.longest_hold_ms().saturating_add(1));
        let lease_ms = floor_ms.div_ceil(STEP_MS).saturating_mul(STEP_MS);
        LeaseConfig {
            lease_ms,
            renew_every_ms: lease_ms / 3,
        }
    }
}

/// A validated policy: every invariant of SPEC §6 holds. `Default` uses
/// [`PolicyConfig::default`], which [`Policy::new`] accepts (tested).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Policy {
    config: PolicyConfig,
}

/// The longest legitimate hold of the refresh lock and its terms, as carried
/// by a [`PolicyError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongestHold {
    /// `call_deadline_ms x call_attempts_max + store_write_allowance_ms`, saturating.
    pub total_ms: u64,
    /// Hard deadline of one endpoint call.
    pub call_deadline_ms: u64,
    /// 1 + transient retries.
    pub call_attempts_max: u64,
    /// `STORE_WRITES_PER_REFRESH x store_lock_wait_ms_max`, saturating.
    pub store_write_allowance_ms: u64,
}

impl LongestHold {
    fn of(config: &PolicyConfig) -> Self {
        LongestHold {
            total_ms: config.longest_hold_ms(),
            call_deadline_ms: config.call_deadline_ms,
            call_attempts_max: config.call_attempts_max(),
            store_write_allowance_ms: config.store_write_allowance_ms(),
        }
    }
}

impl fmt::Display for LongestHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ms (call deadline {} ms x {} attempts + store-write allowance {} ms)",
            self.total_ms,
            self.call_deadline_ms,
            self.call_attempts_max,
            self.store_write_allowance_ms
        )
    }
}

/// A broken invariant, with the numbers that break it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// An endpoint call must have a deadline.
    CallDeadlineZero,
    /// A store-lock wait must be able to succeed.
    StoreLockWaitZero,
    /// A configured grace window must be positive (`None` disables it).
    GraceWindowZero,
    /// The refresh-lock wait budget must exceed the longest legitimate hold.
    RefreshLockWaitTooShort {
        refresh_lock_wait_ms_max: u64,
        longest_hold: LongestHold,
    },
    /// A lease must be at least twice the call deadline.
    LeaseBelowTwiceDeadline {
        lease_ms: u64,
        call_deadline_ms: u64,
    },
    /// A lease must outlive the longest legitimate hold.
    LeaseNotPastLongestHold {
        lease_ms: u64,
        longest_hold: LongestHold,
    },
    /// A lease must be renewed, at least three times per lease.
    LeaseRenewalOutOfRange { renew_every_ms: u64, lease_ms: u64 },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::CallDeadlineZero => f.write_str(
                "G8: call deadline must be > 0 ms: a call without a deadline could hold \
                 the refresh lock forever",
            ),
            PolicyError::StoreLockWaitZero => {
                f.write_str("G8: store-lock wait budget must be > 0 ms, or no store write can wait")
            }
            PolicyError::GraceWindowZero => f.write_str(
                "G7: grace window must be > 0 ms when configured; leave it unset to disable it",
            ),
            PolicyError::RefreshLockWaitTooShort {
                refresh_lock_wait_ms_max,
                longest_hold,
            } => write!(
                f,
                "G8: refresh-lock wait budget {refresh_lock_wait_ms_max} ms must exceed the \
                 longest legitimate hold {longest_hold}"
            ),
            PolicyError::LeaseBelowTwiceDeadline {
                lease_ms,
                call_deadline_ms,
            } => write!(
                f,
                "G8: lease {lease_ms} ms must be at least 2 x call deadline {call_deadline_ms} ms"
            ),
            PolicyError::LeaseNotPastLongestHold {
                lease_ms,
                longest_hold,
            } => write!(
                f,
                "G8: lease {lease_ms} ms must outlive the longest legitimate hold {longest_hold}"
            ),
            PolicyError::LeaseRenewalOutOfRange {
                renew_every_ms,
                lease_ms,
            } => write!(
                f,
                "G8: lease renewal interval {renew_every_ms} ms must be > 0 and at most \
                 lease/3 = {} ms (lease {lease_ms} ms)",
                lease_ms / 3
            ),
        }
    }
}

impl Policy {
    /// Validates `config` against every invariant of SPEC §6.
    pub fn new(config: PolicyConfig) -> Result<Policy, PolicyError> {
        check(&config)?;
        Ok(Policy { config })
    }

    /// Builds a policy without checking it: only for test code that must show
    /// the checkers catch a broken policy (docs/bugs.md).
    #[cfg(feature = "unchecked-policy")]
    pub fn new_unchecked(config: PolicyConfig) -> Policy {
        Policy { config }
    }

    /// The numbers this policy was built from.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Refresh when the access token expires within this margin.
    pub fn refresh_margin_ms(&self) -> u64 {
        self.config.refresh_margin_ms
    }

    /// Hard deadline of one endpoint call.
    pub fn call_deadline_ms(&self) -> u64 {
        self.config.call_deadline_ms
    }

    /// Retries after a provably-not-sent failure.
    pub fn transient_retries_max(&self) -> u32 {
        self.config.transient_retries_max
    }

    /// How long a participant waits for the refresh lock.
    pub fn refresh_lock_wait_ms_max(&self) -> u64 {
        self.config.refresh_lock_wait_ms_max
    }

    /// How long a writer waits for a store lock.
    pub fn store_lock_wait_ms_max(&self) -> u64 {
        self.config.store_lock_wait_ms_max
    }

    /// The provider's grace window, if any.
    pub fn grace_window_ms(&self) -> Option<u64> {
        self.config.grace_window_ms
    }

    /// Lease timing, for lease lock backends.
    pub fn lease(&self) -> Option<&LeaseConfig> {
        self.config.lease.as_ref()
    }

    /// Endpoint calls one refresh may make: 1 + transient retries.
    pub fn call_attempts_max(&self) -> u64 {
        self.config.call_attempts_max()
    }

    /// Time the store writes under the refresh lock may take.
    pub fn store_write_allowance_ms(&self) -> u64 {
        self.config.store_write_allowance_ms()
    }

    /// The longest a holder may legitimately keep the refresh lock.
    pub fn longest_hold_ms(&self) -> u64 {
        self.config.longest_hold_ms()
    }
}

fn check(config: &PolicyConfig) -> Result<(), PolicyError> {
    if config.call_deadline_ms == 0 {
        return Err(PolicyError::CallDeadlineZero);
    }
    if config.store_lock_wait_ms_max == 0 {
        return Err(PolicyError::StoreLockWaitZero);
    }
    if config.grace_window_ms == Some(0) {
        return Err(PolicyError::GraceWindowZero);
    }
    let longest_hold = LongestHold::of(config);
    if config.refresh_lock_wait_ms_max <= longest_hold.total_ms {
        return Err(PolicyError::RefreshLockWaitTooShort {
            refresh_lock_wait_ms_max: config.refresh_lock_wait_ms_max,
            longest_hold,
        });
    }
    if let Some(lease) = &config.lease {
        if lease.lease_ms < config.call_deadline_ms.saturating_mul(2) {
            return Err(PolicyError::LeaseBelowTwiceDeadline {
                lease_ms: lease.lease_ms,
                call_deadline_ms: config.call_deadline_ms,
            });
        }
        if lease.lease_ms <= longest_hold.total_ms {
            return Err(PolicyError::LeaseNotPastLongestHold {
                lease_ms: lease.lease_ms,
                longest_hold,
            });
        }
        if lease.renew_every_ms == 0 || lease.renew_every_ms > lease.lease_ms / 3 {
            return Err(PolicyError::LeaseRenewalOutOfRange {
                renew_every_ms: lease.renew_every_ms,
                lease_ms: lease.lease_ms,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn rejected(config: PolicyConfig) -> (PolicyError, alloc::string::String) {
        let error = Policy::new(config).expect_err("policy must be rejected");
        let message = error.to_string();
        (error, message)
    }

    fn with_lease(lease_ms: u64, renew_every_ms: u64) -> PolicyConfig {
        PolicyConfig {
            lease: Some(LeaseConfig {
                lease_ms,
                renew_every_ms,
            }),
            ..PolicyConfig::default()
        }
    }

    #[test]
    fn g8_default_is_valid_and_matches_spec_section_6() {
        let policy = Policy::new(PolicyConfig::default()).expect("default is valid");
        assert_eq!(policy, Policy::default());
        assert_eq!(policy.refresh_margin_ms(), 300_000);
        assert_eq!(policy.call_deadline_ms(), 30_000);
        assert_eq!(policy.transient_retries_max(), 1);
        assert_eq!(policy.refresh_lock_wait_ms_max(), 120_000);
        assert_eq!(policy.store_lock_wait_ms_max(), 10_000);
        assert_eq!((policy.grace_window_ms(), policy.lease()), (None, None));
        assert_eq!(policy.call_attempts_max(), 2);
        assert_eq!(policy.store_write_allowance_ms(), 40_000);
        assert_eq!(policy.longest_hold_ms(), 100_000);
        assert_eq!(policy.config(), &PolicyConfig::default());
    }

    #[test]
    fn g8_lease_for_config_is_valid() {
        let lease = LeaseConfig::for_config(&PolicyConfig::default());
        assert_eq!(
            lease,
            LeaseConfig {
                lease_ms: 102_000,
                renew_every_ms: 34_000
            }
        );
        for (deadline_ms, retries, store_ms) in
            [(1, 0, 1), (30_000, 0, 1), (90_000, 3, 7), (5, 9, 100_000)]
        {
            let mut config = PolicyConfig {
                call_deadline_ms: deadline_ms,
                transient_retries_max: retries,
                store_lock_wait_ms_max: store_ms,
                refresh_lock_wait_ms_max: u64::MAX,
                ..PolicyConfig::default()
            };
            config.lease = Some(LeaseConfig::for_config(&config));
            assert!(Policy::new(config.clone()).is_ok(), "{config:?}");
        }
    }

    #[test]
    fn g8_call_deadline_zero_is_rejected() {
        let (error, message) = rejected(PolicyConfig {
            call_deadline_ms: 0,
            ..PolicyConfig::default()
        });
        assert_eq!(error, PolicyError::CallDeadlineZero);
        assert!(
            message.starts_with("G8: call deadline must be > 0"),
            "{message}"
        );
    }

    #[test]
    fn g8_store_lock_wait_zero_is_rejected() {
        let (error, message) = rejected(PolicyConfig {
            store_lock_wait_ms_max: 0,
            ..PolicyConfig::default()
        });
        assert_eq!(error, PolicyError::StoreLockWaitZero);
        assert!(
            message.starts_with("G8: store-lock wait budget must be > 0"),
            "{message}"
        );
    }

    #[test]
    fn g7_grace_window_zero_is_rejected() {
        let (error, message) = rejected(PolicyConfig {
            grace_window_ms: Some(0),
            ..PolicyConfig::default()
        });
        assert_eq!(error, PolicyError::GraceWindowZero);
        assert!(
            message.starts_with("G7: grace window must be > 0"),
            "{message}"
        );
        assert!(Policy::new(PolicyConfig {
            grace_window_ms: Some(1),
            ..PolicyConfig::default()
        })
        .is_ok());
    }

    #[test]
    fn g8_refresh_lock_wait_not_past_longest_hold_is_rejected() {
        let (error, message) = rejected(PolicyConfig {
            refresh_lock_wait_ms_max: 50_000,
            ..PolicyConfig::default()
        });
        assert!(matches!(error, PolicyError::RefreshLockWaitTooShort { .. }));
        assert_eq!(
            message,
            "G8: refresh-lock wait budget 50000 ms must exceed the longest legitimate hold \
             100000 ms (call deadline 30000 ms x 2 attempts + store-write allowance 40000 ms)"
        );
        // Boundary: equal to the longest hold is rejected, one more is accepted.
        let equal = PolicyConfig {
            refresh_lock_wait_ms_max: 100_000,
            ..PolicyConfig::default()
        };
        assert!(matches!(
            rejected(equal).0,
            PolicyError::RefreshLockWaitTooShort { .. }
        ));
        assert!(Policy::new(PolicyConfig {
            refresh_lock_wait_ms_max: 100_001,
            ..PolicyConfig::default()
        })
        .is_ok());
    }

    #[test]
    fn g8_saturating_longest_hold_is_rejected_not_wrapped() {
        let config = PolicyConfig {
            call_deadline_ms: u64::MAX / 2,
            transient_retries_max: u32::MAX,
            refresh_lock_wait_ms_max: u64::MAX,
            ..PolicyConfig::default()
        };
        let (error, message) = rejected(config);
        assert!(matches!(
            error,
            PolicyError::RefreshLockWaitTooShort {
                longest_hold: LongestHold {
                    total_ms: u64::MAX,
                    ..
                },
                ..
            }
        ));
        assert!(
            message.starts_with("G8: refresh-lock wait budget"),
            "{message}"
        );
    }

    #[test]
    fn g8_lease_below_twice_the_deadline_is_rejected() {
        // Longest hold 30 s + 4 x 1 s = 34 s, so only the 2 x deadline bound is broken.
        let short_hold = PolicyConfig {
            transient_retries_max: 0,
            store_lock_wait_ms_max: 1_000,
            ..PolicyConfig::default()
        };
        let lease = |lease_ms| PolicyConfig {
            lease: Some(LeaseConfig {
                lease_ms,
                renew_every_ms: 1_000,
            }),
            ..short_hold.clone()
        };
        let (error, message) = rejected(lease(59_999));
        assert_eq!(
            error,
            PolicyError::LeaseBelowTwiceDeadline {
                lease_ms: 59_999,
                call_deadline_ms: 30_000
            }
        );
        assert_eq!(
            message,
            "G8: lease 59999 ms must be at least 2 x call deadline 30000 ms"
        );
        // Boundary: exactly twice the deadline is allowed (SPEC: ">=").
        assert!(Policy::new(lease(60_000)).is_ok());
    }

    #[test]
    fn g8_lease_not_past_the_longest_hold_is_rejected() {
        let (error, message) = rejected(with_lease(100_000, 30_000));
        assert!(matches!(
            error,
            PolicyError::LeaseNotPastLongestHold {
                lease_ms: 100_000,
                longest_hold: LongestHold {
                    total_ms: 100_000,
                    ..
                },
            }
        ));
        assert!(
            message.starts_with(
                "G8: lease 100000 ms must outlive the longest legitimate hold 100000 ms"
            ),
            "{message}"
        );
        // Boundary: equal to the longest hold is rejected, one more is accepted.
        assert!(Policy::new(with_lease(100_001, 30_000)).is_ok());
    }

    #[test]
    fn g8_lease_renewal_out_of_range_is_rejected() {
        for renew_every_ms in [0, 34_001, 102_000] {
            let (error, message) = rejected(with_lease(102_000, renew_every_ms));
            assert_eq!(
                error,
                PolicyError::LeaseRenewalOutOfRange {
                    renew_every_ms,
                    lease_ms: 102_000
                }
            );
            assert!(
                message.contains("must be > 0 and at most lease/3 = 34000 ms"),
                "{message}"
            );
        }
        // Boundary: exactly a third is allowed (SPEC: "renewed every lease/3").
        assert!(Policy::new(with_lease(102_000, 34_000)).is_ok());
        assert!(Policy::new(with_lease(102_000, 1)).is_ok());
    }

    #[cfg(feature = "unchecked-policy")]
    #[test]
    fn g8_unchecked_path_builds_a_broken_policy_for_tests() {
        let broken = PolicyConfig {
            refresh_lock_wait_ms_max: 1,
            ..PolicyConfig::default()
        };
        assert!(Policy::new(broken.clone()).is_err());
        assert_eq!(Policy::new_unchecked(broken.clone()).config(), &broken);
    }
}
