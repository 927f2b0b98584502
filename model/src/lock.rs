//! The model's refresh lock: the real in-process single-flight in front of a
//! modelled cross-process advisory lock.
//!
//! [`AdvisoryLocks`] is the lock table the OS keeps for every process of the
//! model. It has the semantics of POSIX record locks (`fcntl`), the weakest
//! advisory backend a host could be given:
//! - a lock is held **per process**: a second request from the process that
//!   holds it is granted at once, and one release from the process frees it;
//! - a waiter blocks until the holder releases (no steal, no timeout);
//! - when a process dies, the OS releases every lock it held ([`crash`]).
//!
//! So inside one process, only the single-flight ([`rotor_fs::single_flight`])
//! keeps a second thread out, and the model checks exactly that: a second
//! thread of a process inside the lock is recorded as a G8 violation (and its
//! double presentation, if any, as G1). `flock` (the fs host's backend) is
//! stronger, per open file; the model does not rely on it.
//!
//! Every fresh acquisition gets the next number of a fence counter, and the
//! table records which process holds which key under which fence: a release
//! by a process that does not hold the key is a G8 violation, and every lock
//! must be free at the end of a run.
//!
//! [`crash`]: AdvisoryLocks::crash

use std::collections::BTreeMap;

use rotor_fs::single_flight::SingleFlight;
use rotor_fs::sync::{self, Arc, Condvar, Mutex};
use rotor_kernel::driver::RefreshLock;
use rotor_kernel::{LockFailure, LockKey};

use crate::check::{Guarantee, Log};
use crate::world::World;

/// The OS's table of cross-process advisory locks.
#[derive(Debug)]
pub struct AdvisoryLocks {
    table: Mutex<Table>,
    released: Condvar,
}

#[derive(Debug, Default)]
struct Table {
    held: BTreeMap<LockKey, Held>,
    fences_issued: u64,
}

/// Who holds a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// The holding process.
    pub pid: u32,
    /// The fence number of the acquisition.
    pub fence: u64,
}

impl Default for AdvisoryLocks {
    fn default() -> Self {
        Self::new()
    }
}

impl AdvisoryLocks {
    /// No lock held.
    pub fn new() -> Self {
        AdvisoryLocks {
            table: Mutex::new(Table::default()),
            released: Condvar::new(),
        }
    }

    /// Blocks until `pid` holds `key`; returns the fence number. A request
    /// from the holding process is granted at once (per-process semantics)
    /// and recorded as a G8 violation: two of its threads are inside.
    pub fn acquire(&self, key: &LockKey, pid: u32, agent: &str, log: &Log) -> u64 {
        let mut table = sync::lock(&self.table);
        loop {
            match table.held.get(key) {
                None => {
                    table.fences_issued += 1;
                    let fence = table.fences_issued;
                    table.held.insert(key.clone(), Held { pid, fence });
                    return fence;
                }
                Some(held) if held.pid == pid => {
                    log.violation(
                        Guarantee::G8,
                        format!(
                            "{agent} entered the refresh lock while another thread of its \
                             process {pid} held it (fence {}): the in-process single-flight \
                             did not keep it out, and a per-process lock lets it through",
                            held.fence
                        ),
                    );
                    return held.fence;
                }
                Some(_) => table = sync::wait(&self.released, table),
            }
        }
    }

    /// Releases `key` held by `pid`. A release by a process that does not
    /// hold it is a G8 violation (and changes nothing).
    pub fn release(&self, key: &LockKey, pid: u32, agent: &str, log: &Log) {
        let mut table = sync::lock(&self.table);
        match table.held.get(key) {
            Some(held) if held.pid == pid => {
                table.held.remove(key);
                self.released.notify_all();
            }
            other => log.violation(
                Guarantee::G8,
                format!(
                    "{agent} (process {pid}) released the refresh lock, held by {}",
                    other.map_or("nobody".to_string(), |held| format!(
                        "process {} (fence {})",
                        held.pid, held.fence
                    ))
                ),
            ),
        }
    }

    /// Process `pid` died: the OS releases every lock it held. Returns how
    /// many that was.
    pub fn crash(&self, pid: u32) -> usize {
        let mut table = sync::lock(&self.table);
        let before = table.held.len();
        table.held.retain(|_, held| held.pid != pid);
        let released = before - table.held.len();
        if released > 0 {
            self.released.notify_all();
        }
        released
    }

    /// The locks held now.
    pub fn held(&self) -> Vec<(LockKey, Held)> {
        let table = sync::lock(&self.table);
        table
            .held
            .iter()
            .map(|(key, held)| (key.clone(), *held))
            .collect()
    }

    /// How many fresh acquisitions there were.
    pub fn fences_issued(&self) -> u64 {
        sync::lock(&self.table).fences_issued
    }
}

/// The correct refresh lock of one agent: its process's single-flight slot,
/// then the cross-process advisory lock; released in the reverse order.
#[derive(Debug)]
pub struct ModelLock {
    world: Arc<World>,
    flight: SingleFlight,
    pid: u32,
    agent: String,
}

impl ModelLock {
    /// The lock for `agent` of process `pid`, whose threads share `flight`.
    pub fn new(
        world: Arc<World>,
        flight: SingleFlight,
        pid: u32,
        agent: impl Into<String>,
    ) -> Self {
        ModelLock {
            world,
            flight,
            pid,
            agent: agent.into(),
        }
    }
}

impl RefreshLock for ModelLock {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        self.flight
            .acquire(key, wait_ms_max)
            .map_err(|timeout| LockFailure {
                waited_ms: timeout.waited_ms,
                holder: Some(format!("another thread of process {}", self.pid)),
                error: None,
            })?;
        let log = &self.world.log;
        self.world.locks.acquire(key, self.pid, &self.agent, log);
        Ok(())
    }

    fn release(&mut self, key: &LockKey) {
        let log = &self.world.log;
        self.world.locks.release(key, self.pid, &self.agent, log);
        self.flight.release(key);
    }
}
