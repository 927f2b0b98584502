//! What happened in a run, one event per step.
//!
//! A [`Trace`] records in one of three modes. `Off` keeps nothing (the fast
//! path of a sweep). `Hash` folds every event into a 64-bit FNV-style hash:
//! no allocation, no formatting, enough for CI to run each seed twice and
//! compare. `Full` keeps the events for printing (one line each) and for the
//! JSON trace file that `rotor replay trace.json` reads back.

use core::fmt;
use core::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::config::{ActorKind, FaultKind};
use crate::guarantee::Guarantee;

/// An agent: process index and slot within the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentRef {
    /// Process index.
    pub p: u8,
    /// Agent slot in the process (slot 0 is the process's main agent).
    pub a: u8,
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}.a{}", self.p, self.a)
    }
}

/// A store write as the trace shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    /// `Mutation::Adopt`.
    Adopt,
    /// `Mutation::PutFence`.
    PutFence,
    /// `Mutation::Commit`.
    Commit,
    /// `Mutation::Mirror`.
    Mirror,
    /// `Mutation::SettleFence`.
    SettleFence,
    /// `Mutation::ClearFence`.
    ClearFence,
    /// `Mutation::MarkNeedsReauth`.
    MarkNeedsReauth,
    /// `Mutation::Login`.
    Login,
    /// `Mutation::Logout`.
    Logout,
}

/// What a store write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteResult {
    /// Applied and written.
    Applied,
    /// Mirror refused; fence dropped.
    MirrorRefused,
    /// Compare-and-swap lost; nothing written.
    Conflict,
    /// I/O error or disk full.
    Io,
    /// The store is corrupt: kept aside, not overwritten.
    Corrupt,
    /// The store lock was not acquired in time.
    LockTimeout,
    /// Reported applied, performed later (a broken host).
    Deferred,
}

/// What the provider did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerResult {
    /// The presented token was current: rotated.
    Rotated,
    /// A consumed token inside the grace window: the current tokens returned.
    Grace,
    /// A consumed token: `invalid_grant`, the whole family revoked.
    Reused,
    /// The family was already revoked: `invalid_grant`.
    Revoked,
    /// Answered 5xx/429 without processing.
    Refused,
}

/// What the host reported for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// A grant.
    Granted,
    /// `invalid_grant`.
    InvalidGrant,
    /// Connection refused (never sent).
    NotSent,
    /// 5xx or 429.
    ServerError,
    /// Timed out after send.
    Timeout,
    /// Connection reset: response lost.
    Reset,
}

/// How a resolve ended, as the trace shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoneKind {
    /// `Outcome::Cached`.
    Cached,
    /// `Outcome::Adopted { from: Main }`.
    AdoptedMain,
    /// `Outcome::Adopted { from: Peer }`.
    AdoptedPeer,
    /// `Outcome::Refreshed`.
    Refreshed,
    /// `NeedsReauth` because of an in-doubt fence.
    FenceNeedsReauth,
    /// `NeedsReauth` because the provider refused the token.
    RefusedNeedsReauth,
    /// `NeedsReauth`, credential already marked or without refresh token.
    MarkedNeedsReauth,
    /// `InDoubt`.
    InDoubt,
    /// `Transient`.
    Transient,
    /// `Rejected`.
    Rejected,
    /// `LockTimeout`.
    LockTimeout,
    /// `Superseded`.
    Superseded,
    /// `Store` fault.
    Store,
    /// `RotationNotStored`.
    RotationNotStored,
    /// `LoggedOut`.
    LoggedOut,
    /// `NoCredential`, `ProviderMismatch`, `NotRefreshable`.
    Unavailable,
}

/// What a background actor did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorStep {
    /// Took the store lock and read the document.
    Read,
    /// Wrote its change back (by rename, or in place).
    Write,
    /// Gave up (store corrupt, write failed, lock busy too long).
    GaveUp,
    /// Installed a new token family / tombstone.
    Installed,
}

/// One event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum What {
    /// An agent starts a resolve.
    Start { agent: AgentRef },
    /// A lock-free read; `generation` of the entry, -1 when absent, -2 when
    /// the store could not be read.
    Read {
        agent: AgentRef,
        store: u8,
        generation: i64,
    },
    /// A store write.
    Write {
        agent: AgentRef,
        store: u8,
        kind: WriteKind,
        result: WriteResult,
    },
    /// The agent waits for the refresh lock.
    LockWait { agent: AgentRef },
    /// The agent holds the refresh lock.
    LockAcquired { agent: AgentRef },
    /// The lock wait ran out.
    LockFailed { agent: AgentRef, waited_ms: u64 },
    /// The agent presents refresh token `family.n`.
    Call {
        agent: AgentRef,
        request: u32,
        family: u32,
        n: u32,
    },
    /// The provider handles a request.
    Server {
        request: u32,
        family: u32,
        n: u32,
        result: ServerResult,
    },
    /// The host reports the call's result to the agent.
    Reply {
        agent: AgentRef,
        request: u32,
        reply: ReplyKind,
    },
    /// The agent releases the refresh lock.
    Release { agent: AgentRef },
    /// The resolve ended.
    Done { agent: AgentRef, outcome: DoneKind },
    /// A fault was injected (`applied` false when masked by shrinking).
    Fault {
        fault: FaultKind,
        process: u8,
        applied: bool,
    },
    /// A crashed process restarts; a paused one resumes.
    Restart { process: u8 },
    /// A lease expired while its holder process was stalled or dead.
    LeaseExpired { process: u8 },
    /// A background actor acted on a store.
    Actor {
        actor: ActorKind,
        store: u8,
        action: ActorStep,
    },
    /// Faults off: the liveness phase begins.
    Liveness,
    /// A checker reported a violation.
    Violation { guarantee: Guarantee },
}

/// One line of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    /// Step number.
    pub step: u32,
    /// Simulated time, ms.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
}

fn store_name(store: u8) -> String {
    if store == 0 {
        "main".into()
    } else {
        format!("s{store}")
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>5} {:>6}.{:03}s  ",
            self.step,
            self.at_ms / 1000,
            self.at_ms % 1000
        )?;
        match self.what {
            What::Start { agent } => write!(f, "{agent} starts a resolve"),
            What::Read {
                agent,
                store,
                generation,
            } => {
                if generation == -2 {
                    write!(f, "{agent} reads {}: unreadable", store_name(store))
                } else if generation < 0 {
                    write!(f, "{agent} reads {}: no entry", store_name(store))
                } else {
                    write!(
                        f,
                        "{agent} reads {}: generation {generation}",
                        store_name(store)
                    )
                }
            }
            What::Write {
                agent,
                store,
                kind,
                result,
            } => write!(
                f,
                "{agent} writes {} {kind:?} -> {result:?}",
                store_name(store)
            ),
            What::LockWait { agent } => write!(f, "{agent} waits for the refresh lock"),
            What::LockAcquired { agent } => write!(f, "{agent} holds the refresh lock"),
            What::LockFailed { agent, waited_ms } => {
                write!(f, "{agent} gives up on the lock after {waited_ms} ms")
            }
            What::Call {
                agent,
                request,
                family,
                n,
            } => write!(
                f,
                "{agent} presents refresh token r{family}.{n} (request #{request})"
            ),
            What::Server {
                request,
                family,
                n,
                result,
            } => write!(f, "provider handles #{request} (r{family}.{n}): {result:?}"),
            What::Reply {
                agent,
                request,
                reply,
            } => write!(f, "{agent} gets #{request}: {reply:?}"),
            What::Release { agent } => write!(f, "{agent} releases the refresh lock"),
            What::Done { agent, outcome } => write!(f, "{agent} done: {outcome:?}"),
            What::Fault {
                fault,
                process,
                applied,
            } => {
                let masked = if applied { "" } else { " (masked)" };
                write!(f, "FAULT {} on p{process}{masked}", fault.name())
            }
            What::Restart { process } => write!(f, "p{process} runs again"),
            What::LeaseExpired { process } => {
                write!(f, "the lease held by p{process} expires")
            }
            What::Actor {
                actor,
                store,
                action,
            } => {
                write!(f, "{} on {}: {action:?}", actor.name(), store_name(store))
            }
            What::Liveness => f.write_str("faults off: liveness phase"),
            What::Violation { guarantee } => write!(f, "VIOLATION of {guarantee}"),
        }
    }
}

/// How much a trace keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    /// Nothing.
    Off,
    /// A hash of every event.
    Hash,
    /// Every event.
    Full,
}

/// The record of a run.
#[derive(Clone, Debug)]
pub struct Trace {
    mode: TraceMode,
    hash: u64,
    events: Vec<Event>,
    count: u32,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over the bytes `Hash` feeds it: deterministic, no random state.
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= *byte as u64;
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

impl Trace {
    /// An empty trace in `mode`.
    pub fn new(mode: TraceMode) -> Self {
        Trace {
            mode,
            hash: FNV_OFFSET,
            events: Vec::new(),
            count: 0,
        }
    }

    /// The mode.
    pub fn mode(&self) -> TraceMode {
        self.mode
    }

    /// Records one event.
    #[inline]
    pub fn record(&mut self, step: u32, at_ms: u64, what: What) {
        self.count += 1;
        match self.mode {
            TraceMode::Off => {}
            TraceMode::Hash => {
                let mut hasher = Fnv(self.hash);
                Event { step, at_ms, what }.hash(&mut hasher);
                self.hash = hasher.finish();
            }
            TraceMode::Full => {
                let event = Event { step, at_ms, what };
                let mut hasher = Fnv(self.hash);
                event.hash(&mut hasher);
                self.hash = hasher.finish();
                self.events.push(event);
            }
        }
    }

    /// The hash of every event so far (`Hash` and `Full` modes).
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The events (`Full` mode).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// How many events were recorded, in any mode.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}
