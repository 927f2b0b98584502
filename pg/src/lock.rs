//! The refresh lock over PostgreSQL, and the fencing token that makes the
//! in-doubt fence conditional on still holding it (ARCHITECTURE.md, "The
//! PostgreSQL backend"; SPEC §8).
//!
//! **Two halves, as on the fs host.** The in-process [`SingleFlight`] slot
//! first (threads of one process coalesce before touching the server), then
//! a session-level advisory lock, `pg_advisory_lock(id)`, where `id` is the
//! first 8 bytes of sha256 over the schema and the [`LockKey`]. The server
//! releases it when the holding session ends (a crash, `kill -9`,
//! `pg_terminate_backend`, a network cut noticed by keepalives, a restart),
//! and never while the session lives.
//!
//! **Waiting blocks, it does not poll.** A waiter sits in
//! `pg_advisory_lock` with `lock_timeout` set to what is left of its budget;
//! the server wakes it the moment the lock is free. A waiter whose own
//! session is killed reconnects and waits again with what is left.
//!
//! **The lock epoch.** Taking the lock and advancing the key's epoch (a row
//! of `refresh_locks`) happen in one transaction; the epoch is this
//! holder's fencing token, and the row also records the holder (pid, host,
//! agent, since, server session) for `rotor status`. The fence write
//! (module `store`) locks that row `FOR SHARE` and checks, in the same
//! transaction, that the epoch is still its own and that its session still
//! holds the advisory lock. A later acquisition must update the row, so it
//! waits for a fence transaction in progress and then sees its fence.

use std::time::Instant;

use rotor_fs::SingleFlight;
use rotor_kernel::driver::RefreshLock;
use rotor_kernel::{Holder, LockFailure, LockKey};

use crate::error::{Fault, FaultKind};
use crate::schema::advisory_id;
use crate::session::{Held, SharedLink};

/// How often one acquisition reconnects after its own session was killed
/// while waiting, before it reports the failure.
const RECONNECTS_MAX: u32 = 3;

/// The PostgreSQL refresh lock of one resolve.
pub struct PgRefreshLock {
    link: SharedLink,
    flight: SingleFlight,
    holder: Holder,
}

impl PgRefreshLock {
    /// A lock over `link`'s session, sharing `flight` with the other
    /// resolves of this process.
    pub fn new(link: SharedLink, flight: SingleFlight, holder: Holder) -> PgRefreshLock {
        PgRefreshLock {
            link,
            flight,
            holder,
        }
    }

    fn acquire_session(
        &mut self,
        key: &LockKey,
        start: Instant,
        budget_ms: u64,
    ) -> Result<(), LockFailure> {
        let mut link = self.link.borrow_mut();
        let tables = link.target().tables.clone();
        let advisory = advisory_id(&tables.schema, key.as_str());
        let waited = || start.elapsed().as_millis() as u64;
        let failed = |error: Option<String>, holder: Option<String>| LockFailure {
            waited_ms: waited(),
            holder,
            error,
        };
        let mut reconnects = 0;
        let mut pause_ms = 50;
        loop {
            let remaining_ms = budget_ms.saturating_sub(waited());
            let client = match link.client() {
                Ok(client) => client,
                // The session just ended and the server does not answer yet
                // (a restart: "the database system is shutting down", then
                // refused connections): waiting for the lock includes
                // waiting for the server, within the same budget.
                Err(fault)
                    if fault.kind == FaultKind::Unreachable
                        && reconnects > 0
                        && waited() + pause_ms < budget_ms =>
                {
                    tracing::debug!(lock = %key, detail = %fault.detail, "server not back yet; waiting");
                    std::thread::sleep(std::time::Duration::from_millis(pause_ms));
                    pause_ms = (pause_ms * 2).min(1_000);
                    continue;
                }
                Err(fault) => return Err(failed(Some(fault.detail), None)),
            };
            // One statement, so one round trip and one transaction: set the
            // wait's deadline, take the session lock (or try it, with no
            // budget left), then advance the epoch and record the holder.
            // The nesting orders the three: each needs the row of the one
            // inside it. lock_timeout 0 would mean "forever": at least 1 ms.
            // It stays set on the session; every later statement that may
            // wait for a lock sets its own (`SET LOCAL` in store writes).
            let take = if remaining_ms == 0 {
                "pg_try_advisory_lock($2)"
            } else {
                "pg_advisory_lock($2) IS NOT NULL"
            };
            let result = client
                .query_opt(
                    &format!(
                        "INSERT INTO {locks} AS l (key, advisory, epoch, holder_pid, holder_host,
                             holder_agent, since_ms, backend_pid)
                         SELECT $1, $2, 1, $3, $4, $5, $6, pg_backend_pid()
                         FROM (SELECT {take} AS taken
                               FROM (SELECT set_config('lock_timeout', $7, false)) AS deadline
                              ) AS got
                         WHERE got.taken
                         ON CONFLICT (key) DO UPDATE SET epoch = l.epoch + 1,
                             advisory = EXCLUDED.advisory, holder_pid = EXCLUDED.holder_pid,
                             holder_host = EXCLUDED.holder_host,
                             holder_agent = EXCLUDED.holder_agent,
                             since_ms = EXCLUDED.since_ms, backend_pid = EXCLUDED.backend_pid
                         RETURNING epoch",
                        locks = tables.locks
                    ),
                    &[
                        &key.as_str(),
                        &advisory,
                        &i64::from(self.holder.pid),
                        &self.holder.host.as_str(),
                        &self.holder.agent.as_str(),
                        &rotor_fs::lock::now_ms(),
                        &remaining_ms.max(1).to_string(),
                    ],
                )
                .map(|row| row.map(|row| row.get::<_, i64>(0)));
            match result {
                Ok(Some(epoch)) => {
                    let connection = link.connection();
                    link.held = Some(Held {
                        key: key.clone(),
                        advisory,
                        epoch,
                        connection,
                    });
                    tracing::debug!(lock = %key, epoch, "refresh lock acquired");
                    return Ok(());
                }
                Ok(None) => {
                    let holder = describe_holder(&mut link, key);
                    return Err(failed(None, holder));
                }
                Err(error) => {
                    // Whatever the transaction did, a session-level lock it may
                    // have taken must not outlive this failure: drop the session.
                    let fault = link.fault("waiting for the refresh lock", &error);
                    link.discard();
                    match fault.kind {
                        FaultKind::Timeout => {
                            let holder = describe_holder(&mut link, key);
                            tracing::warn!(lock = %key, waited_ms = waited(), "refresh lock not acquired");
                            return Err(failed(None, holder));
                        }
                        // (a) of the tests: a waiter's session killed while it waits.
                        FaultKind::SessionLost if reconnects < RECONNECTS_MAX => {
                            reconnects += 1;
                            tracing::warn!(lock = %key, "session lost while waiting; reconnecting");
                        }
                        _ => return Err(failed(Some(fault.detail), None)),
                    }
                }
            }
        }
    }
}

/// "pid 12 (agent a on host h), for 2.5 s; server session 345, epoch 7", from
/// the lock's row (best effort: `None` if it cannot be read).
fn describe_holder(link: &mut crate::session::Link, key: &LockKey) -> Option<String> {
    let locks = link.target().tables.locks.clone();
    let client = link.client().ok()?;
    let row = client
        .query_opt(
            &format!(
                "SELECT holder_pid, holder_host, holder_agent, since_ms, backend_pid, epoch
                 FROM {locks} WHERE key = $1"
            ),
            &[&key.as_str()],
        )
        .ok()??;
    let since_ms: i64 = row.get(3);
    let held_ms = rotor_fs::lock::now_ms().saturating_sub(since_ms).max(0);
    Some(format!(
        "pid {} (agent {} on {}), for {}.{} s; server session {}, lock epoch {}",
        row.get::<_, i64>(0),
        row.get::<_, String>(2),
        row.get::<_, String>(1),
        held_ms / 1000,
        (held_ms % 1000) / 100,
        row.get::<_, i32>(4),
        row.get::<_, i64>(5)
    ))
}

impl RefreshLock for PgRefreshLock {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        let start = Instant::now();
        self.flight.acquire(key, wait_ms_max)?;
        match self.acquire_session(key, start, wait_ms_max) {
            Ok(()) => {
                rotor_fs::failpoint::hit("after-lock");
                Ok(())
            }
            Err(failure) => {
                self.flight.release(key);
                Err(failure)
            }
        }
    }

    fn release(&mut self, key: &LockKey) {
        rotor_fs::failpoint::hit("before-release");
        let mut link = self.link.borrow_mut();
        if link.held.as_ref().is_none_or(|held| &held.key != key) {
            return;
        }
        if let Some((client, held)) = link.holder_client() {
            // A number inlined: one round trip, no statement to prepare.
            let unlock = format!("SELECT pg_advisory_unlock({})", held.advisory);
            if let Err(error) = client.batch_execute(&unlock) {
                // The session is in an unknown state: closing it releases the lock.
                let _ = link.fault("releasing the refresh lock", &error);
                link.discard();
            }
        }
        link.held = None;
        drop(link);
        self.flight.release(key);
        tracing::debug!(lock = %key, "refresh lock released");
    }
}

impl Drop for PgRefreshLock {
    fn drop(&mut self) {
        let mut link = self.link.borrow_mut();
        if let Some(held) = link.held.take() {
            // Never hand a connection that holds a session lock to another
            // resolve: close it, which releases the lock.
            link.discard();
            drop(link);
            self.flight.release(&held.key);
        }
    }
}

/// The refusal of a fence write whose session no longer holds the lock.
pub fn lock_lost(url: &crate::url::StoreUrl, why: &str) -> Fault {
    Fault::new(
        FaultKind::SessionLost,
        format!(
            "postgres {url}: the refresh lock was lost ({why}); the in-doubt fence was not \
             written and the refresh token was not presented (G1, G7)"
        ),
    )
}

/// The (classid, objid) under which `pg_locks` shows the advisory lock `id`
/// (a bigint key is split into its high and low 32 bits, objsubid 1).
pub fn pg_locks_ids(advisory: i64) -> (i64, i64) {
    let bits = advisory as u64;
    ((bits >> 32) as i64, (bits & 0xffff_ffff) as i64)
}
