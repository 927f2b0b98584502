//! Typed failures of the PostgreSQL host, and how a driver error is sorted
//! into one (G10). Every message names the server by its redacted URL and
//! never carries a password or a token.

use rotor_fs::IdError;
use rotor_kernel::{Failure, StoreFault, StoreFaultKind};

use crate::url::StoreUrl;

/// What went wrong talking to PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The server could not be reached (down, refused, unresolvable).
    Unreachable,
    /// The server refused the login (password, role, database, pg_hba).
    AuthRefused,
    /// A statement or lock wait ran past its deadline (`statement_timeout`,
    /// `lock_timeout`).
    Timeout,
    /// The session ended under us (`pg_terminate_backend`, a restart, a
    /// network cut): everything it held, the refresh lock included, is gone.
    SessionLost,
    /// A store row that does not decode; never overwritten (G10).
    Corrupt,
    /// Anything else the server or driver reported.
    Other,
}

/// One classified driver error, its message already scrubbed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Its kind.
    pub kind: FaultKind,
    /// A message naming the server (redacted) and the cause.
    pub detail: String,
}

impl Fault {
    /// Sorts `error`, raised while `doing` something against `url`.
    pub fn of(url: &StoreUrl, doing: &str, error: &postgres::Error) -> Fault {
        let kind = classify(error);
        let what = match kind {
            FaultKind::Unreachable => "server unreachable",
            FaultKind::AuthRefused => "login refused",
            FaultKind::Timeout => "timed out",
            FaultKind::SessionLost => "session ended",
            FaultKind::Corrupt => "corrupt store",
            FaultKind::Other => "error",
        };
        // The driver's Display omits the server's detail; include it.
        let mut cause = error.to_string();
        if let Some(db) = error.as_db_error() {
            cause = format!("{} ({})", db.message(), db.code().code());
        } else if let Some(source) = std::error::Error::source(error) {
            cause = format!("{cause}: {source}");
        }
        Fault {
            kind,
            detail: url.scrub(&format!("postgres {url}: {what} while {doing}: {cause}")),
        }
    }

    /// A fault of `kind` with a message of rotor's own.
    pub fn new(kind: FaultKind, detail: String) -> Fault {
        Fault { kind, detail }
    }

    /// As the kernel's store fault (a timeout is a lock timeout; the rest is
    /// I/O).
    pub fn into_store_fault(self) -> StoreFault {
        StoreFault {
            kind: match self.kind {
                FaultKind::Timeout => StoreFaultKind::LockTimeout,
                FaultKind::Corrupt => StoreFaultKind::Corrupt,
                _ => StoreFaultKind::Io,
            },
            detail: self.detail,
        }
    }
}

/// The kind of a driver error, by SQLSTATE where the server sent one.
pub fn classify(error: &postgres::Error) -> FaultKind {
    if let Some(db) = error.as_db_error() {
        return match db.code().code() {
            // invalid_authorization_specification, invalid_password,
            // invalid_catalog_name (no such database)
            "28000" | "28P01" | "3D000" => FaultKind::AuthRefused,
            // query_canceled (statement_timeout), lock_not_available (lock_timeout)
            "57014" | "55P03" => FaultKind::Timeout,
            // admin_shutdown (pg_terminate_backend, fast shutdown), crash_shutdown,
            // idle_session_timeout, idle_in_transaction_session_timeout
            "57P01" | "57P02" | "57P05" | "25P03" => FaultKind::SessionLost,
            // cannot_connect_now (starting up), too_many_connections
            "57P03" | "53300" => FaultKind::Unreachable,
            _ => FaultKind::Other,
        };
    }
    if error.is_closed() {
        return FaultKind::SessionLost;
    }
    let text = error.to_string();
    if text.contains("error connecting") || text.contains("timeout") && text.contains("connect") {
        return FaultKind::Unreachable;
    }
    // An I/O error on an open session: the session is gone.
    if std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>()) {
        return FaultKind::SessionLost;
    }
    FaultKind::Other
}

/// Why a call of the embedding API gave no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An agent, provider or profile id was refused (G9).
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// The store URL does not parse (the message is redacted).
    #[error("{0}")]
    BadUrl(String),
    /// The server could not be reached; nothing was changed.
    #[error("{}", .0.detail)]
    Unreachable(Fault),
    /// The server refused rotor's login.
    #[error("{}", .0.detail)]
    AuthRefused(Fault),
    /// A statement ran past its deadline.
    #[error("{}", .0.detail)]
    Timeout(Fault),
    /// The schema was migrated by a newer rotor; this one will not touch it.
    #[error("postgres {url}: schema {schema} is at version {found}, this rotor knows versions up to {supported}: upgrade rotor")]
    SchemaTooNew {
        /// The server, redacted.
        url: String,
        /// The schema.
        schema: String,
        /// The version found.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },
    /// A store could not be read or written.
    #[error("{}", .0.detail)]
    Store(StoreFault),
    /// The protocol ended in a typed failure (G10).
    #[error("{0}")]
    Failed(Failure),
}

impl From<Fault> for Error {
    fn from(fault: Fault) -> Error {
        match fault.kind {
            FaultKind::Unreachable => Error::Unreachable(fault),
            FaultKind::AuthRefused => Error::AuthRefused(fault),
            FaultKind::Timeout => Error::Timeout(fault),
            FaultKind::SessionLost | FaultKind::Corrupt | FaultKind::Other => {
                Error::Store(fault.into_store_fault())
            }
        }
    }
}
