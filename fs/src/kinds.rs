//! How a failure is named to people and programs: a stable kind (`"in_doubt"`)
//! and an exit code, the same for the `rotor` command (its exit status and
//! `--json` output) and for the embeddings (`@rotor/node`'s `error.code` and
//! `error.exitCode`). One table, so they cannot drift apart.

use rotor_kernel::{Failure, StoreFaultKind};

use crate::Error;

/// Exit codes (docs/SPEC.md §9).
pub mod exit {
    /// A token was printed.
    pub const OK: u8 = 0;
    /// A bug in rotor (it says so on stderr).
    pub const INTERNAL: u8 = 1;
    /// Bad arguments or a refused id.
    pub const USAGE: u8 = 2;
    /// No credential for the profile, logged out, another provider's or not
    /// refreshable: run `rotor login`.
    pub const NO_CREDENTIAL: u8 = 3;
    /// The token family is dead (refused, marked, or its rotation was lost):
    /// run `rotor login`.
    pub const NEEDS_REAUTH: u8 = 4;
    /// This call presented the refresh token and does not know the outcome;
    /// the fence stays and the next call reports NEEDS_REAUTH.
    pub const IN_DOUBT: u8 = 5;
    /// The endpoint could not be reached; nothing was sent: try again.
    pub const TRANSIENT: u8 = 6;
    /// The endpoint refused (not a token reuse): check the client settings.
    pub const REJECTED: u8 = 7;
    /// The refresh lock was not acquired in time (the message names its holder).
    pub const LOCK_TIMEOUT: u8 = 8;
    /// A store or the state directory is corrupt, unsafe or unreadable
    /// (the message names the file and any backup).
    pub const STORE: u8 = 9;
    /// A login or logout replaced the credential during the refresh: try again.
    pub const SUPERSEDED: u8 = 10;
}

/// A failure's stable name and exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// The exit code of the `rotor` command.
    pub exit_code: u8,
    /// The kind, as `--json` and `@rotor/node` name it (`"needs_reauth"`).
    pub name: &'static str,
}

const fn kind(exit_code: u8, name: &'static str) -> Kind {
    Kind { exit_code, name }
}

/// The kind of a store fault, wherever it was found.
pub fn store_fault_kind(fault: StoreFaultKind) -> Kind {
    match fault {
        StoreFaultKind::Corrupt => kind(exit::STORE, "store_corrupt"),
        StoreFaultKind::Unsafe => kind(exit::STORE, "store_unsafe"),
        StoreFaultKind::LockTimeout => kind(exit::STORE, "store_lock_timeout"),
        StoreFaultKind::Io => kind(exit::STORE, "store_io"),
    }
}

/// The kind of a protocol failure.
pub fn failure_kind(failure: &Failure) -> Kind {
    match failure {
        Failure::NoCredential => kind(exit::NO_CREDENTIAL, "no_credential"),
        Failure::ProviderMismatch { .. } => kind(exit::NO_CREDENTIAL, "provider_mismatch"),
        Failure::NotRefreshable { .. } => kind(exit::NO_CREDENTIAL, "not_refreshable"),
        Failure::LoggedOut { .. } => kind(exit::NO_CREDENTIAL, "logged_out"),
        Failure::NeedsReauth(_) => kind(exit::NEEDS_REAUTH, "needs_reauth"),
        Failure::RotationNotStored { .. } => kind(exit::NEEDS_REAUTH, "rotation_not_stored"),
        Failure::InDoubt { .. } => kind(exit::IN_DOUBT, "in_doubt"),
        Failure::Transient { .. } => kind(exit::TRANSIENT, "transient"),
        Failure::Rejected { .. } => kind(exit::REJECTED, "rejected"),
        // A lock that failed with an error (an unsafe lock file or directory)
        // is a state-directory problem, not a wait that ran out.
        Failure::LockTimeout { error: Some(_), .. } => kind(exit::STORE, "lock_error"),
        Failure::LockTimeout { .. } => kind(exit::LOCK_TIMEOUT, "lock_timeout"),
        Failure::Store { fault, .. } => store_fault_kind(fault.kind),
        Failure::Superseded { .. } => kind(exit::SUPERSEDED, "superseded"),
    }
}

impl Error {
    /// This error's kind and exit code. A store fault is named by its kind
    /// (`store_corrupt`) whether a refresh or a plain read found it.
    pub fn kind(&self) -> Kind {
        match self {
            Error::InvalidId(_) => kind(exit::USAGE, "invalid_id"),
            Error::Store(fault) => store_fault_kind(fault.kind),
            Error::Failed(failure) => failure_kind(failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotor_kernel::{ReauthReason, StoreFault};

    #[test]
    fn a_store_fault_has_one_name_inside_and_outside_a_refresh_g10() {
        let fault = StoreFault {
            kind: StoreFaultKind::Corrupt,
            detail: "x".into(),
        };
        let outside = Error::Store(fault.clone()).kind();
        let inside = Error::Failed(Failure::Store {
            store: rotor_kernel::StoreRef::Own,
            fault,
        })
        .kind();
        assert_eq!(outside, inside);
        assert_eq!(outside, kind(exit::STORE, "store_corrupt"));
    }

    #[test]
    fn every_kind_has_the_exit_code_its_class_promises_g10() {
        let reauth = Failure::NeedsReauth(ReauthReason::Marked);
        assert_eq!(
            failure_kind(&reauth),
            kind(exit::NEEDS_REAUTH, "needs_reauth")
        );
        assert_eq!(
            failure_kind(&Failure::NoCredential),
            kind(exit::NO_CREDENTIAL, "no_credential")
        );
    }
}
