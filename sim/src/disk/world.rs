//! A world of processes running the shipped fs host on one simulated disk,
//! interleaved at every I/O call by a seeded [`Scheduler`].
//!
//! Each process is a thread with its own `rotor_fs::Rotor` (its own
//! in-process single-flight, as separate processes have): refreshing agents
//! (main and sub-agents) that all find the shared credential expired, and a
//! background writer (usage statistics) that updates main's store through
//! `StoreFile::update`, the door every writer must use. They share the
//! simulator's strict provider. Nothing of the host is re-stated here: the
//! refresh lock, the store locks, the driver loop, fence, commit and mirror
//! are `rotor-fs` and `rotor-kernel` as shipped; only the disk and the
//! network beneath them are simulated, and the scheduler decides, call by
//! call, who runs.
//!
//! Checked after every run:
//! - **G1**: no refresh token presented twice;
//! - **G2**: one rotation for the one expiry, and every agent returns the
//!   new access token;
//! - **G4**: no lost update: every usage write is in main's store at the
//!   end, and so is the rotation (a stale read-modify-write would have put
//!   the spent token back).
//!
//! A finding prints the seed and the command that replays it.

use core::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rotor_fs::io::Io;
use rotor_fs::{AgentId, Layout, Rotor, StoreFile};
use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{Credential, EndpointError, Granted, Mutation, TokenGrant};
use serde_json::{json, Value};

use super::{Scheduler, SimDisk};
use crate::endpoint::{self, access_token, refresh_token, Endpoint, Request, ServerFault};
use crate::guarantee::Guarantee;
use crate::trace::ServerResult;

const STATE_DIR: &str = "/srv/rotor";
const PROVIDER: &str = "acme";
const PROFILE: &str = "acme:default";
const ACCESS_LIFETIME_MS: u64 = 3_600_000;
const STORE_LOCK_WAIT_MS: u64 = 10_000;

/// Who runs in a world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldShape {
    /// Refreshing agents; even ones are the main agent, odd ones sub-agents
    /// (`worker-<i>`), each in its own process.
    pub refreshers: usize,
    /// Read-modify-writes of the background usage writer.
    pub usage_writes: u32,
}

impl Default for WorldShape {
    fn default() -> Self {
        WorldShape {
            refreshers: 4,
            usage_writes: 3,
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

/// The strict provider shared by every process; the call is in flight
/// between two switch points, so others run while it is.
struct SharedProvider {
    endpoint: Arc<Mutex<Endpoint>>,
    disk: Arc<SimDisk>,
}

impl TokenEndpoint for SharedProvider {
    fn refresh(
        &mut self,
        credential: &Credential,
        _deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        self.disk.switch();
        let presented = credential.refresh.as_ref().map(|r| r.expose().to_owned());
        let Some((family, n)) = presented.as_deref().and_then(endpoint::parse_token) else {
            return Err(EndpointError::http(400, r#"{"error":"invalid_request"}"#));
        };
        let reply = {
            let mut provider = self.endpoint.lock().unwrap_or_else(|p| p.into_inner());
            let id = provider.send(Request {
                agent: 0,
                epoch: 0,
                family,
                n,
                sent_at_ms: 0,
                processed: false,
                replied: true,
                fault: ServerFault::None,
                result: None,
                grant: None,
                attempt: 0,
                stalled: false,
            });
            let (result, _) = provider.process(id, 0);
            match result {
                ServerResult::Rotated | ServerResult::Grace => {
                    let (family, n) = provider.requests[id as usize]
                        .grant
                        .expect("a rotation has a grant");
                    Ok(provider.grant(family, n, (None, None)))
                }
                other => Err(endpoint::endpoint_error(ServerFault::None, Some(other))),
            }
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

fn usage_count(doc_state: Option<&Value>) -> u64 {
    doc_state
        .and_then(|state| state.get("usage"))
        .and_then(|usage| usage.get("count"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Runs the world of `seed` over the I/O `make_io` builds on its disk and
/// returns what it broke (nothing, for the shipped host).
pub fn run_world(
    seed: u64,
    shape: WorldShape,
    make_io: &(dyn Fn(Arc<SimDisk>) -> Arc<dyn Io> + Sync),
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
            credential: expired,
        },
    )
    .expect("preparing main's store");
    disk.sync_everything();
    let provider = Arc::new(Mutex::new(provider));

    let results: Vec<Result<Granted, String>> = std::thread::scope(|scope| {
        let refreshers: Vec<_> = (0..shape.refreshers)
            .map(|index| {
                let (scheduler, disk, provider) =
                    (scheduler.clone(), disk.clone(), provider.clone());
                scope.spawn(move || {
                    scheduler.enter(index);
                    let _leave = Leave(&scheduler);
                    let rotor = Rotor::open_on(make_io(disk.clone()), STATE_DIR)
                        .map_err(|e| e.to_string())?;
                    let mut endpoint = SharedProvider {
                        endpoint: provider,
                        disk,
                    };
                    rotor
                        .token_via(&mut endpoint, &agent_name(index), PROVIDER, PROFILE)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        let writer = {
            let (scheduler, disk) = (scheduler.clone(), disk.clone());
            scope.spawn(move || {
                scheduler.enter(shape.refreshers);
                let _leave = Leave(&scheduler);
                let store = StoreFile::with_io(
                    make_io(disk),
                    &layout(),
                    &AgentId::main(),
                    STORE_LOCK_WAIT_MS,
                );
                for _ in 0..shape.usage_writes {
                    let written = store.update("usage", |doc| {
                        let count = usage_count(doc.state.as_ref()) + 1;
                        doc.state = Some(json!({ "usage": { "count": count } }));
                        ((), true)
                    });
                    if let Err(fault) = written {
                        return Err(fault.detail);
                    }
                }
                Ok(())
            })
        };
        let results = refreshers
            .into_iter()
            .map(|handle| handle.join().expect("a refresher panicked"))
            .collect();
        if let Err(detail) = writer.join().expect("the usage writer panicked") {
            return vec![Err(format!("usage writer: {detail}"))];
        }
        results
    });

    judge(seed, shape, &disk, &provider, &results, test_name)
}

fn judge(
    seed: u64,
    shape: WorldShape,
    disk: &Arc<SimDisk>,
    provider: &Mutex<Endpoint>,
    results: &[Result<Granted, String>],
    test_name: &str,
) -> Vec<WorldFinding> {
    let provider = provider.lock().unwrap_or_else(|p| p.into_inner());
    let mut findings = Vec::new();
    let mut find = |guarantee: Guarantee, detail: String| {
        findings.push(WorldFinding {
            guarantee,
            seed,
            detail,
            test_name: test_name.to_owned(),
        });
    };
    let presented: Vec<u16> = provider
        .families
        .iter()
        .flat_map(|f| f.presented.iter().copied())
        .collect();
    if presented.iter().any(|&count| count > 1) {
        find(
            Guarantee::G1,
            format!("a refresh token was presented more than once: presentations per token {presented:?}"),
        );
    }
    let rotated = access_token(0, 1);
    if provider.rotations != 1 {
        find(
            Guarantee::G2,
            format!(
                "{} rotations for one expiry (presentations {presented:?})",
                provider.rotations
            ),
        );
    }
    for (index, result) in results.iter().enumerate() {
        let got = match result {
            Ok(granted) => granted.access.expose().to_owned(),
            Err(error) => format!("error: {error}"),
        };
        if got != rotated {
            find(
                Guarantee::G2,
                format!(
                    "agent {} got {got}, not the new token {rotated}",
                    agent_name(index)
                ),
            );
        }
    }
    let main = StoreFile::with_io(
        disk.clone(),
        &layout(),
        &AgentId::main(),
        STORE_LOCK_WAIT_MS,
    )
    .read_doc();
    match main {
        Ok(Some(doc)) => {
            let count = usage_count(doc.state.as_ref());
            if count != u64::from(shape.usage_writes) {
                find(
                    Guarantee::G4,
                    format!(
                        "main's store counts {count} usage writes of {}: an update was lost",
                        shape.usage_writes
                    ),
                );
            }
            let held = doc
                .profiles
                .get(PROFILE)
                .and_then(|c| c.access.as_ref())
                .map(|a| a.expose().to_owned());
            if held.as_deref() != Some(rotated.as_str()) {
                find(
                    Guarantee::G4,
                    format!("main's store holds {held:?} at the end, not the rotation {rotated}: a stale write put it back"),
                );
            }
        }
        other => find(
            Guarantee::G4,
            format!("main's store cannot be read at the end: {other:?}"),
        ),
    }
    findings
}
