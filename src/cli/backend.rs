//! The store a subcommand works on: the state directory (the default) or a
//! PostgreSQL store shared across machines (`--store postgres://…` or
//! `$ROTOR_STORE`). Both run the same kernel through the same driver; only
//! the host differs. PostgreSQL errors get the existing exit codes; the
//! URL's password never appears in any message.
use std::process::ExitCode;

use rotor_fs::Rotor;
use rotor_kernel::{Credential, Failure, Granted};
use rotor_pg::PgRotor;
use serde_json::json;

use super::token::{
    error_exit, exit, report_error, resolve_settings, usage_error, PolicyArgs, StateDirArgs,
};

/// One opened store.
pub(crate) enum Backend {
    /// The state directory.
    Fs(Rotor),
    /// A PostgreSQL store.
    Pg(Box<PgRotor>),
}

/// A failure of either host.
pub(crate) enum BackendError {
    Fs(rotor_fs::Error),
    Pg(rotor_pg::Error),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Fs(error) => error.fmt(f),
            BackendError::Pg(error) => error.fmt(f),
        }
    }
}

impl BackendError {
    /// Its exit code and JSON `kind`.
    pub(crate) fn exit(&self) -> (u8, &'static str) {
        match self {
            BackendError::Fs(error) => error_exit(error),
            BackendError::Pg(error) => pg_exit(error),
        }
    }
}

impl From<rotor_fs::Error> for BackendError {
    fn from(error: rotor_fs::Error) -> Self {
        BackendError::Fs(error)
    }
}

impl From<rotor_pg::Error> for BackendError {
    fn from(error: rotor_pg::Error) -> Self {
        BackendError::Pg(error)
    }
}

impl Backend {
    /// Opens the PostgreSQL store at `url`, or else the state directory.
    pub(crate) fn open_with(
        url: Option<&str>,
        state_dir: &std::path::Path,
        policy: rotor_kernel::Policy,
    ) -> Result<Backend, BackendError> {
        Ok(match url {
            Some(url) => Backend::Pg(Box::new(PgRotor::open(url)?.with_policy(policy))),
            None => Backend::Fs(Rotor::open(state_dir)?.with_policy(policy)),
        })
    }

    /// Opens the store `state` names with the policy of `policy`; a usage
    /// error or a failure to open is reported and its exit code returned.
    pub(crate) fn open(
        command: &str,
        state: &StateDirArgs,
        policy: &PolicyArgs,
        json: bool,
    ) -> Result<Backend, ExitCode> {
        let url = state
            .store_url()
            .map_err(|message| usage_error(command, &message, json))?;
        let Some(url) = url else {
            let (state_dir, policy) = resolve_settings(command, state, policy, json)?;
            return Rotor::open(&state_dir)
                .map(|rotor| Backend::Fs(rotor.with_policy(policy)))
                .map_err(|error| report(command, &error.into(), json));
        };
        let policy = policy
            .policy()
            .map_err(|message| usage_error(command, &message, json))?;
        PgRotor::open(&url)
            .map(|rotor| Backend::Pg(Box::new(rotor.with_policy(policy))))
            .map_err(|error| report(command, &error.into(), json))
    }

    /// See `Rotor::token`.
    pub(crate) fn token(
        &self,
        agent: &str,
        provider: &str,
        profile: &str,
    ) -> Result<Granted, BackendError> {
        match self {
            Backend::Fs(rotor) => Ok(rotor.token(agent, provider, profile)?),
            Backend::Pg(rotor) => Ok(rotor.token(agent, provider, profile)?),
        }
    }

    /// See `Rotor::provider_of`.
    pub(crate) fn provider_of(
        &self,
        agent: &str,
        profile: &str,
    ) -> Result<Option<String>, BackendError> {
        match self {
            Backend::Fs(rotor) => Ok(rotor.provider_of(agent, profile)?),
            Backend::Pg(rotor) => Ok(rotor.provider_of(agent, profile)?),
        }
    }

    /// The provider stored for `profile`, or `--provider`; no credential is
    /// `Failed(NoCredential)`.
    pub(crate) fn provider(
        &self,
        given: Option<&str>,
        agent: &str,
        profile: &str,
    ) -> Result<String, BackendError> {
        if let Some(provider) = given {
            return Ok(provider.to_owned());
        }
        self.provider_of(agent, profile)?
            .ok_or(BackendError::Fs(rotor_fs::Error::Failed(
                Failure::NoCredential,
            )))
    }

    /// See `Rotor::login`.
    pub(crate) fn login(
        &self,
        agent: &str,
        profile: &str,
        credential: Credential,
    ) -> Result<u64, BackendError> {
        match self {
            Backend::Fs(rotor) => Ok(rotor.login(agent, profile, credential)?),
            Backend::Pg(rotor) => Ok(rotor.login(agent, profile, credential)?),
        }
    }

    /// See `Rotor::logout`.
    pub(crate) fn logout(
        &self,
        agent: &str,
        provider: &str,
        profile: &str,
    ) -> Result<u64, BackendError> {
        match self {
            Backend::Fs(rotor) => Ok(rotor.logout(agent, provider, profile)?),
            Backend::Pg(rotor) => Ok(rotor.logout(agent, provider, profile)?),
        }
    }

    /// Where `agent`'s store is, for messages: its file, or the server
    /// (redacted), schema and agent.
    pub(crate) fn store_name(&self, agent: &str) -> Result<String, BackendError> {
        match self {
            Backend::Fs(rotor) => Ok(rotor.store(agent)?.path().display().to_string()),
            Backend::Pg(rotor) => {
                let target = rotor.target();
                Ok(format!(
                    "{}/{agent} at {}",
                    target.tables.stores, target.url
                ))
            }
        }
    }
}

/// The exit code and JSON `kind` of a PostgreSQL failure: the kernel's
/// failures as on the filesystem; a server that cannot be reached is
/// transient (nothing was sent: try again); a refused login, a timeout and
/// a schema from a newer rotor are store errors.
pub(crate) fn pg_exit(error: &rotor_pg::Error) -> (u8, &'static str) {
    use rotor_pg::Error as E;
    match error {
        E::InvalidId(_) => (exit::USAGE, "invalid_id"),
        E::BadUrl(_) => (exit::USAGE, "usage"),
        E::Unreachable(_) => (exit::TRANSIENT, "store_unreachable"),
        E::AuthRefused(_) => (exit::STORE, "store_auth_refused"),
        E::Timeout(_) => (exit::STORE, "store_timeout"),
        E::SchemaTooNew { .. } => (exit::STORE, "store_schema_too_new"),
        E::Store(fault) => error_exit(&rotor_fs::Error::Store(fault.clone())),
        E::Failed(failure) => error_exit(&rotor_fs::Error::Failed(failure.clone())),
    }
}

/// Reports `error` on stderr (and as JSON on stdout with `json`); returns
/// its exit code.
pub(crate) fn report(command: &str, error: &BackendError, json: bool) -> ExitCode {
    let error = match error {
        BackendError::Fs(error) => return report_error(command, error, json),
        BackendError::Pg(error) => error,
    };
    let (code, kind) = pg_exit(error);
    eprintln!("rotor {command}: {error}");
    if json {
        let value =
            json!({"error": {"kind": kind, "message": error.to_string(), "exit_code": code}});
        println!("{value}");
    }
    ExitCode::from(code)
}
