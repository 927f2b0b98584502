//! Every crash point of a store write, checked against G6 on the shipped
//! store code.
//!
//! The write under test is `rotor_fs::store::StoreFile::apply` (the one door
//! every rotor writer goes through: store lock, read, the kernel's
//! `StoreDoc::apply`, temp file, fsync, rename, directory fsync) running on
//! a [`SimDisk`] through an [`Io`] the caller builds: the disk itself for the
//! shipped host, or a test's wrapper that breaks one rule of it.
//!
//! For each [`Scenario`], a dry run counts the write's calls; then for
//! every call number and every [`DiskFault`], a fresh disk is prepared, the
//! fault planned at that call, the write run, the machine rebooted, and the
//! store read back with the shipped read path over the plain disk. G6 says:
//!
//! - the store is parseable after any fault, and holds either the old or the
//!   new credential (atomic always);
//! - a write that returned `Ok` is durable: after a power loss that follows
//!   it, the store holds the new credential (durable before visible).
//!
//! A [`Finding`] names G6 and prints the command that replays it.

use core::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rotor_fs::io::Io;
use rotor_fs::{AgentId, Layout, StoreFile};
use rotor_kernel::{Credential, Mutation, StoreFaultKind, WriteOutcome};

use super::{DiskFault, FaultPlan, SimDisk};
use crate::guarantee::Guarantee;

/// The state directory every scenario uses (its parent does not exist yet).
pub const STATE_DIR: &str = "/home/agent/state";
const PROFILE: &str = "acme:default";
const STORE_LOCK_WAIT_MS: u64 = 1_000;

/// Which write is crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// The first login of a fresh machine: the state directory, the agent's
    /// directories and the store are all created by the write.
    FirstWrite,
    /// A rotation replaces a durable store.
    Replace,
    /// A sub-agent's first write, beside a durable main store.
    SubAgentFirstWrite,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 3] = [
        Scenario::FirstWrite,
        Scenario::Replace,
        Scenario::SubAgentFirstWrite,
    ];

    /// The scenario's name (as `ROTOR_DISK_SCENARIO` takes it).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FirstWrite => "first-write",
            Scenario::Replace => "replace",
            Scenario::SubAgentFirstWrite => "sub-agent-first-write",
        }
    }

    fn agent(self) -> AgentId {
        match self {
            Scenario::SubAgentFirstWrite => AgentId::new("worker-1").expect("a valid agent id"),
            _ => AgentId::main(),
        }
    }

    /// The access token the store holds before the write, if any.
    fn old_access(self) -> Option<&'static str> {
        match self {
            Scenario::Replace => Some("at-old"),
            _ => None,
        }
    }
}

/// A G6 violation at one crash point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Always [`Guarantee::G6`] today.
    pub guarantee: Guarantee,
    /// The write that was crashed.
    pub scenario: Scenario,
    /// The fault and its call number; `None` when the fault came after the
    /// write returned (a power loss right after it).
    pub plan: Option<FaultPlan>,
    /// What was wrong.
    pub detail: String,
    /// The test binary that found it (for the replay command).
    pub test_name: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = match self.plan {
            Some(plan) => format!("{} at call {}", plan.fault, plan.at_call),
            None => "power loss right after the write returned".into(),
        };
        let fault = match self.plan {
            Some(plan) => format!("{}@{}", plan.fault, plan.at_call),
            None => "after".into(),
        };
        write!(
            f,
            "{} {} violated: {} write, {at}: {}\n  replay: ROTOR_DISK_SCENARIO={} ROTOR_DISK_FAULT={fault} \
             cargo test -p rotor-sim --test disk_crash_points {} -- --exact --nocapture",
            self.guarantee,
            self.guarantee.title(),
            self.scenario.name(),
            self.detail,
            self.scenario.name(),
            self.test_name,
        )
    }
}

/// Builds the I/O the write runs on, over a fresh disk.
pub type MakeIo<'a> = &'a dyn Fn(Arc<SimDisk>) -> Arc<dyn Io>;

fn layout() -> Layout {
    Layout::new(PathBuf::from(STATE_DIR))
}

fn credential(access: &str) -> Credential {
    Credential::oauth("acme", access, format!("rt-{access}"), 4_000_000_000_000)
}

/// A disk prepared for `scenario`: what exists before the write, durable.
fn prepare(scenario: Scenario) -> Arc<SimDisk> {
    let disk = Arc::new(SimDisk::new());
    let seed = |agent: &AgentId, access: &str| {
        let store = StoreFile::with_io(disk.clone(), &layout(), agent, STORE_LOCK_WAIT_MS);
        let login = Mutation::Login {
            credential: credential(access).into(),
        };
        store.apply(PROFILE, &login).expect("preparing the disk");
    };
    match scenario {
        Scenario::FirstWrite => {}
        Scenario::Replace => seed(&AgentId::main(), "at-old"),
        Scenario::SubAgentFirstWrite => seed(&AgentId::main(), "at-main"),
    }
    // Whatever the preparing write left in the cache is made durable, so a
    // finding is about the write under test only.
    disk.sync_everything();
    disk
}

/// The write under test, through `io`.
fn write(scenario: Scenario, io: Arc<dyn Io>) -> Result<WriteOutcome, rotor_kernel::StoreFault> {
    let store = StoreFile::with_io(io, &layout(), &scenario.agent(), STORE_LOCK_WAIT_MS);
    store.apply(
        PROFILE,
        &Mutation::Login {
            credential: credential("at-new").into(),
        },
    )
}

/// What the store holds, read with the shipped read path over the plain
/// disk: `Ok(None)` when there is no credential.
fn held(scenario: Scenario, disk: &Arc<SimDisk>) -> Result<Option<String>, String> {
    let store = StoreFile::with_io(
        disk.clone(),
        &layout(),
        &scenario.agent(),
        STORE_LOCK_WAIT_MS,
    );
    match store.read_doc() {
        Ok(doc) => Ok(doc
            .and_then(|doc| doc.profiles.get(PROFILE).cloned())
            .and_then(|credential| credential.access.map(|a| a.expose().to_owned()))),
        Err(fault) if fault.kind == StoreFaultKind::Corrupt => {
            Err(format!("the store is not parseable: {}", fault.detail))
        }
        Err(fault) => Err(format!("the store cannot be read: {}", fault.detail)),
    }
}

/// Judges what the store holds after a fault: old or new, parseable, and
/// new if the write said it was done.
fn judge(
    scenario: Scenario,
    disk: &Arc<SimDisk>,
    returned_ok: bool,
    when: &str,
) -> Result<(), String> {
    let held = held(scenario, disk).map_err(|e| format!("{when}: {e}"))?;
    let old = scenario.old_access();
    let is_new = held.as_deref() == Some("at-new");
    let is_old = held.as_deref() == old;
    if returned_ok && !is_new {
        return Err(format!(
            "{when}: the write returned Ok, but the store holds {} (files: {})",
            describe(held.as_deref()),
            paths(disk)
        ));
    }
    if !is_new && !is_old {
        return Err(format!(
            "{when}: the store holds {}, neither the old ({}) nor the new credential",
            describe(held.as_deref()),
            describe(old)
        ));
    }
    Ok(())
}

fn describe(access: Option<&str>) -> String {
    access.map_or("no credential".into(), |a| format!("{a:?}"))
}

fn paths(disk: &SimDisk) -> String {
    let list: Vec<String> = disk
        .visible_paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    list.join(", ")
}

/// Runs one crash point; `None` plan means: no fault during the write, a
/// power loss (torn or not) right after it.
fn run_point(
    scenario: Scenario,
    make_io: MakeIo<'_>,
    plan: Option<FaultPlan>,
    torn_after: bool,
) -> Result<(), String> {
    let disk = prepare(scenario);
    let start = disk.calls();
    if let Some(plan) = plan {
        disk.plan(FaultPlan {
            at_call: start + plan.at_call,
            fault: plan.fault,
        });
    }
    let result = write(scenario, make_io(disk.clone()));
    let returned_ok = result.is_ok();
    if let Err(fault) = &result {
        // G10 rides along: a failed write is a typed fault naming a path.
        if !fault.detail.contains('/') {
            return Err(format!(
                "the write failed with a fault that names no path: {}",
                fault.detail
            ));
        }
    }
    match plan {
        Some(plan) if plan.fault.is_power_loss() => {
            disk.reboot();
            judge(scenario, &disk, returned_ok, "after the power loss")
        }
        Some(_) => {
            disk.reboot();
            judge(scenario, &disk, returned_ok, "after the failed call")?;
            disk.lose_power(false);
            judge(scenario, &disk, returned_ok, "after a later power loss")
        }
        None => {
            disk.lose_power(torn_after);
            judge(scenario, &disk, returned_ok, "after the power loss")
        }
    }
}

/// How many calls the write makes on a fault-free disk.
pub fn calls_of_write(scenario: Scenario, make_io: MakeIo<'_>) -> u64 {
    let disk = prepare(scenario);
    let start = disk.calls();
    write(scenario, make_io(disk.clone())).expect("the fault-free write succeeds");
    disk.calls() - start
}

/// Which crash points to run: all of them, or the one that
/// `ROTOR_DISK_SCENARIO` and `ROTOR_DISK_FAULT` (`<fault>@<call>` or
/// `after`) name.
#[derive(Clone, Debug, Default)]
pub struct Only {
    scenario: Option<String>,
    fault: Option<String>,
}

impl Only {
    /// Reads `ROTOR_DISK_SCENARIO` and `ROTOR_DISK_FAULT`.
    pub fn from_env() -> Only {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Only::new(
            var("ROTOR_DISK_SCENARIO").as_deref(),
            var("ROTOR_DISK_FAULT").as_deref(),
        )
    }

    /// The points of one scenario (a [`Scenario::name`]) and one fault
    /// (`<fault>@<call>`, e.g. `power-loss@3`, or `after`); `None` is all.
    pub fn new(scenario: Option<&str>, fault: Option<&str>) -> Only {
        Only {
            scenario: scenario.map(str::to_owned),
            fault: fault.map(str::to_owned),
        }
    }

    fn wants(&self, scenario: Scenario, plan: Option<FaultPlan>) -> bool {
        let fault = match plan {
            Some(plan) => format!("{}@{}", plan.fault, plan.at_call),
            None => "after".into(),
        };
        self.wants_named(scenario.name(), &fault)
    }

    /// Whether the point named `scenario` / `fault` is selected.
    pub fn wants_named(&self, scenario: &str, fault: &str) -> bool {
        self.scenario.as_deref().is_none_or(|s| s == scenario)
            && self.fault.as_deref().is_none_or(|f| f == fault)
    }
}

/// Runs every crash point of every scenario over the I/O `make_io` builds
/// and returns the G6 findings (none for the shipped host).
pub fn check_store_writes(make_io: MakeIo<'_>, only: &Only, test_name: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for scenario in Scenario::ALL {
        let calls = calls_of_write(scenario, make_io);
        let mut points: Vec<(Option<FaultPlan>, bool)> = vec![(None, false), (None, true)];
        for at_call in 0..calls {
            for fault in DiskFault::ALL {
                points.push((Some(FaultPlan { at_call, fault }), false));
            }
        }
        for (plan, torn_after) in points {
            if !only.wants(scenario, plan) {
                continue;
            }
            if let Err(detail) = run_point(scenario, make_io, plan, torn_after) {
                findings.push(Finding {
                    guarantee: Guarantee::G6,
                    scenario,
                    plan,
                    detail,
                    test_name: test_name.to_owned(),
                });
            }
        }
    }
    findings
}
