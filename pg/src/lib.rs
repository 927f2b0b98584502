//! rotor over PostgreSQL: many machines (containers, CI runners, pods) share
//! one OAuth credential through one database, and each refresh token is
//! still presented at most once.
//!
//! The refresh lock and the stores live in one linearizable system, and the
//! write that matters is conditional on still holding the lock: the in-doubt
//! fence (SPEC §3 step 6) is written through the session that holds the
//! refresh lock, in a transaction that fails unless that session still
//! holds it and the lock's epoch is still its own. A holder that lost its
//! session cannot write its fence, so it never presents; a holder that wrote
//! its fence before losing the lock leaves that fence to the next holder,
//! which therefore never presents the same token. The theorem, its
//! assumptions and its limits are in ARCHITECTURE.md ("The PostgreSQL
//! backend").
//!
//! # Embedding
//!
//! ```no_run
//! use rotor_pg::PgRotor;
//!
//! # fn main() -> Result<(), rotor_pg::Error> {
//! let rotor = PgRotor::open("postgres://rotor@db.internal/credentials")?;
//! let token = rotor.token("main", "acme", "acme:default")?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`url`]: the store URL, always shown with its password redacted;
//! - [`error`]: typed failures (server down, login refused, timeout, a schema
//!   from a newer rotor) and how a driver error is sorted;
//! - [`schema`]: the schema rotor owns, versioned, migrated once under an
//!   advisory transaction lock;
//! - [`session`]: one connection per resolve, shared by its lock and stores;
//! - [`lock`]: the refresh lock (single-flight, then a session advisory
//!   lock) and its epoch, the fencing token;
//! - [`store`]: stores as rows, read-modify-writes under row locks, and the
//!   conditional fence write;
//! - [`status`]: what `rotor status` shows.
//!
//! Tokens never appear in logs or errors: only fingerprints.

pub mod error;
pub mod lock;
pub mod schema;
pub mod session;
pub mod status;
pub mod store;
pub mod tables;
pub mod url;

use rotor_fs::{paths, AgentId, FsEndpoint, SingleFlight, SystemClock};
use rotor_kernel::driver;
use rotor_kernel::{
    Credential, Granted, Holder, LockKey, Mutation, Policy, Request, Role, StoreDoc, StoreRef,
};

pub use error::{Error, Fault, FaultKind};
pub use lock::PgRefreshLock;
pub use session::{Link, SharedLink, Target};
pub use store::{PgStores, StoreRow};
pub use url::StoreUrl;

/// The client crate, for embedders and tests that run their own SQL.
pub use postgres;

/// One PostgreSQL store, ready to hand out tokens. Cheap to clone; clones
/// share the in-process single-flight and the connection pool, so threads
/// holding clones coalesce before touching the server.
#[derive(Clone, Debug)]
pub struct PgRotor {
    target: Target,
    policy: Policy,
    flight: SingleFlight,
}

impl PgRotor {
    /// Connects to `url`, creating or migrating rotor's schema if needed
    /// (refusing one from a newer rotor).
    pub fn open(url: &str) -> Result<PgRotor, Error> {
        let url = StoreUrl::parse(url).map_err(Error::BadUrl)?;
        let target = Target::new(url);
        let link = Link::new(&target);
        let mut link = link.borrow_mut();
        // A session that ends under the check (a restart, an operator) is
        // replaced: opening is idempotent.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = link.client()?;
            match schema::ensure(client, &target.url, &target.tables) {
                Ok(()) => break,
                Err(Error::Store(_)) if attempt < 3 => link.discard(),
                Err(error) => return Err(error),
            }
        }
        drop(link);
        Ok(PgRotor {
            target,
            policy: Policy::default(),
            flight: SingleFlight::new(),
        })
    }

    /// Uses `policy` instead of the SPEC §6 defaults.
    pub fn with_policy(mut self, policy: Policy) -> PgRotor {
        self.policy = policy;
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The server and schema.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A session of this process (for [`StoreRow`] and tests).
    pub fn link(&self) -> SharedLink {
        Link::new(&self.target)
    }

    fn holder(agent: &AgentId) -> Holder {
        Holder {
            pid: std::process::id(),
            host: rotor_fs::lock::host_name().into(),
            agent: agent.as_str().into(),
        }
    }

    /// A usable access token for `profile` of `provider`, as seen by `agent`
    /// (`"main"` for the main agent), refreshing it if needed (SPEC §3).
    pub fn token(&self, agent: &str, provider: &str, profile: &str) -> Result<Granted, Error> {
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
            holder: PgRotor::holder(&agent),
        };
        let span = tracing::debug_span!("resolve", agent = %agent, provider, profile, store = %self.target.url);
        let _entered = span.enter();
        let link = self.link();
        let mut lock =
            PgRefreshLock::new(link.clone(), self.flight.clone(), request.holder.clone());
        let mut stores = PgStores::new(link, agent.as_str(), self.policy.store_lock_wait_ms_max());
        let resolution = driver::resolve(
            driver::Host {
                lock: &mut lock,
                stores: &mut stores,
                endpoint: &mut FsEndpoint,
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
    /// main).
    pub fn provider_of(&self, agent: &str, profile: &str) -> Result<Option<String>, Error> {
        let agent = AgentId::new(agent)?;
        paths::check_id("profile", profile)?;
        let link = self.link();
        for store in [agent.as_str(), "main"] {
            let doc =
                StoreRow::new(&link, store, self.policy.store_lock_wait_ms_max()).read_doc()?;
            if let Some(credential) = doc.and_then(|doc| doc.view(profile).credential) {
                return Ok(Some(credential.provider.to_string()));
            }
        }
        Ok(None)
    }

    /// The store document of `agent` (`None`: never written).
    pub fn read_store(&self, agent: &str) -> Result<Option<StoreDoc>, Error> {
        let agent = AgentId::new(agent)?;
        let link = self.link();
        let row = StoreRow::new(&link, agent.as_str(), self.policy.store_lock_wait_ms_max());
        Ok(row.read_doc()?)
    }

    /// Read-modify-write of `agent`'s store by another writer (usage
    /// statistics, tools): under the row lock, like every rotor write (G4).
    pub fn update_store<T>(
        &self,
        agent: &str,
        change: impl FnOnce(&mut StoreDoc) -> (T, bool),
    ) -> Result<T, Error> {
        let agent = AgentId::new(agent)?;
        let link = self.link();
        let row = StoreRow::new(&link, agent.as_str(), self.policy.store_lock_wait_ms_max());
        Ok(row.update("update", change)?)
    }

    /// Installs a new token family for `profile` in `agent`'s store (SPEC §3:
    /// under the refresh lock, then the row lock). Returns the generation.
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
        let link = self.link();
        let mut lock =
            PgRefreshLock::new(link.clone(), self.flight.clone(), PgRotor::holder(&agent));
        let mut stores = PgStores::new(link, agent.as_str(), self.policy.store_lock_wait_ms_max());
        driver::locked_write(
            &mut lock,
            &mut stores,
            &key,
            profile,
            &mutation,
            self.policy.refresh_lock_wait_ms_max(),
        )
        .map_err(Error::Failed)
    }

    /// The status report (no lock taken).
    pub fn status(&self) -> Result<status::PgReport, Error> {
        let link = self.link();
        let mut link = link.borrow_mut();
        let target = link.target().clone();
        let client = link.client()?;
        Ok(status::gather(&target, client)?)
    }

    /// Which store a kernel [`StoreRef`] names for `agent`.
    pub fn store_agent(agent: &str, store: StoreRef) -> &str {
        match store {
            StoreRef::Own => agent,
            StoreRef::Main => "main",
        }
    }
}
