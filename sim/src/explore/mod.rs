//! Exhaustive exploration: every reachable state of a small world, checked.
//!
//! loom and shuttle explore schedules without remembering states; rotor's
//! kernel is pure, so its states can be hashed and deduplicated, as TLC does
//! for TLA+, but on the real kernel code. [`explore`] walks the reachable
//! states of a world of agents in processes breadth-first, with a visited set
//! keyed by a canonical 128-bit hash of (each resolver's input history, the
//! store documents, locks, provider, calls in flight, time phase, fault
//! budgets), canonical also under renaming interchangeable processes (below).
//! Breadth-first order makes each counterexample a shortest path.
//!
//! The world is abstracted so it is finite (see `state.rs`): atomic store
//! writes, a refresh lock as holder sets, a strict rotating provider, time as
//! a few phases, a bounded number of requests, crashes and endpoint faults.
//! Faults are nondeterministic choices at every step: a crash of any process
//! with an agent mid-resolve, an endpoint call that succeeds, is refused as
//! reused, is not sent, or loses its response, a lease expiry (lease backend).
//!
//! The host's abilities are the simulator's [`HostHooks`]: `sim/tests`
//! explores docs/bugs.md's broken hosts exactly like the shipped one.
//!
//! A counterexample is a path: the index chosen among the enabled steps at
//! each depth. [`replay`] re-walks one; [`ExploreTraceFile`] writes one to
//! disk (`rotor check --exhaustive` does, for each violation) with its world,
//! violated guarantees and printed lines, and replays it only if it
//! reproduces exactly (`rotor replay <file>`; see `file.rs`).
//!
//! Symmetry reduction (`symmetry.rs`, on unless [`ExploreConfig::symmetry`]
//! is off): processes the world cannot tell apart (same agents and roles,
//! sub-agent stores alike, lock slots alike, the initial state mapped onto
//! itself) are interchangeable, and the visited set is keyed by the least key
//! over every renaming of them ([`State::canonical_key`]). The renaming
//! reaches every name a state holds, fence holders inside store documents and
//! the store views in each resolver's input history included (each agent
//! hashes its history once per renaming). The state expanded is the first
//! reached, so paths and trace files replay unchanged, and counterexamples
//! stay shortest. Of the named worlds only `crash-faults` has interchangeable
//! processes (half the states); the report says over how many permutations.
//!
//! Not done: exchanging agents within one process (no named world has two
//! alike); `rotor replay <file>` of a trace found with a broken host (the
//! command line has only the shipped host; such files replay through
//! [`ExploreTraceFile::replay`]).
//!
//! ```
//! use std::sync::Arc;
//! use rotor_sim::explore::{explore, ExploreConfig};
//! use rotor_sim::Shipped;
//!
//! let config = ExploreConfig {
//!     agents_per_process: vec![1, 1],
//!     crashes_max: 1,
//!     time_steps_max: 0,
//!     ..ExploreConfig::default()
//! };
//! let report = explore(&config, Arc::new(Shipped));
//! assert!(report.violations.is_empty(), "{}", report.violations[0]);
//! assert!(report.distinct_states > 100);
//! assert_eq!(report.symmetry_permutations, 2); // p0 and p1 are interchangeable
//! ```

mod check;
mod file;
mod lock_twin;
mod state;
mod step;
mod symmetry;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rotor_kernel::Policy;
use serde::{Deserialize, Serialize};

pub use check::Found;
pub use file::{
    read_trace_file, AnyTraceFile, ExploreTraceFile, NotReproduced, TraceFileError,
    EXPLORE_TRACE_VERSION,
};
pub use state::{CallFault, State, Step};
pub use symmetry::{Renaming, Symmetry, PROCESSES_PERMUTED_MAX};

use crate::guarantee::Guarantee;
use crate::hooks::HostHooks;

/// The world to explore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExploreConfig {
    /// Agents per process (the first of each process is its main agent).
    pub agents_per_process: Vec<u8>,
    /// Resolves per agent.
    pub requests: u8,
    /// Process crashes allowed in one path.
    pub crashes_max: u8,
    /// Endpoint faults (not sent, lost response, reuse) allowed in one path.
    pub endpoint_faults_max: u8,
    /// Time phases that may pass.
    pub time_steps_max: u8,
    /// The lease backend (else advisory).
    pub lease: bool,
    /// Lease expiries allowed in one path (lease backend).
    pub lease_expiries_max: u8,
    /// With `lease`: the fenced lease (the PostgreSQL host's rule): a fence
    /// is written or cleared only while its writer still holds the lock, so
    /// the lease limit is not excused.
    pub fenced_lease: bool,
    /// A usage writer writes main once (G4).
    pub writer: bool,
    /// A re-login installs a new family in main once (G11).
    pub relogin: bool,
    /// The last sub-agent store holds another account's credential (G3).
    pub other_account_store: bool,
    /// Sub-agent stores start with a copy of main's credential.
    pub sub_stores_hold_copy: bool,
    /// Stores carry no identity (legacy).
    pub legacy_identity: bool,
    /// The provider reports the account id in grants even for legacy stores.
    pub provider_reports_identity: bool,
    /// Stop after this many distinct states (the report says it stopped).
    pub states_max: usize,
    /// Symmetry reduction: key the visited set by the least key over the
    /// renamings of interchangeable processes (`symmetry.rs`). Off explores
    /// every renaming separately (`rotor check --exhaustive W
    /// --no-symmetry`); trace files written before this field existed read
    /// as on.
    #[serde(default = "symmetry_default")]
    pub symmetry: bool,
    /// Every store read and write is also made by the shipped fs store code
    /// (`rotor_fs::StoreFile` over a simulated disk holding the state's
    /// document), and the two must agree; on the advisory backend every
    /// agent waiting for a held refresh lock is also asked of the shipped
    /// `rotor_fs::FsRefreshLock`, which must grant or refuse as the model
    /// does (`--shipped-host`).
    #[serde(default)]
    pub shipped_host: bool,
}

fn symmetry_default() -> bool {
    true
}

impl Default for ExploreConfig {
    fn default() -> Self {
        ExploreConfig {
            agents_per_process: vec![1, 1],
            requests: 1,
            crashes_max: 0,
            endpoint_faults_max: 0,
            time_steps_max: 1,
            lease: false,
            lease_expiries_max: 0,
            fenced_lease: false,
            writer: false,
            relogin: false,
            other_account_store: false,
            sub_stores_hold_copy: false,
            legacy_identity: false,
            provider_reports_identity: false,
            states_max: 5_000_000,
            symmetry: true,
            shipped_host: false,
        }
    }
}

/// The named worlds CI explores (`rotor check --exhaustive <name>`).
pub const PRESETS: [&str; 5] = [
    "crash-faults",
    "single-flight",
    "identity",
    "relogin",
    "fenced-lease",
];

impl ExploreConfig {
    /// A named world: `crash-faults` (2 processes x 1 agent, one crash and one
    /// endpoint fault), `single-flight` (3 agents in 2 processes, p0's pair
    /// sharing the in-process single-flight; no crash), `identity` (main + 2
    /// sub-agents, one sub-agent's store holding another account), `relogin`
    /// (main + sub-agent in one process, a re-login and a usage writer racing
    /// them, one crash and one endpoint fault; no time step), `fenced-lease`
    /// (2 processes x 1 agent on the fenced lease, one lease expiry under a
    /// live holder: the lease limit's world, where nothing may be excused).
    pub fn preset(name: &str) -> Option<ExploreConfig> {
        let base = ExploreConfig::default();
        Some(match name {
            "crash-faults" => ExploreConfig {
                agents_per_process: vec![1, 1],
                crashes_max: 1,
                endpoint_faults_max: 1,
                writer: true,
                ..base
            },
            "single-flight" => ExploreConfig {
                agents_per_process: vec![2, 1],
                ..base
            },
            "identity" => ExploreConfig {
                agents_per_process: vec![3],
                other_account_store: true,
                ..base
            },
            "relogin" => ExploreConfig {
                agents_per_process: vec![2],
                time_steps_max: 0,
                relogin: true,
                writer: true,
                crashes_max: 1,
                endpoint_faults_max: 1,
                ..base
            },
            "fenced-lease" => ExploreConfig {
                agents_per_process: vec![1, 1],
                time_steps_max: 0,
                lease: true,
                lease_expiries_max: 1,
                fenced_lease: true,
                ..base
            },
            _ => return None,
        })
    }

    /// The policy: SPEC §6 defaults, with the kernel's shortest valid lease
    /// on the lease backend; the simulator's own (`crate::policy`).
    pub fn policy(&self) -> Policy {
        crate::policy::policy(None, self.lease)
    }
}

/// What every step needs besides the state.
pub struct Ctx<'a> {
    pub config: &'a ExploreConfig,
    pub policy: &'a Policy,
    pub hooks: &'a dyn HostHooks,
    /// The renamings each agent's input history is hashed under.
    pub symmetry: &'a Symmetry,
}

/// A violation with the shortest path to it.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// What was found.
    pub found: Found,
    /// The index chosen among the enabled steps at each depth (replay with
    /// [`replay`], `rotor replay --exhaustive <world> --path ...`, or as an
    /// [`ExploreTraceFile`]).
    pub choices: Vec<u32>,
    /// One line per step, as the simulator prints its traces.
    pub lines: Vec<String>,
}

impl Counterexample {
    /// The path as `--path` takes it.
    pub fn path_arg(&self) -> String {
        self.choices
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}) violated after {} steps: {}",
            self.found.guarantee,
            self.found.guarantee.title(),
            self.lines.len(),
            self.found.detail
        )?;
        for (i, line) in self.lines.iter().enumerate() {
            writeln!(f, "{:>5}  {line}", i + 1)?;
        }
        write!(f, "path: {}", self.path_arg())
    }
}

/// The result of one exploration, in the TLC manner.
#[derive(Clone, Debug)]
pub struct ExploreReport {
    pub distinct_states: u64,
    pub transitions: u64,
    /// The greatest depth (steps from the initial state) reached.
    pub depth: u32,
    pub elapsed: Duration,
    /// The first (shortest) counterexample per guarantee.
    pub violations: Vec<Counterexample>,
    /// Expected findings (the lease limit).
    pub findings: Vec<Counterexample>,
    /// States with no enabled step in which every agent was done.
    pub terminal_states: u64,
    /// True when `states_max` stopped the walk.
    pub truncated: bool,
    /// The guarantees reported *first* by some violating transition (what a
    /// simulator run that stops at its first violation can report).
    pub first_found: Vec<Guarantee>,
    /// Whether symmetry reduction was asked for ([`ExploreConfig::symmetry`]).
    pub symmetry: bool,
    /// The renamings of interchangeable processes the visited set was keyed
    /// over, the identity included (1: no reduction).
    pub symmetry_permutations: usize,
}

impl ExploreReport {
    /// True when `guarantee` was violated.
    pub fn violated(&self, guarantee: Guarantee) -> bool {
        self.violations
            .iter()
            .any(|v| v.found.guarantee == guarantee)
    }

    /// The guarantees violated, sorted.
    pub fn guarantees(&self) -> Vec<Guarantee> {
        let mut gs: Vec<_> = self.violations.iter().map(|v| v.found.guarantee).collect();
        gs.sort();
        gs.dedup();
        gs
    }
}

impl fmt::Display for ExploreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} distinct states, {} transitions, depth {}, {} terminal states, {:.2}s{}",
            self.distinct_states,
            self.transitions,
            self.depth,
            self.terminal_states,
            self.elapsed.as_secs_f64(),
            if self.truncated {
                " (TRUNCATED at states_max)"
            } else {
                ""
            }
        )?;
        match (self.symmetry, self.symmetry_permutations) {
            (false, _) => write!(f, "; symmetry reduction off"),
            (true, 1) => write!(
                f,
                "; symmetry reduction: no interchangeable processes (1 permutation)"
            ),
            (true, n) => write!(
                f,
                "; symmetry reduction over {n} permutations of interchangeable processes"
            ),
        }
    }
}

/// The initial state of `config`, with the host's lock slots, and the
/// symmetry its visited set is keyed by: every renaming of interchangeable
/// processes ([`Symmetry::of`]), or the identity alone when
/// [`ExploreConfig::symmetry`] is off. The state carries one input history
/// per renaming.
pub fn initial_state(config: &ExploreConfig, hooks: &dyn HostHooks) -> (State, Symmetry) {
    let mut state = State::initial(config);
    for agent in &mut state.agents {
        agent.slot = hooks.lock_slot(agent.own_store);
    }
    let symmetry = if config.symmetry {
        Symmetry::of(&state)
    } else {
        Symmetry::none(&state)
    };
    state.track(&symmetry);
    (state, symmetry)
}

/// How a state was first reached: its parent and the step chosen there (the
/// trace lines are rebuilt by replaying the path, to keep nodes small).
struct Node {
    parent: u32,
    choice: u32,
}

fn path_to(nodes: &[Node], mut at: u32) -> Vec<u32> {
    let mut choices = Vec::new();
    while at != 0 {
        let node = &nodes[at as usize];
        choices.push(node.choice);
        at = node.parent;
    }
    choices.reverse();
    choices
}

/// The trace lines of `choices` (a path the walk itself produced).
fn lines_of(config: &ExploreConfig, hooks: &Arc<dyn HostHooks>, choices: &[u32]) -> Vec<String> {
    replay(config, hooks.clone(), choices)
        .map(|(lines, _)| lines)
        .unwrap_or_else(|error| panic!("bug: the explorer cannot replay its own path: {error}"))
}

/// The liveness violation of a state with no enabled step where some agent
/// is not done.
fn deadlock(state: &State) -> Found {
    let stuck: Vec<_> = state
        .agents
        .iter()
        .filter(|a| a.resolver.is_some() || a.requests_left > 0)
        .map(|a| a.name.clone())
        .collect();
    Found::new(
        Guarantee::Liveness,
        format!("deadlock: no step enabled while {stuck:?} are not done"),
    )
}

/// Explores every reachable state of `config` with the host `hooks`,
/// breadth-first. A state where a guarantee was violated is not expanded
/// further; the first counterexample per guarantee is kept.
pub fn explore(config: &ExploreConfig, hooks: Arc<dyn HostHooks>) -> ExploreReport {
    let started = Instant::now();
    let policy = config.policy();
    let (initial, symmetry) = initial_state(config, hooks.as_ref());
    let ctx = Ctx {
        config,
        policy: &policy,
        hooks: hooks.as_ref(),
        symmetry: &symmetry,
    };
    let mut visited: HashSet<u128> = HashSet::new();
    visited.insert(initial.canonical_key(&symmetry));
    let mut nodes = vec![Node {
        parent: 0,
        choice: 0,
    }];
    let mut queue = VecDeque::from([(initial, 0u32, 0u32)]);
    let mut report = ExploreReport {
        distinct_states: 1,
        transitions: 0,
        depth: 0,
        elapsed: Duration::ZERO,
        violations: Vec::new(),
        findings: Vec::new(),
        terminal_states: 0,
        truncated: false,
        first_found: Vec::new(),
        symmetry: config.symmetry,
        symmetry_permutations: symmetry.len(),
    };
    while let Some((state, node, depth)) = queue.pop_front() {
        report.depth = report.depth.max(depth);
        let steps = state.enabled(&ctx);
        if steps.is_empty() {
            if state.all_done() {
                report.terminal_states += 1;
            } else if !report.violated(Guarantee::Liveness) {
                let choices = path_to(&nodes, node);
                let lines = lines_of(config, &hooks, &choices);
                if !report.first_found.contains(&Guarantee::Liveness) {
                    report.first_found.push(Guarantee::Liveness);
                    report.first_found.sort();
                }
                report.violations.push(Counterexample {
                    found: deadlock(&state),
                    choices,
                    lines,
                });
            }
            continue;
        }
        for (index, step) in steps.into_iter().enumerate() {
            let mut next = state.clone();
            let (_, found) = next.apply(&ctx, step);
            report.transitions += 1;
            let bad = found.iter().any(|f| !f.expected);
            if let Some(first) = found.iter().find(|f| !f.expected) {
                if !report.first_found.contains(&first.guarantee) {
                    report.first_found.push(first.guarantee);
                    report.first_found.sort();
                }
            }
            for f in found {
                let list = if f.expected {
                    &mut report.findings
                } else {
                    &mut report.violations
                };
                if list.iter().all(|c| c.found.guarantee != f.guarantee) {
                    let mut choices = path_to(&nodes, node);
                    choices.push(index as u32);
                    let lines = lines_of(config, &hooks, &choices);
                    list.push(Counterexample {
                        found: f,
                        choices,
                        lines,
                    });
                }
            }
            if bad || !visited.insert(next.canonical_key(&symmetry)) {
                continue;
            }
            report.distinct_states += 1;
            if report.distinct_states as usize >= config.states_max {
                report.truncated = true;
                queue.clear();
                break;
            }
            nodes.push(Node {
                parent: node,
                choice: index as u32,
            });
            queue.push_back((next, nodes.len() as u32 - 1, depth + 1));
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// Why a path could not be replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    /// The depth at which the choice was out of range.
    pub depth: usize,
    /// The choice.
    pub choice: u32,
    /// How many steps were enabled.
    pub enabled: usize,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {}: choice {} but only {} steps are enabled (a path from another world or version?)",
            self.depth + 1,
            self.choice,
            self.enabled
        )
    }
}

/// Replays `choices` from the initial state: the trace lines and everything
/// the checkers found on the way.
pub fn replay(
    config: &ExploreConfig,
    hooks: Arc<dyn HostHooks>,
    choices: &[u32],
) -> Result<(Vec<String>, Vec<Found>), PathError> {
    walk(config, hooks.as_ref(), choices).map(|(_, _, lines, found)| (lines, found))
}

/// Replays `choices` as a counterexample: the trace lines and the
/// violations on the way (expected findings left out), with a deadlock where
/// the path ends reported as liveness, as [`explore`] reports it.
pub fn violations_along(
    config: &ExploreConfig,
    hooks: Arc<dyn HostHooks>,
    choices: &[u32],
) -> Result<(Vec<String>, Vec<Found>), PathError> {
    let policy = config.policy();
    let (state, symmetry, lines, found) = walk(config, hooks.as_ref(), choices)?;
    let ctx = Ctx {
        config,
        policy: &policy,
        hooks: hooks.as_ref(),
        symmetry: &symmetry,
    };
    let mut violations: Vec<Found> = found.into_iter().filter(|f| !f.expected).collect();
    if state.enabled(&ctx).is_empty() && !state.all_done() {
        violations.push(deadlock(&state));
    }
    Ok((lines, violations))
}

/// What [`walk`] returns: the state reached, the symmetry its histories
/// track, one line per step, and everything the checkers found.
type Walked = (State, Symmetry, Vec<String>, Vec<Found>);

/// Walks `choices` from the initial state.
fn walk(
    config: &ExploreConfig,
    hooks: &dyn HostHooks,
    choices: &[u32],
) -> Result<Walked, PathError> {
    let policy = config.policy();
    let (mut state, symmetry) = initial_state(config, hooks);
    let ctx = Ctx {
        config,
        policy: &policy,
        hooks,
        symmetry: &symmetry,
    };
    let (mut lines, mut all) = (Vec::new(), Vec::new());
    for (depth, &choice) in choices.iter().enumerate() {
        let steps = state.enabled(&ctx);
        let Some(&step) = steps.get(choice as usize) else {
            return Err(PathError {
                depth,
                choice,
                enabled: steps.len(),
            });
        };
        let (line, found) = state.apply(&ctx, step);
        lines.push(line);
        all.extend(found);
    }
    Ok((state, symmetry, lines, all))
}
