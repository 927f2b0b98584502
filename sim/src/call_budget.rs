//! The G2 bound on endpoint calls in one resolve, the one statement of it
//! that the simulator's world and the explorer both check (SPEC §3 steps 6
//! and 9, §6).
//!
//! Per presented refresh token: the configured attempts (1 + transient
//! retries) and, where the provider has a grace window, one grace retry.
//! Per resolve: the first token and at most [`rotor_kernel::SUCCESSORS_MAX`]
//! successors found after a reuse refusal (step 9: each one a rotation the
//! agent needs, as when a login another program made is already expired by
//! this process's clock). A token presented again after another is a new
//! presentation and counts again.

use core::fmt::Display;

use rotor_kernel::Policy;

/// The calls one resolve has made, as the bound counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallBudget {
    /// The token presented last (family, rank).
    subject: Option<(u32, u32)>,
    /// Distinct presentations so far.
    subjects: u8,
    /// Calls made with the token presented last.
    calls_for_subject: u8,
}

impl CallBudget {
    /// Counts one call presenting `token` (family, rank).
    pub fn on_call(&mut self, token: (u32, u32)) {
        if self.subject != Some(token) {
            self.subject = Some(token);
            self.subjects = self.subjects.saturating_add(1);
            self.calls_for_subject = 0;
        }
        self.calls_for_subject = self.calls_for_subject.saturating_add(1);
    }

    /// The token presented last (family, rank).
    pub fn subject(&self) -> Option<(u32, u32)> {
        self.subject
    }

    /// What exceeds the bound, if anything, for `who` under `policy`, with
    /// `grace_retry` when the resolve made its grace retry (G2).
    pub fn excess(&self, who: impl Display, policy: &Policy, grace_retry: bool) -> Option<String> {
        let allowed = policy.call_attempts_max() + u64::from(grace_retry);
        if u64::from(self.calls_for_subject) > allowed {
            return Some(format!(
                "{who} made {} endpoint calls with one refresh token in one resolve (at most {allowed})",
                self.calls_for_subject
            ));
        }
        let subjects_allowed = 1 + rotor_kernel::SUCCESSORS_MAX;
        if self.subjects > subjects_allowed {
            return Some(format!(
                "{who} presented {} refresh tokens in one resolve (at most {subjects_allowed})",
                self.subjects
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        crate::policy::policy(None, false)
    }

    #[test]
    fn g2_retries_of_one_token_are_bounded_by_the_policy() {
        let mut budget = CallBudget::default();
        let attempts = policy().call_attempts_max();
        for _ in 0..attempts {
            budget.on_call((0, 1));
        }
        assert_eq!(budget.excess("a", &policy(), false), None);
        budget.on_call((0, 1));
        let excess = budget.excess("a", &policy(), false).unwrap();
        assert!(excess.contains("with one refresh token"), "{excess}");
        assert_eq!(budget.excess("a", &policy(), true), None, "a grace retry");
    }

    #[test]
    fn g2_a_successor_has_its_own_budget_and_successors_are_bounded() {
        let mut budget = CallBudget::default();
        let attempts = policy().call_attempts_max();
        let tokens = 1 + u32::from(rotor_kernel::SUCCESSORS_MAX);
        for n in 0..tokens {
            for _ in 0..attempts {
                budget.on_call((0, n));
            }
        }
        assert_eq!(budget.subject(), Some((0, tokens - 1)));
        assert_eq!(budget.excess("a", &policy(), false), None);
        budget.on_call((1, 0));
        let excess = budget.excess("a", &policy(), false).unwrap();
        assert!(excess.contains("refresh tokens in one resolve"), "{excess}");
    }
}
