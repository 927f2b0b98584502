//! Sessions: one PostgreSQL connection per resolve, taken from a small
//! per-process pool, shared by that resolve's refresh lock and stores.
//!
//! The refresh lock and the in-doubt fence must go through the *same*
//! session: the lock is a session-level advisory lock, so the session is the
//! holder. [`Link`] is that shared session plus what it holds. It counts
//! connections: a session that broke may be replaced for reads and for
//! writes that carry their own compare-and-swap, but a replacement never
//! holds the lock, and the fence write refuses it (module `lock`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use postgres::{Client, NoTls};
use rotor_kernel::LockKey;

use crate::error::{Fault, FaultKind};
use crate::tables::Tables;
use crate::url::StoreUrl;

/// Connections kept for reuse per process.
const POOL_MAX: usize = 4;

/// What every session of one [`crate::PgRotor`] shares: where, which schema,
/// and the idle connections.
#[derive(Clone, Debug)]
pub struct Target {
    /// The server.
    pub url: StoreUrl,
    /// Statements naming rotor's tables in its schema.
    pub tables: Tables,
    pool: Arc<Mutex<Vec<PooledClient>>>,
}

struct PooledClient(Client);

impl std::fmt::Debug for PooledClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Target {
    /// A target for `url`; connects lazily.
    pub fn new(url: StoreUrl) -> Target {
        let tables = Tables::new(url.schema());
        Target {
            url,
            tables,
            pool: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A new connection, named for `pg_stat_activity` as `rotor pid=<pid>`
    /// (that is how an operator, or a test, finds the sessions of a
    /// process; the lock row names the holder's own session).
    pub fn connect(&self) -> Result<Client, Fault> {
        let mut config = self.url.config().clone();
        config.application_name(&format!("rotor pid={}", std::process::id()));
        config
            .connect(NoTls)
            .map_err(|error| Fault::of(&self.url, "connecting", &error))
    }

    fn take(&self) -> Option<Client> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(PooledClient(client)) = pool.pop() {
            if !client.is_closed() {
                return Some(client);
            }
        }
        None
    }

    fn give_back(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(PooledClient(client));
        }
    }
}

/// The refresh lock as held by a session.
#[derive(Clone, Debug)]
pub struct Held {
    /// The lock.
    pub key: LockKey,
    /// The advisory lock id (module `lock`).
    pub advisory: i64,
    /// The lock epoch this acquisition was given (the fencing token).
    pub epoch: i64,
    /// Which connection of the [`Link`] took it ([`Link::connection`]).
    pub connection: u64,
}

/// One resolve's session: its connection and the lock it holds.
pub struct Link {
    target: Target,
    client: Option<Client>,
    /// Counts connections made by this link; a [`Held`] names the one that
    /// took the lock.
    connections: u64,
    /// The refresh lock, while held (or believed held).
    pub held: Option<Held>,
}

/// Shared between the lock and the stores of one resolve (one thread).
pub type SharedLink = Rc<RefCell<Link>>;

impl Link {
    /// A link over `target`; connects on first use.
    pub fn new(target: &Target) -> SharedLink {
        Rc::new(RefCell::new(Link {
            target: target.clone(),
            client: None,
            connections: 0,
            held: None,
        }))
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The number of the current connection (0: none yet).
    pub fn connection(&self) -> u64 {
        self.connections
    }

    /// The session, connecting (or replacing a broken one) if needed. A
    /// replacement does not hold what the broken one held.
    pub fn client(&mut self) -> Result<&mut Client, Fault> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let client = match self.target.take() {
                Some(client) => client,
                None => self.target.connect()?,
            };
            self.connections += 1;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// The session that holds the lock, and only that one: `None` when the
    /// holder's connection is gone or was replaced.
    pub fn holder_client(&mut self) -> Option<(&mut Client, Held)> {
        let held = self.held.clone()?;
        if held.connection != self.connections {
            return None;
        }
        let client = self.client.as_mut().filter(|client| !client.is_closed())?;
        Some((client, held))
    }

    /// Drops the current connection (after an error that may have left it in
    /// an unknown state).
    pub fn discard(&mut self) {
        self.client = None;
    }

    /// `Fault` of `error` raised while `doing`; a lost session is discarded.
    pub fn fault(&mut self, doing: &str, error: &postgres::Error) -> Fault {
        let fault = Fault::of(&self.target.url, doing, error);
        if matches!(fault.kind, FaultKind::SessionLost | FaultKind::Unreachable) {
            self.discard();
        }
        fault
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // A connection that still holds a session-level lock must not be
        // reused by another resolve: the lock is released by the lock's
        // `release`, and a link dropped while holding (a panic) closes it.
        if let Some(client) = self.client.take() {
            if self.held.is_none() {
                self.target.give_back(client);
            }
        }
    }
}
