//! Stores as rows: one JSON store document per agent (`main` is the main
//! store), every write a read-modify-write in one transaction under the
//! row's lock, the change computed by the kernel (`StoreDoc::apply`), never
//! here (G4, G5, G11).
//!
//! A write locks the row (`SELECT … FOR UPDATE`, waiting at most the
//! store-lock budget as `lock_timeout`), decodes it, lets the kernel apply
//! the mutation, and writes it back with `revision = revision + 1` guarded
//! by the revision it read. A commit is durable when it returns (G6; with
//! the server's default `synchronous_commit`). Reads take no lock: a row is
//! replaced whole, so a reader sees the old or the new document.
//!
//! **The fence write is different** (SPEC §3 step 6, G1, G7). It goes only
//! through the session that took the refresh lock, never a replacement, and
//! its transaction first locks the lock's epoch row `FOR SHARE` and checks
//! that the epoch is still this holder's and that this session still holds
//! the advisory lock. If not, nothing is written and the kernel never
//! presents the token. `ClearFence` (a fence dropped because nothing was
//! sent or the endpoint refused) goes the same way: a holder that lost the
//! lock must not erase a fence the next holder wrote for the same token. The
//! other writes carry their own compare-and-swap on the entry and may go
//! through a replacement session, so that a rotation the provider made is
//! stored even when the holder's session ended during the call.

use postgres::Transaction;
use rotor_kernel::driver::Stores;
use rotor_kernel::{Mutation, ProfileView, StoreDoc, StoreFault, StoreRef, WriteOutcome};

use crate::error::{Fault, FaultKind};
use crate::lock::{lock_lost, pg_locks_ids};
use crate::session::{Held, SharedLink};
use crate::tables::Tables;

/// Why a read-modify-write failed: before its commit (nothing happened;
/// safe to retry on a new session) or at it (the outcome is unknown).
enum TxError {
    Before(postgres::Error),
    AtCommit(postgres::Error),
    Fault(Fault),
}

impl From<postgres::Error> for TxError {
    fn from(error: postgres::Error) -> TxError {
        TxError::Before(error)
    }
}

/// The store document of `agent` without a lock (`None`: no row yet).
pub fn read_doc(
    client: &mut postgres::Client,
    tables: &Tables,
    agent: &str,
) -> Result<Option<Result<StoreDoc, String>>, postgres::Error> {
    let row = client.query_opt(
        &format!("SELECT doc::text FROM {} WHERE agent = $1", tables.stores),
        &[&agent],
    )?;
    Ok(row.map(|row| {
        let text: String = row.get(0);
        StoreDoc::from_json(text.as_bytes()).map_err(|error| error.to_string())
    }))
}

fn corrupt(tables: &Tables, agent: &str, error: &str) -> Fault {
    Fault::new(
        FaultKind::Corrupt,
        format!(
            "store {}/{agent} is corrupt ({error}); rotor will not overwrite it: repair the row \
             or delete it, then run `rotor login`",
            tables.stores
        ),
    )
}

/// Read-modify-write of `agent`'s document inside `tx`: the row is created
/// empty if missing, locked, decoded, changed by `change`, and written back
/// when it changed. `label` names the write for failpoints
/// (`before-write:<label>`, `after-write:<label>`, as on the fs host).
fn update_in<T>(
    mut tx: Transaction<'_>,
    tables: &Tables,
    agent: &str,
    label: &str,
    change: impl FnOnce(&mut StoreDoc) -> (T, bool),
) -> Result<T, TxError> {
    tx.execute(
        &format!(
            "INSERT INTO {} (agent, doc, revision, updated_at_ms) VALUES ($1, '{{}}'::jsonb, 0, $2)
             ON CONFLICT (agent) DO NOTHING",
            tables.stores
        ),
        &[&agent, &rotor_fs::lock::now_ms()],
    )?;
    let row = tx.query_one(
        &format!(
            "SELECT doc::text, revision FROM {} WHERE agent = $1 FOR UPDATE",
            tables.stores
        ),
        &[&agent],
    )?;
    let text: String = row.get(0);
    let revision: i64 = row.get(1);
    let mut doc = StoreDoc::from_json(text.as_bytes())
        .map_err(|error| TxError::Fault(corrupt(tables, agent, &error.to_string())))?;
    let before = doc.clone();
    let (value, write) = change(&mut doc);
    if write && doc != before {
        let json = String::from_utf8(doc.to_json()).expect("serde_json writes UTF-8");
        let updated = tx.execute(
            &format!(
                "UPDATE {} SET doc = $2::text::jsonb, revision = revision + 1, updated_at_ms = $4
                 WHERE agent = $1 AND revision = $3",
                tables.stores
            ),
            &[&agent, &json, &revision, &rotor_fs::lock::now_ms()],
        )?;
        if updated != 1 {
            // Cannot happen under the row lock; refuse rather than guess (G4).
            return Err(TxError::Fault(Fault::new(
                FaultKind::Other,
                format!("store {}/{agent} changed under its row lock", tables.stores),
            )));
        }
        rotor_fs::failpoint::hit(&format!("before-write:{label}"));
        tx.commit().map_err(TxError::AtCommit)?;
        rotor_fs::failpoint::hit(&format!("after-write:{label}"));
    } else {
        tx.commit().map_err(TxError::AtCommit)?;
    }
    Ok(value)
}

fn set_timeouts(tx: &mut Transaction<'_>, wait_ms: u64) -> Result<(), postgres::Error> {
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}",
        wait_ms.max(1),
        wait_ms.saturating_add(5_000)
    ))
}

/// One store (an agent's row) over a shared session. Used by the kernel's
/// [`Stores`] and by other writers (`update`: usage statistics, tests).
pub struct StoreRow<'a> {
    link: &'a SharedLink,
    agent: &'a str,
    wait_ms: u64,
}

impl<'a> StoreRow<'a> {
    /// The row of `agent`; writers wait at most `wait_ms` for its lock.
    pub fn new(link: &'a SharedLink, agent: &'a str, wait_ms: u64) -> StoreRow<'a> {
        StoreRow {
            link,
            agent,
            wait_ms,
        }
    }

    /// The document (`None`: no row), read without a lock; a session lost
    /// before the answer is replaced once (a read changes nothing).
    pub fn read_doc(&self) -> Result<Option<StoreDoc>, Fault> {
        let mut link = self.link.borrow_mut();
        let tables = link.target().tables.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = link.client()?;
            match read_doc(client, &tables, self.agent) {
                Ok(None) => return Ok(None),
                Ok(Some(Ok(doc))) => return Ok(Some(doc)),
                Ok(Some(Err(error))) => return Err(corrupt(&tables, self.agent, &error)),
                Err(error) => {
                    let fault = link.fault("reading a store", &error);
                    if fault.kind != FaultKind::SessionLost || attempt > 1 {
                        return Err(fault);
                    }
                }
            }
        }
    }

    /// Read-modify-write under the row lock (the one door for every writer,
    /// G4). A session lost before the commit is replaced once; one lost at
    /// the commit is reported (the write may or may not have happened).
    pub fn update<T>(
        &self,
        label: &str,
        change: impl FnOnce(&mut StoreDoc) -> (T, bool),
    ) -> Result<T, Fault> {
        let mut link = self.link.borrow_mut();
        let tables = link.target().tables.clone();
        let mut change = Some(change);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = link.client()?;
            let result = (|| {
                let mut tx = client.transaction()?;
                set_timeouts(&mut tx, self.wait_ms)?;
                let change = change.take().expect("a change is used once");
                update_in(tx, &tables, self.agent, label, change)
            })();
            match result {
                Ok(value) => return Ok(value),
                Err(TxError::Fault(fault)) => return Err(fault),
                Err(TxError::AtCommit(error)) => {
                    return Err(link.fault("committing a store write", &error))
                }
                Err(TxError::Before(error)) => {
                    let fault = link.fault("writing a store", &error);
                    // The closure was consumed only if the transaction got as
                    // far as the change; retry only when it was not.
                    if fault.kind != FaultKind::SessionLost || attempt > 1 || change.is_none() {
                        return Err(fault);
                    }
                }
            }
        }
    }

    /// Applies a kernel mutation with [`StoreDoc::apply`].
    pub fn apply(&self, profile: &str, mutation: &Mutation) -> Result<WriteOutcome, Fault> {
        let label = rotor_fs::failpoint::mutation_label(mutation);
        let outcome = self.update(label, |doc| {
            let outcome = doc.apply(profile, mutation);
            let write = !matches!(outcome, WriteOutcome::Conflict(_));
            (outcome, write)
        })?;
        tracing::debug!(
            agent = self.agent,
            profile,
            mutation = label,
            ?outcome,
            "store write"
        );
        Ok(outcome)
    }

    /// The in-doubt fence, written only through the session holding the
    /// refresh lock, in a transaction that first checks it still holds it
    /// (module docs). Never retried on another session.
    pub fn apply_fenced(&self, profile: &str, mutation: &Mutation) -> Result<WriteOutcome, Fault> {
        let mut link = self.link.borrow_mut();
        let target = link.target().clone();
        if matches!(mutation, Mutation::PutFence { .. }) {
            rotor_fs::failpoint::hit("before-fence");
        }
        let Some((client, held)) = link.holder_client() else {
            return Err(lock_lost(&target.url, "the session that took it has ended"));
        };
        let label = rotor_fs::failpoint::mutation_label(mutation);
        let result = (|| {
            let mut tx = client.transaction()?;
            set_timeouts(&mut tx, self.wait_ms)?;
            check_still_held(&mut tx, &target.tables, &held, &target.url)?;
            update_in(tx, &target.tables, self.agent, label, |doc| {
                let outcome = doc.apply(profile, mutation);
                let write = !matches!(outcome, WriteOutcome::Conflict(_));
                (outcome, write)
            })
        })();
        match result {
            Ok(outcome) => {
                tracing::debug!(
                    agent = self.agent,
                    profile,
                    epoch = held.epoch,
                    ?outcome,
                    "fence written"
                );
                Ok(outcome)
            }
            Err(TxError::Fault(fault)) => Err(fault),
            Err(TxError::Before(error)) => {
                let fault = link.fault("writing the in-doubt fence", &error);
                if fault.kind == FaultKind::SessionLost {
                    return Err(lock_lost(
                        &target.url,
                        "its session ended before the fence committed",
                    ));
                }
                Err(fault)
            }
            // The fence may have committed: the kernel keeps it (it never
            // clears the fence of a store whose fence write failed).
            Err(TxError::AtCommit(error)) => {
                Err(link.fault("committing the in-doubt fence", &error))
            }
        }
    }
}

/// The fence condition: the key's epoch row, locked `FOR SHARE` until this
/// transaction ends, still carries this holder's epoch, and this session
/// still holds the advisory lock.
fn check_still_held(
    tx: &mut Transaction<'_>,
    tables: &Tables,
    held: &Held,
    url: &crate::url::StoreUrl,
) -> Result<(), TxError> {
    let (classid, objid) = pg_locks_ids(held.advisory);
    let row = tx.query_opt(
        &format!(
            "SELECT l.epoch, EXISTS (SELECT 1 FROM pg_locks p
                 WHERE p.locktype = 'advisory' AND p.pid = pg_backend_pid() AND p.granted
                   AND p.objsubid = 1 AND p.classid::bigint = $2 AND p.objid::bigint = $3)
             FROM {} l WHERE l.key = $1 FOR SHARE OF l",
            tables.locks
        ),
        &[&held.key.as_str(), &classid, &objid],
    )?;
    let (epoch, session_holds) = match row {
        Some(row) => (row.get::<_, i64>(0), row.get::<_, bool>(1)),
        None => (0, false),
    };
    if epoch != held.epoch {
        return Err(TxError::Fault(lock_lost(
            url,
            &format!("lock epoch {epoch} is not this holder's {}", held.epoch),
        )));
    }
    if !session_holds {
        return Err(TxError::Fault(lock_lost(
            url,
            "this session no longer holds it",
        )));
    }
    Ok(())
}

/// The two stores one agent sees, over the resolve's shared session.
pub struct PgStores {
    link: SharedLink,
    own: String,
    main: String,
    wait_ms: u64,
}

impl PgStores {
    /// The stores of `agent` (its own row and `main`'s).
    pub fn new(link: SharedLink, agent: &str, wait_ms: u64) -> PgStores {
        PgStores {
            link,
            own: agent.to_owned(),
            main: "main".to_owned(),
            wait_ms,
        }
    }

    fn row(&self, store: StoreRef) -> StoreRow<'_> {
        let agent = match store {
            StoreRef::Own => &self.own,
            StoreRef::Main => &self.main,
        };
        StoreRow::new(&self.link, agent, self.wait_ms)
    }
}

impl Stores for PgStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        let doc = self
            .row(store)
            .read_doc()
            .map_err(Fault::into_store_fault)?;
        Ok(doc.map(|doc| doc.view(profile)).unwrap_or_default())
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        let row = self.row(store);
        let result = match mutation {
            // Writing a fence, and dropping one without a successor, only
            // while the lock is still held: a holder that lost it could
            // otherwise erase the fence of the holder after it (which may
            // be presenting that very token) and open G1 again.
            Mutation::PutFence { .. } | Mutation::ClearFence { .. } => {
                row.apply_fenced(profile, mutation)
            }
            _ => row.apply(profile, mutation),
        };
        result.map_err(Fault::into_store_fault)
    }
}
