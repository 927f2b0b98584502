//! [`AsyncRotor`]: the fs host for async Rust (tokio), feature `tokio`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rotor_fs::Error> {
//! # let temp = tempfile::tempdir().unwrap();
//! # let state_dir = temp.path().join("state");
//! use rotor_fs::AsyncRotor;
//! let rotor = AsyncRotor::open(&state_dir).await?;
//! # let far_future_ms = rotor_fs::lock::now_ms() + 3_600_000;
//! # let credential = rotor_kernel::Credential::oauth("acme", "at-1", "rt-1", far_future_ms);
//! # rotor.login("main", "acme:default", credential).await?;
//! let token = rotor.token("main", "acme", "acme:default").await?;
//! assert_eq!(token.access.expose(), "at-1");
//! # Ok(()) }
//! ```
//!
//! # No second implementation
//!
//! Every call runs the blocking [`Rotor`] (the same kernel resolve, locks,
//! stores and endpoint) on tokio's blocking pool with
//! [`tokio::task::spawn_blocking`], and the future only awaits its end. So
//! async hosts, threads, `rotor token` processes and the Node package share
//! one implementation, one state directory and one in-process single-flight
//! (clones of an `AsyncRotor`, and the [`Rotor`] it wraps, share it): a
//! thousand tasks asking for an expired token in one process make one
//! refresh, the others adopt it (G2).
//!
//! # Never blocks the executor
//!
//! A waiting call (for the refresh lock, a store lock, the token endpoint)
//! waits on a blocking-pool thread, never on a runtime worker, so the tasks
//! of a `current_thread` runtime keep running while it waits. The price: each
//! call in flight holds one blocking-pool thread (tokio starts at most 512 by
//! default, `Builder::max_blocking_threads`; calls beyond wait in its queue,
//! and their lock budget starts when they start).
//!
//! # Cancellation safety
//!
//! Dropping a `token` future (a `select!`, a `timeout`, an aborted task) does
//! not stop the call it started: a blocking task cannot be interrupted, so it
//! runs to its end, as if its caller were still waiting.
//!
//! - The refresh lock is released only when the call is over (G8): a dropped
//!   future never frees the lock while its refresh token is at the provider,
//!   so nobody else presents that token meanwhile (G1).
//! - A rotation the provider granted is stored durably before the lock is
//!   released (G2, G7); the next caller adopts it (`Adopted { from: Peer }`)
//!   instead of refreshing again.
//! - A future dropped before its first poll started nothing.
//!
//! To bound how long a caller waits, set the [`Policy`](rotor_kernel::Policy)
//! (lock wait, call deadline) rather than only dropping the future: a
//! dropped call keeps its blocking thread until those budgets end.
//!
//! If the runtime shuts down before a queued call starts, the call does
//! nothing and reports [`Failure::Transient`] (nothing was read or sent: try
//! again). A call that started finishes even while the runtime shuts down
//! (tokio waits for running blocking tasks, or leaves them to finish on
//! their own with `shutdown_background`); a process that exits in the middle
//! of a refresh is the crash case of SPEC §3, covered by the in-doubt fence
//! (G7).

use std::path::PathBuf;

use rotor_kernel::{Credential, Failure, Granted};

use crate::status::{self, Report};
use crate::{Error, Rotor};

/// A [`Rotor`] for tokio hosts: the same calls, as futures that never block
/// the executor and are safe to drop (module docs). Cheap to clone; clones
/// share the in-process single-flight.
#[derive(Clone, Debug)]
pub struct AsyncRotor {
    rotor: Rotor,
}

impl From<Rotor> for AsyncRotor {
    fn from(rotor: Rotor) -> AsyncRotor {
        AsyncRotor { rotor }
    }
}

/// Runs `work` on tokio's blocking pool and waits for it without blocking
/// the executor. Dropping the returned future detaches `work`, which still
/// runs to its end.
async fn off_executor<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(Error::Failed(Failure::Transient {
            detail: "the tokio runtime shut down before the call started; nothing was read \
                     or sent: try again"
                .into(),
        })),
    }
}

impl AsyncRotor {
    /// [`Rotor::open`], off the executor.
    pub async fn open(state_dir: impl Into<PathBuf>) -> Result<AsyncRotor, Error> {
        let state_dir = state_dir.into();
        off_executor(move || Rotor::open(state_dir).map(AsyncRotor::from)).await
    }

    /// Uses `policy` instead of the SPEC §6 defaults.
    pub fn with_policy(self, policy: rotor_kernel::Policy) -> AsyncRotor {
        AsyncRotor {
            rotor: self.rotor.with_policy(policy),
        }
    }

    /// The blocking host underneath (sharing this one's single-flight).
    pub fn blocking(&self) -> &Rotor {
        &self.rotor
    }

    /// Runs `work` over the blocking [`Rotor`] (sharing this one's
    /// single-flight) on the blocking pool, with the guarantees of the other
    /// calls: the executor never blocks, and a dropped future leaves `work`
    /// running to its end. For hosts that chain calls in one trip off the
    /// executor, e.g. look up the provider, then ask for the token.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Rotor) -> Result<T, Error> + Send + 'static,
    {
        let rotor = self.rotor.clone();
        off_executor(move || work(&rotor)).await
    }

    /// [`Rotor::token`]: a usable access token for `profile` of `provider`,
    /// as seen by `agent`, refreshing it if needed. Safe to drop at any
    /// point (module docs).
    pub async fn token(
        &self,
        agent: &str,
        provider: &str,
        profile: &str,
    ) -> Result<Granted, Error> {
        let rotor = self.rotor.clone();
        let (agent, provider, profile) =
            (agent.to_owned(), provider.to_owned(), profile.to_owned());
        off_executor(move || rotor.token(&agent, &provider, &profile)).await
    }

    /// [`Rotor::provider_of`].
    pub async fn provider_of(&self, agent: &str, profile: &str) -> Result<Option<String>, Error> {
        let rotor = self.rotor.clone();
        let (agent, profile) = (agent.to_owned(), profile.to_owned());
        off_executor(move || rotor.provider_of(&agent, &profile)).await
    }

    /// [`Rotor::login`]. Dropping the future does not undo the login.
    pub async fn login(
        &self,
        agent: &str,
        profile: &str,
        credential: Credential,
    ) -> Result<u64, Error> {
        let rotor = self.rotor.clone();
        let (agent, profile) = (agent.to_owned(), profile.to_owned());
        off_executor(move || rotor.login(&agent, &profile, credential)).await
    }

    /// [`Rotor::logout`]. Dropping the future does not undo the logout.
    pub async fn logout(&self, agent: &str, provider: &str, profile: &str) -> Result<u64, Error> {
        let rotor = self.rotor.clone();
        let (agent, provider, profile) =
            (agent.to_owned(), provider.to_owned(), profile.to_owned());
        off_executor(move || rotor.logout(&agent, &provider, &profile)).await
    }

    /// What `rotor status` shows ([`status::gather`]).
    pub async fn status(&self) -> Result<Report, Error> {
        let layout = self.rotor.layout().clone();
        off_executor(move || status::gather(&layout).map_err(Error::Store)).await
    }
}
