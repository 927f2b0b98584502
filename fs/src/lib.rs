//! rotor's real host: the refresh protocol of `rotor-kernel` run against the
//! file system, with `flock` locks, atomic JSON stores and the token
//! endpoint, so that many threads and processes of one machine share one
//! OAuth credential and spend each refresh token exactly once.
//!
//! # Embedding
//!
//! ```
//! use rotor_fs::Rotor;
//! use rotor_kernel::Credential;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let temp = tempfile::tempdir()?;
//! # let state_dir = temp.path().join("state");
//! let rotor = Rotor::open(&state_dir)?;
//! # let far_future_ms = rotor_fs::lock::now_ms() + 3_600_000;
//! # rotor.login("main", "acme:default", Credential::oauth("acme", "at-1", "rt-1", far_future_ms))?;
//! let token = rotor.token("main", "acme", "acme:default")?;
//! assert_eq!(token.access.expose(), "at-1");
//! # Ok(()) }
//! ```
//!
//! `token` reads the agent's store; when the access token is about to expire
//! it takes the refresh lock, presents the refresh token once, stores the
//! rotation durably and releases the lock. Every other caller, in this
//! process or another, waits for the lock and then adopts the stored
//! rotation (docs/SPEC.md §3). A credential's endpoint settings (token URL, client,
//! or a refresh command) are stored with it by `rotor login`; see
//! [`settings`].
//!
//! # Layout
//!
//! - [`paths`]: the state directory's layout and the ids that name things;
//! - [`io`]: the I/O seam every file, lock and process call goes through
//!   ([`io::OsIo`] here; a simulated file system in `rotor-sim`);
//! - [`safe_fs`]: no-follow opens, 0700/0600, atomic durable writes (G6, G9);
//! - [`store`]: lock-free reads, locked read-modify-writes, corrupt files
//!   kept aside (G4, G10);
//! - [`lock`]: the refresh lock (single-flight, then `flock`) (G1, G8);
//!   `lock_wait` waits for a contended `flock` with a deadline;
//! - [`endpoint`], [`settings`]: the RFC 6749 refresh grant and the refresh
//!   command (SPEC §7);
//! - [`status`]: what `rotor status` shows;
//! - [`kinds`]: each failure's stable name and exit code (CLI and Node);
//! - [`failpoint`]: test-only crash points;
//! - `conformance` (feature `conformance`): the host-trait conformance suite;
//! - `async_rotor` (feature `tokio`): `AsyncRotor`, the same calls as
//!   futures for tokio hosts.
//!
//! Logs go through `tracing` (the kernel never logs); secrets never appear
//! in them, only fingerprints.

pub mod endpoint;
pub mod failpoint;
pub mod io;
pub mod kinds;
pub mod lock;
mod lock_wait;
pub mod paths;
pub mod safe_fs;
pub mod settings;
pub mod single_flight;
pub mod status;
pub mod store;
pub mod sync;

#[cfg(feature = "conformance")]
pub mod conformance;

#[cfg(feature = "tokio")]
pub mod async_rotor;
#[cfg(feature = "tokio")]
pub use async_rotor::AsyncRotor;

use std::path::PathBuf;
use std::sync::Arc;

use rotor_kernel::driver::{self, Clock, TokenEndpoint};
use rotor_kernel::{
    Credential, Failure, Granted, Holder, LockKey, Mutation, Policy, Request, Role, StoreFault,
    StoreRef,
};

pub use endpoint::FsEndpoint;
use io::{Io, OsIo};
pub use lock::FsRefreshLock;
pub use paths::{AgentId, IdError, Layout};
pub use single_flight::SingleFlight;
pub use store::{FsStores, StoreFile};

/// Why a call of the embedding API gave no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An agent, provider or profile id was refused (G9).
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// The state directory or a store is unsafe, unreadable or corrupt.
    #[error("{}", .0.detail)]
    Store(StoreFault),
    /// The protocol ended in a typed failure (G10).
    #[error("{0}")]
    Failed(Failure),
}

/// The system clock, epoch milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        lock::now_ms()
    }
}

/// One state directory, ready to hand out tokens. Cheap to clone; clones
/// share the in-process single-flight, so threads holding clones coalesce.
#[derive(Clone, Debug)]
pub struct Rotor {
    io: Arc<dyn Io>,
    layout: Layout,
    policy: Policy,
    flight: SingleFlight,
}

impl Rotor {
    /// Opens (creating it 0700 if missing) the state directory. A symlinked
    /// state directory, or one writable by group or others, is refused.
    pub fn open(state_dir: impl Into<PathBuf>) -> Result<Rotor, Error> {
        Rotor::open_on(Arc::new(OsIo), state_dir)
    }

    /// Opens the state directory on another [`Io`]: the simulated disk of
    /// `rotor-sim`, where the checkers run this very host code.
    pub fn open_on(io: Arc<dyn Io>, state_dir: impl Into<PathBuf>) -> Result<Rotor, Error> {
        let layout = Layout::new(state_dir);
        safe_fs::check_root_on(io.as_ref(), layout.root(), true).map_err(Error::Store)?;
        Ok(Rotor {
            io,
            layout,
            policy: Policy::default(),
            flight: SingleFlight::new(),
        })
    }

    /// Uses `policy` instead of the SPEC §6 defaults.
    pub fn with_policy(mut self, policy: Policy) -> Rotor {
        self.policy = policy;
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The state directory's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The store file of `agent`.
    pub fn store(&self, agent: &str) -> Result<StoreFile, Error> {
        let agent = AgentId::new(agent)?;
        Ok(StoreFile::with_io(
            self.io.clone(),
            &self.layout,
            &agent,
            self.policy.store_lock_wait_ms_max(),
        ))
    }

    fn holder(agent: &AgentId) -> Holder {
        Holder {
            pid: std::process::id(),
            host: lock::host_name().into(),
            agent: agent.as_str().into(),
        }
    }

    fn refresh_lock(&self, agent: &AgentId) -> FsRefreshLock {
        FsRefreshLock::with_io(
            self.io.clone(),
            self.layout.clone(),
            self.flight.clone(),
            agent.as_str(),
        )
    }

    fn stores(&self, agent: &AgentId) -> FsStores {
        FsStores::with_io(
            self.io.clone(),
            &self.layout,
            agent,
            self.policy.store_lock_wait_ms_max(),
        )
    }

    /// A usable access token for `profile` of `provider`, as seen by
    /// `agent` (`"main"` for the main agent), refreshing it if needed.
    pub fn token(&self, agent: &str, provider: &str, profile: &str) -> Result<Granted, Error> {
        self.token_via(&mut FsEndpoint, agent, provider, profile)
    }

    /// [`Rotor::token`] with another token endpoint than the one stored
    /// with the credential (a simulated provider, or an embedder's own
    /// client).
    pub fn token_via<E: TokenEndpoint>(
        &self,
        endpoint: &mut E,
        agent: &str,
        provider: &str,
        profile: &str,
    ) -> Result<Granted, Error> {
        let agent = AgentId::new(agent)?;
        paths::check_id("provider", provider)?;
        paths::check_id("profile", profile)?;
        let request = Request {
            role: if agent.is_main() {
                Role::Main
            } else {
                Role::Sub
            },
            provider: provider.into(),
            profile: profile.into(),
            holder: Rotor::holder(&agent),
        };
        let span = tracing::debug_span!("resolve", agent = %agent, provider, profile);
        let _entered = span.enter();
        let mut lock = self.refresh_lock(&agent);
        let mut stores = self.stores(&agent);
        let resolution = driver::resolve(
            driver::Host {
                lock: &mut lock,
                stores: &mut stores,
                endpoint,
                clock: &SystemClock,
            },
            request,
            self.policy.clone(),
        );
        match &resolution {
            Ok(granted) => {
                tracing::debug!(outcome = ?granted.outcome, generation = granted.generation, "resolved")
            }
            Err(failure) => tracing::warn!(%failure, "resolve failed"),
        }
        resolution.map_err(Error::Failed)
    }

    /// The provider of `profile` as stored for `agent` (own store, then
    /// main), for callers that know only the profile id.
    pub fn provider_of(&self, agent: &str, profile: &str) -> Result<Option<String>, Error> {
        let agent = AgentId::new(agent)?;
        paths::check_id("profile", profile)?;
        let stores = self.stores(&agent);
        for store in [StoreRef::Own, StoreRef::Main] {
            let view = stores
                .file(store)
                .read_view(profile)
                .map_err(Error::Store)?;
            if let Some(credential) = view.credential {
                return Ok(Some(credential.provider.to_string()));
            }
        }
        Ok(None)
    }

    /// Installs a new token family for `profile` in `agent`'s store (SPEC §3:
    /// under the refresh lock, then the store lock; the generation moves past
    /// everything the store has seen; fence and mark are cleared). Returns
    /// the installed generation.
    pub fn login(&self, agent: &str, profile: &str, credential: Credential) -> Result<u64, Error> {
        let provider = credential.provider.clone();
        self.locked_write(
            agent,
            &provider,
            profile,
            Mutation::Login {
                credential: credential.into(),
            },
        )
    }

    /// Leaves a logout tombstone for `profile` in `agent`'s store (G11).
    pub fn logout(&self, agent: &str, provider: &str, profile: &str) -> Result<u64, Error> {
        let mutation = Mutation::Logout {
            provider: provider.to_owned(),
        };
        self.locked_write(agent, provider, profile, mutation)
    }

    fn locked_write(
        &self,
        agent: &str,
        provider: &str,
        profile: &str,
        mutation: Mutation,
    ) -> Result<u64, Error> {
        let agent = AgentId::new(agent)?;
        paths::check_id("provider", provider)?;
        paths::check_id("profile", profile)?;
        let key = LockKey::new(provider, profile);
        driver::locked_write(
            &mut self.refresh_lock(&agent),
            &mut self.stores(&agent),
            &key,
            profile,
            &mutation,
            self.policy.refresh_lock_wait_ms_max(),
        )
        .map_err(Error::Failed)
    }
}
