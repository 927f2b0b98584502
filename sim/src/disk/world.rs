//! A world of processes running the shipped fs host on one simulated disk,
//! interleaved at every I/O call by a seeded [`Scheduler`].
//!
//! Each agent is a thread with its own `rotor_fs::Rotor` (its own
//! in-process single-flight, as separate processes have): refreshing agents
//! (main and sub-agents) that all find the shared credential expired, and a
//! background writer (usage statistics) that updates main's store through
//! `StoreFile::update`, the door every writer must use. Each agent runs in
//! its own process, or two share one ([`WorldShape::agents_per_process`]:
//! then only the refresh lock file excludes them, B3's shape). They share
//! the simulator's strict provider. Nothing of the host is re-stated here: the
//! refresh lock, the store locks, the driver loop, fence, commit and mirror
//! are `rotor-fs` and `rotor-kernel` as shipped; only the disk and the
//! network beneath them are simulated, and the scheduler decides, call by
//! call, who runs.
//!
//! The seed also draws one fault ([`WorldFault`]): none, a refreshing
//! process killed (kill -9) at one of its disk calls (its locks released by
//! the OS, its cached writes kept), or the whole machine losing power at one
//! disk call (everything not durable dropped, every process dead; after a
//! reboot a fresh process asks for the token).
//!
//! Checked after every run:
//! - **G1**: no refresh token presented twice;
//! - **G8**: every request reaches the provider while its process holds
//!   the refresh lock (one that arrives later was in flight when the lock
//!   was released; checked by the provider as each request arrives);
//! - **G2**: one rotation for the one expiry, and every live agent returns
//!   the new access token, unless a killed process took the rotation with
//!   it (it presented and died before its resolve ended: then `NeedsReauth`
//!   is what G7 demands of the others);
//! - **G4**: no lost update: every usage write is in main's store at the
//!   end, and so is the rotation (a stale read-modify-write would have put
//!   the spent token back);
//! - after a power loss, **G6**: a rotation some agent returned is there
//!   for the fresh process without a refresh, and so is every usage write
//!   that returned; the fresh process fails only with `NeedsReauth`, and
//!   only when a presentation happened.
//!
//! Broken hosts are test code: an `Io` wrapper passed as `make_io`, and
//! for endpoint bugs a wrapper around [`WorldEndpoint`] passed to
//! [`run_world_with`]. A finding prints the seed and the command that
//! replays it.

use core::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rotor_fs::io::Io;
use rotor_fs::{AgentId, Layout, Rotor, StoreFile};
use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{
    Credential, EndpointError, Failure, Granted, Mutation, Outcome, TokenGrant, Transport,
};
use serde_json::{json, Value};

use super::{DiskFault, FaultPlan};
use super::{Scheduler, SimDisk};
use crate::endpoint::{access_token, refresh_token, Endpoint};
use crate::guarantee::Guarantee;
use crate::rng::Rng;

const STATE_DIR: &str = "/srv/rotor";
const PROVIDER: &str = "acme";
const PROFILE: &str = "acme:default";
const ACCESS_LIFETIME_MS: u64 = 3_600_000;
const STORE_LOCK_WAIT_MS: u64 = 10_000;

/// Who runs in a world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldShape {
    /// Refreshing agents; even ones are the main agent, odd ones sub-agents
    /// (`worker-<i>`).
    pub refreshers: usize,
    /// Refreshing agents per process: 1 puts each in its own process; 2 puts
    /// agents 0 and 1 in one process, 2 and 3 in the next, and so on. Every
    /// agent is a thread with its own `Rotor` (separate instances in one
    /// process are supported, `tests/threads.rs`): between two agents of one
    /// process only the refresh lock file excludes, which holds because
    /// `flock` is per open file description, not per process (B3).
    pub agents_per_process: usize,
    /// Read-modify-writes of the background usage writer.
    pub usage_writes: u32,
}

impl Default for WorldShape {
    fn default() -> Self {
        WorldShape {
            refreshers: 4,
            agents_per_process: 1,
            usage_writes: 3,
        }
    }
}

impl WorldShape {
    /// Refresher `index`'s process id.
    pub fn pid_of(&self, index: usize) -> u32 {
        100 + (index / self.agents_per_process.max(1)) as u32
    }
}

/// The fault a world's seed draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldFault {
    /// No fault.
    None,
    /// Refresher `refresher` is killed at its disk call `at_call`.
    Kill {
        /// Which refresher.
        refresher: usize,
        /// At which of its own calls (0 is its first).
        at_call: u64,
    },
    /// The machine loses power at disk call `at_call` (of all processes).
    PowerLoss {
        /// At which call.
        at_call: u64,
        /// Whether unsynced data is torn rather than dropped.
        torn: bool,
    },
}

impl WorldFault {
    /// The fault of `seed` in a world of `shape`.
    pub fn draw(seed: u64, shape: WorldShape) -> WorldFault {
        let mut rng = Rng::new(seed).fork(0xFA_0175);
        match rng.below(3) {
            0 => WorldFault::None,
            1 => WorldFault::Kill {
                refresher: rng.below(shape.refreshers as u64) as usize,
                at_call: rng.below(60),
            },
            _ => WorldFault::PowerLoss {
                at_call: rng.below(300),
                torn: rng.chance(500),
            },
        }
    }
}

/// A violation in one seeded world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldFinding {
    /// The guarantee broken.
    pub guarantee: Guarantee,
    /// The world's seed.
    pub seed: u64,
    /// What was wrong.
    pub detail: String,
    /// The test that found it (for the replay command).
    pub test_name: String,
}

impl fmt::Display for WorldFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} violated in disk world seed {:#x}: {}\n  replay: ROTOR_DISK_WORLD_SEED={:#x} \
             cargo test -p rotor-sim --test disk_world {} -- --exact --nocapture",
            self.guarantee,
            self.guarantee.title(),
            self.seed,
            self.detail,
            self.seed,
            self.test_name
        )
    }
}

/// One process's connection to the strict provider every process shares;
/// the call is in flight between two switch points, so others run while it
/// is. Tests may wrap it in a broken endpoint ([`run_world_with`]).
///
/// The provider also checks G8 where it can be seen: a request that arrives
/// while its process holds no refresh lock was sent, or is still in flight,
/// after the lock was released.
pub struct WorldEndpoint {
    endpoint: Arc<Mutex<Endpoint>>,
    disk: Arc<SimDisk>,
    /// The presenting process and its index (recorded with each request).
    pid: u32,
    index: u16,
    /// Requests that arrived outside the refresh lock (G8).
    unlocked: Arc<Mutex<Vec<String>>>,
}

impl fmt::Debug for WorldEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorldEndpoint")
            .field("pid", &self.pid)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl TokenEndpoint for WorldEndpoint {
    fn refresh(
        &mut self,
        credential: &Credential,
        _deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        self.disk.switch();
        // A dead process (killed, or the machine is down) sends nothing.
        if self.disk.is_dead(self.pid) || self.disk.is_down() {
            return Err(EndpointError::transport(Transport::ConnectRefused));
        }
        let lock_dir = layout().lock_dir();
        if !self
            .disk
            .locks_held_by(self.pid)
            .iter()
            .any(|path| path.starts_with(&lock_dir))
        {
            self.unlocked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!(
                    "a request of process {} (agent index {}) reached the provider while the process held no refresh lock",
                    self.pid, self.index
                ));
        }
        let reply = {
            let mut provider = self.endpoint.lock().unwrap_or_else(|p| p.into_inner());
            super::provider::present(&mut provider, credential, self.index)
        };
        self.disk.switch();
        reply
    }
}

/// Hands the turn on when a thread ends, panic or not.
struct Leave<'a>(&'a Scheduler);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

fn layout() -> Layout {
    Layout::new(PathBuf::from(STATE_DIR))
}

fn agent_name(index: usize) -> String {
    if index.is_multiple_of(2) {
        "main".to_owned()
    } else {
        format!("worker-{index}")
    }
}

const WRITER_PID: u32 = 99;

fn usage_count(doc_state: Option<&Value>) -> u64 {
    doc_state
        .and_then(|state| state.get("usage"))
        .and_then(|usage| usage.get("count"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// How a world's refreshers reach the provider: [`WorldEndpoint`] itself
/// for the shipped host, or a broken endpoint around it (test code).
pub type WrapEndpoint = dyn Fn(WorldEndpoint) -> Box<dyn TokenEndpoint> + Sync;

/// Runs the world of `seed` over the I/O `make_io` builds on its disk and
/// returns what it broke (nothing, for the shipped host).
pub fn run_world(
    seed: u64,
    shape: WorldShape,
    make_io: &(dyn Fn(Arc<SimDisk>) -> Arc<dyn Io> + Sync),
    test_name: &str,
) -> Vec<WorldFinding> {
    let fault = WorldFault::draw(seed, shape);
    run_world_with(
        seed,
        shape,
        fault,
        make_io,
        &|endpoint| Box::new(endpoint),
        test_name,
    )
}

/// A boxed endpoint, as `Rotor::token_via` takes it.
struct Wrapped(Box<dyn TokenEndpoint>);

impl TokenEndpoint for Wrapped {
    fn refresh(
        &mut self,
        credential: &Credential,
        deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        self.0.refresh(credential, deadline_ms)
    }
}

/// [`run_world`] with the fault chosen by the caller instead of drawn from
/// the seed (a sweep over every kill point of one process, say) and every
/// refresher's endpoint passed through `wrap_endpoint` (a broken endpoint,
/// in tests). The fresh process after a power loss is the checker's own and
/// talks to the provider directly.
pub fn run_world_with(
    seed: u64,
    shape: WorldShape,
    fault: WorldFault,
    make_io: &(dyn Fn(Arc<SimDisk>) -> Arc<dyn Io> + Sync),
    wrap_endpoint: &WrapEndpoint,
    test_name: &str,
) -> Vec<WorldFinding> {
    let threads = shape.refreshers + 1;
    let scheduler = Arc::new(Scheduler::new(seed, threads));
    let disk = Arc::new(SimDisk::with_scheduler(scheduler.clone()));
    let mut provider = Endpoint::new(None, ACCESS_LIFETIME_MS, false);
    let family = provider.issue_family(0, 0);
    // Set-up runs on this (unscheduled) thread: the expired credential in
    // main's store, durable.
    let expired = Credential::oauth(
        PROVIDER,
        access_token(family, 0),
        refresh_token(family, 0),
        0,
    );
    StoreFile::with_io(
        disk.clone(),
        &layout(),
        &AgentId::main(),
        STORE_LOCK_WAIT_MS,
    )
    .apply(
        PROFILE,
        &Mutation::Login {
            credential: expired.into(),
        },
    )
    .expect("preparing main's store");
    disk.sync_everything();
    let provider = Arc::new(Mutex::new(provider));
    let unlocked = Arc::new(Mutex::new(Vec::new()));
    match fault {
        WorldFault::None => {}
        WorldFault::Kill { refresher, at_call } => disk.plan_kill(shape.pid_of(refresher), at_call),
        WorldFault::PowerLoss { at_call, torn } => disk.plan(FaultPlan {
            at_call: disk.calls() + at_call,
            fault: if torn {
                DiskFault::PowerLossTorn
            } else {
                DiskFault::PowerLoss
            },
        }),
    }

    let (results, usage_written, writer_error) = std::thread::scope(|scope| {
        let refreshers: Vec<_> = (0..shape.refreshers)
            .map(|index| {
                let (scheduler, disk, provider, unlocked) = (
                    scheduler.clone(),
                    disk.clone(),
                    provider.clone(),
                    unlocked.clone(),
                );
                scope.spawn(move || {
                    scheduler.enter(index);
                    let _leave = Leave(&scheduler);
                    let pid = shape.pid_of(index);
                    let process = Arc::new(disk.process(pid));
                    let rotor =
                        Rotor::open_on(make_io(process.clone()), STATE_DIR).map_err(Run::from)?;
                    let mut endpoint = Wrapped(wrap_endpoint(WorldEndpoint {
                        endpoint: provider,
                        disk: process,
                        pid,
                        index: index as u16,
                        unlocked,
                    }));
                    rotor
                        .token_via(&mut endpoint, &agent_name(index), PROVIDER, PROFILE)
                        .map_err(Run::from)
                })
            })
            .collect();
        let writer = {
            let (scheduler, disk) = (scheduler.clone(), disk.clone());
            scope.spawn(move || {
                scheduler.enter(shape.refreshers);
                let _leave = Leave(&scheduler);
                let store = StoreFile::with_io(
                    make_io(Arc::new(disk.process(WRITER_PID))),
                    &layout(),
                    &AgentId::main(),
                    STORE_LOCK_WAIT_MS,
                );
                let mut written = 0;
                for _ in 0..shape.usage_writes {
                    let result = store.update("usage", |doc| {
                        let count = usage_count(doc.state.as_ref()) + 1;
                        doc.state = Some(json!({ "usage": { "count": count } }));
                        ((), true)
                    });
                    match result {
                        Ok(()) => written += 1,
                        Err(fault) => return (written, Some(fault.detail)),
                    }
                }
                (written, None)
            })
        };
        let results: Vec<Result<Granted, Run>> = refreshers
            .into_iter()
            .map(|handle| handle.join().expect("a refresher panicked"))
            .collect();
        let (written, error) = writer.join().expect("the usage writer panicked");
        (results, written, error)
    });
    let outcome = Ended {
        results,
        usage_written,
        writer_error,
        fault,
        unlocked,
    };
    judge(seed, shape, &disk, &provider, &outcome, test_name)
}

/// How one refresher's resolve ended.
#[derive(Debug)]
enum Run {
    Failed(Failure),
    Other(String),
}

impl From<rotor_fs::Error> for Run {
    fn from(error: rotor_fs::Error) -> Run {
        match error {
            rotor_fs::Error::Failed(failure) => Run::Failed(failure),
            other => Run::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Run::Failed(failure) => write!(f, "{failure}"),
            Run::Other(error) => f.write_str(error),
        }
    }
}

/// Everything a world's threads returned.
struct Ended {
    results: Vec<Result<Granted, Run>>,
    usage_written: u32,
    writer_error: Option<String>,
    fault: WorldFault,
    /// Requests that reached the provider outside the refresh lock (G8).
    unlocked: Arc<Mutex<Vec<String>>>,
}

fn judge(
    seed: u64,
    shape: WorldShape,
    disk: &Arc<SimDisk>,
    provider: &Mutex<Endpoint>,
    ended: &Ended,
    test_name: &str,
) -> Vec<WorldFinding> {
    let mut findings = Vec::new();
    let mut find = |guarantee: Guarantee, detail: String| {
        findings.push(WorldFinding {
            guarantee,
            seed,
            detail: format!("{detail} [fault: {:?}]", ended.fault),
            test_name: test_name.to_owned(),
        });
    };
    let power_lost = disk.is_down();
    disk.cancel_plans();
    let rotated = access_token(0, 1);
    let got = |index: usize| match &ended.results[index] {
        Ok(granted) => granted.access.expose().to_owned(),
        Err(error) => format!("error: {error}"),
    };
    // The ground truth the excuses rest on.
    // A kill takes a whole process: every agent in it.
    let killed: Vec<usize> = (0..shape.refreshers)
        .filter(|&i| disk.is_dead(shape.pid_of(i)))
        .collect();
    let (presented, rotations, presenters) = {
        let provider = provider.lock().unwrap_or_else(|p| p.into_inner());
        let presented: Vec<u16> = provider
            .families
            .iter()
            .flat_map(|f| f.presented.iter().copied())
            .collect();
        let presenters: Vec<usize> = provider.requests.iter().map(|r| r.agent as usize).collect();
        (presented, provider.rotations, presenters)
    };
    if presented.iter().any(|&count| count > 1) {
        find(
            Guarantee::G1,
            format!("a refresh token was presented more than once: presentations per token {presented:?}"),
        );
    }
    if rotations > 1 {
        find(
            Guarantee::G2,
            format!("{rotations} rotations for one expiry"),
        );
    }
    for unlocked in ended
        .unlocked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        find(Guarantee::G8, unlocked.clone());
    }
    if power_lost {
        judge_after_power_loss(disk, provider, ended, &presented, &mut find);
        return findings;
    }
    let main = StoreFile::with_io(
        disk.clone(),
        &layout(),
        &AgentId::main(),
        STORE_LOCK_WAIT_MS,
    )
    .read_doc();
    let main = match main {
        Ok(Some(doc)) => doc,
        other => {
            find(
                Guarantee::G4,
                format!("main's store cannot be read at the end: {other:?}"),
            );
            return findings;
        }
    };
    // A killed refresher that died inside its refresh (it presented, or its
    // fence is still in main) may have taken the rotation with it, or left
    // the token in doubt: the others then rightly answer NeedsReauth (G7).
    // The killed process's own result says nothing (a killed process
    // returns nothing; its thread ran on with failing I/O). Only a rotation
    // stored nowhere excuses that: a sub-agent mirrors into main before it
    // commits to its own store (SPEC §3 step 8), so a rotation that reached
    // any store is in main, where everyone else adopts it. A host that
    // committed first and died before its mirror would leave the rotation
    // in its own store alone and send everyone else to a re-login: a lost
    // convergence (G2).
    let stored_anywhere = holds_token(&main, &rotated)
        || (0..shape.refreshers)
            .filter(|&i| agent_name(i) != "main")
            .any(|i| own_store_holds(disk, i, &rotated));
    let excuse = !killed.is_empty()
        && (killed.iter().any(|c| presenters.contains(c)) || in_doubt_left(&main))
        && !stored_anywhere;
    if rotations == 0 && !excuse {
        find(
            Guarantee::G2,
            "no rotation although the credential expired".into(),
        );
    }
    for index in (0..shape.refreshers).filter(|i| !killed.contains(i)) {
        let in_doubt = matches!(
            &ended.results[index],
            Err(Run::Failed(Failure::NeedsReauth(_)))
        );
        if got(index) != rotated && !(in_doubt && excuse) {
            find(
                Guarantee::G2,
                format!(
                    "agent {} got {}, not the new token {rotated}",
                    agent_name(index),
                    got(index)
                ),
            );
        }
    }
    if let Some(error) = &ended.writer_error {
        find(Guarantee::G4, format!("the usage writer failed: {error}"));
    }
    let count = usage_count(main.state.as_ref());
    if count != u64::from(shape.usage_writes) {
        find(
            Guarantee::G4,
            format!(
                "main's store counts {count} usage writes of {}: an update was lost",
                shape.usage_writes
            ),
        );
    }
    let held = main
        .profiles
        .get(PROFILE)
        .and_then(|c| c.access.as_ref())
        .map(|a| a.expose().to_owned());
    // Only a rotation that was stored can be put back by a stale write: when
    // no agent returned it (its reply lost, say), the G2 findings above
    // already say that the agents missed it.
    let stored = (0..shape.refreshers).any(|i| got(i) == rotated);
    if held.as_deref() != Some(rotated.as_str()) && stored && !excuse {
        find(
            Guarantee::G4,
            format!("main's store holds {held:?} at the end, not the rotation {rotated}: a stale write put it back"),
        );
    }
    findings
}

/// Whether `doc` holds `access` as the profile's access token.
fn holds_token(doc: &rotor_kernel::StoreDoc, access: &str) -> bool {
    doc.profiles
        .get(PROFILE)
        .and_then(|c| c.access.as_ref())
        .is_some_and(|a| a.expose() == access)
}

/// Whether sub-agent `index`'s own store holds `access`.
fn own_store_holds(disk: &Arc<SimDisk>, index: usize, access: &str) -> bool {
    let agent = AgentId::new(&agent_name(index)).expect("a valid agent id");
    let store = StoreFile::with_io(disk.clone(), &layout(), &agent, STORE_LOCK_WAIT_MS);
    matches!(store.read_doc(), Ok(Some(doc)) if holds_token(&doc, access))
}

/// Whether main's store holds a fence, or a credential marked
/// `needs_reauth`: the traces a refresh leaves when its holder died in it.
fn in_doubt_left(main: &rotor_kernel::StoreDoc) -> bool {
    let fenced = main.fences.get(PROFILE).is_some_and(|f| !f.is_empty());
    let marked = main.profiles.get(PROFILE).is_some_and(|c| c.needs_reauth);
    fenced || marked
}

/// After a power loss: reboot, and a fresh main process asks (G6, G1,
/// liveness).
fn judge_after_power_loss(
    disk: &Arc<SimDisk>,
    provider: &Mutex<Endpoint>,
    ended: &Ended,
    presented_before: &[u16],
    find: &mut impl FnMut(Guarantee, String),
) {
    disk.reboot();
    // A fence that reached the disk before the power went (or the mark the
    // killed holder's fence led to) leaves the token in doubt: NeedsReauth
    // is then what G7 demands, even if nothing was sent.
    let in_doubt = StoreFile::with_io(
        disk.clone(),
        &layout(),
        &AgentId::main(),
        STORE_LOCK_WAIT_MS,
    )
    .read_doc()
    .ok()
    .flatten()
    .is_some_and(|doc| in_doubt_left(&doc));
    let returned: Vec<String> = ended
        .results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|g| g.access.expose().to_owned()))
        .collect();
    let fresh_pid = 7;
    let fresh_unlocked = Arc::new(Mutex::new(Vec::new()));
    let fresh = Rotor::open_on(Arc::new(disk.process(fresh_pid)), STATE_DIR).and_then(|rotor| {
        let mut endpoint = WorldEndpoint {
            endpoint: Arc::new(Mutex::new(
                provider.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            )),
            disk: disk.clone(),
            pid: fresh_pid,
            index: u16::MAX,
            unlocked: fresh_unlocked.clone(),
        };
        let granted = rotor.token_via(&mut endpoint, "main", PROVIDER, PROFILE);
        let after = endpoint
            .endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        granted.map(|g| (g, after))
    });
    for unlocked in fresh_unlocked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        find(Guarantee::G8, format!("after the power loss, {unlocked}"));
    }
    let presented_any = presented_before.iter().any(|&c| c > 0);
    match fresh {
        Ok((granted, after)) => {
            let twice = after
                .families
                .iter()
                .flat_map(|f| f.presented.iter())
                .any(|&count| count > 1);
            if twice {
                find(
                    Guarantee::G1,
                    "after the power loss the fresh process presented a spent refresh token (its fence was not durable, G7)".into(),
                );
            }
            if let Some(token) = returned.first() {
                if granted.outcome == Outcome::Refreshed || granted.access.expose() != token {
                    find(
                        Guarantee::G6,
                        format!(
                            "an agent returned {token} before the power loss, but the fresh process got {:?} {}",
                            granted.outcome,
                            granted.access.expose()
                        ),
                    );
                }
            }
        }
        Err(rotor_fs::Error::Failed(Failure::NeedsReauth(_))) if presented_any || in_doubt => {}
        Err(error) => find(
            Guarantee::Liveness,
            format!(
                "after the power loss the fresh process failed: {error} (presentations before: {presented_before:?})"
            ),
        ),
    }
    let main = StoreFile::with_io(
        disk.clone(),
        &layout(),
        &AgentId::main(),
        STORE_LOCK_WAIT_MS,
    )
    .read_doc();
    match main {
        Ok(doc) => {
            let count = usage_count(doc.as_ref().and_then(|d| d.state.as_ref()));
            if count < u64::from(ended.usage_written) {
                find(
                    Guarantee::G6,
                    format!(
                        "{} usage writes returned before the power loss, main's store keeps {count}",
                        ended.usage_written
                    ),
                );
            }
        }
        Err(fault) => find(
            Guarantee::G6,
            format!(
                "main's store is unreadable after the power loss: {}",
                fault.detail
            ),
        ),
    }
}
