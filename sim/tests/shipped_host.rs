//! The simulator with the shipped fs store code as its twin
//! (`--shipped-host`, `sim/src/world/twin.rs`): every store read and
//! write of the world's agents is made again by `rotor_fs::StoreFile` over a
//! simulated disk, and the two must agree.
//!
//! - The shipped code agrees with the store model over a swarm of seeds,
//!   faults and actors included (no violation).
//! - The twin changes nothing: every run's trace is the same with and
//!   without it.
//! - The twin is not blind: under a disk that serves a store's bytes from
//!   before its last replacement (a host that reads a stale copy, B4's
//!   family) the shipped code's answers differ from the model's, and the
//!   run reports G4 with its replay command; under a disk without `flock`
//!   the shipped refresh lock lets in an agent the lock model makes wait,
//!   reported as G8.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rotor_fs::io::{ForwardIo, HeldFileLock, Io, Opened};
use rotor_fs::lock::{HolderMeta, LockWait};
use rotor_kernel::{Mutation, StoreDoc, WriteOutcome};
use rotor_sim::disk::SimDisk;
use rotor_sim::explore::{explore, ExploreConfig};
use rotor_sim::{
    run_seed, sweep, Guarantee, HostHooks, Overrides, RunOptions, Shipped, StopOn, TraceMode,
};

fn twin() -> Overrides {
    Overrides {
        shipped_host: true,
        ..Overrides::default()
    }
}

#[test]
fn the_shipped_store_code_agrees_with_the_store_model_over_a_swarm_g4_g5_g10() {
    let report = sweep(0..1_500, &twin(), &RunOptions::default(), 8, |_| {});
    for failure in &report.failures {
        eprintln!(
            "{}\nreplay: {}",
            failure.first().map(|v| v.to_string()).unwrap_or_default(),
            failure.config.replay_command()
        );
    }
    assert!(report.failures.is_empty());
    assert!(report.stats.rotations > 0);
}

#[test]
fn the_twin_changes_no_draw_and_no_outcome() {
    let hash = RunOptions::default().with_trace(TraceMode::Hash);
    for seed in 0..200u64 {
        let model = run_seed(seed, &Overrides::default(), &hash);
        let both = run_seed(seed, &twin(), &hash);
        assert_eq!(model.trace.hash(), both.trace.hash(), "seed {seed:#x}");
        assert!(
            both.violations.is_empty(),
            "seed {seed:#x}: {:?}",
            both.violations
        );
    }
}

#[test]
fn the_replay_command_names_the_twin() {
    let outcome = run_seed(5, &twin(), &RunOptions::default());
    assert!(outcome.config.shipped_host);
    assert!(
        outcome.config.replay_command().ends_with(" --shipped-host"),
        "{}",
        outcome.config.replay_command()
    );
}

/// The shipped host's code over a disk with one rule broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// Each file is served as it was before its last replacement.
    StaleReads,
    /// Every lock is granted at once, held or not (no `flock`).
    NoFlock,
}

impl HostHooks for Broken {
    fn name(&self) -> &'static str {
        match self {
            Broken::StaleReads => "stale-reads",
            Broken::NoFlock => "no-flock",
        }
    }

    fn twin_io(&self, disk: Arc<SimDisk>) -> Arc<dyn Io> {
        Arc::new(BrokenIo {
            disk,
            broken: *self,
            before: Mutex::default(),
        })
    }
}

/// A lock that was never taken.
#[derive(Debug)]
struct NotLocked;

impl HeldFileLock for NotLocked {}

#[test]
fn a_store_read_from_a_stale_copy_is_found_g4() {
    let options = RunOptions {
        hooks: Arc::new(Broken::StaleReads),
        stop: StopOn::First,
        ..RunOptions::default()
    };
    let found = (0..500).find_map(|seed| {
        let outcome = run_seed(seed, &twin(), &options);
        outcome
            .violations
            .iter()
            .find(|v| v.guarantee == Guarantee::G4)
            .map(|v| (v.clone(), outcome.config.replay_command()))
    });
    let (violation, replay) = found.expect("no G4 in 500 seeds: the twin is blind");
    assert!(violation.detail.contains("shipped fs store"), "{violation}");
    assert!(replay.contains("--shipped-host"), "{replay}");
    eprintln!("{violation}\nreplay: {replay} (with this host)");
}

/// Without `flock` the shipped refresh lock lets an agent of another
/// process in beside the holder: the lock model's waiter is not waiting in
/// the shipped host, reported as G8.
#[test]
fn a_refresh_lock_without_flock_is_found_g8() {
    let options = RunOptions {
        hooks: Arc::new(Broken::NoFlock),
        stop: StopOn::First,
        ..RunOptions::default()
    };
    let overrides = Overrides {
        processes: Some(2),
        ..twin()
    };
    let found = (0..500).find_map(|seed| {
        let outcome = run_seed(seed, &overrides, &options);
        outcome
            .violations
            .iter()
            .find(|v| v.guarantee == Guarantee::G8)
            .map(|v| (v.clone(), outcome.config.replay_command()))
    });
    let (violation, replay) = found.expect("no G8 in 500 seeds: the lock twin is blind");
    assert!(violation.detail.contains("shipped fs lock"), "{violation}");
    eprintln!("{violation}\nreplay: {replay} (with this host)");
}

/// `StaleReads`: remembers, for each path the shipped code renamed over, the bytes it
/// held before, and serves those: the shipped store's next read-modify-write
/// starts from a stale document.
#[derive(Debug)]
struct BrokenIo {
    disk: Arc<SimDisk>,
    broken: Broken,
    before: Mutex<HashMap<PathBuf, Option<Opened>>>,
}

impl ForwardIo for BrokenIo {
    fn inner(&self) -> &dyn Io {
        &*self.disk
    }

    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        if self.broken != Broken::StaleReads {
            return self.disk.read(path);
        }
        if let Some(stale) = self.before.lock().unwrap().get(path) {
            return Ok(stale.clone());
        }
        self.disk.read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // Only the shipped code's own replacements go stale (the twin puts
        // other programs' writes in place with `.twin-tmp` files).
        if from.to_string_lossy().ends_with(".twin-tmp") {
            self.before.lock().unwrap().remove(to);
            return self.disk.rename(from, to);
        }
        let previous = self.disk.read(to)?;
        self.disk.rename(from, to)?;
        self.before
            .lock()
            .unwrap()
            .insert(to.to_path_buf(), previous);
        Ok(())
    }

    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        if self.broken == Broken::NoFlock {
            return Ok(Box::new(NotLocked));
        }
        self.disk.lock_exclusive(path, wait_ms_max, meta)
    }
}

/// A store model that forgets the fence it was asked to write (the
/// explorer's and the simulator's rule for `PutFence`, broken).
#[derive(Debug)]
struct ForgetsFences;

impl HostHooks for ForgetsFences {
    fn name(&self) -> &'static str {
        "forgets fences"
    }

    fn apply(&self, doc: &mut StoreDoc, profile: &str, mutation: &Mutation) -> WriteOutcome {
        if let Mutation::PutFence { .. } = mutation {
            return WriteOutcome::Applied;
        }
        doc.apply(profile, mutation)
    }
}

fn small_world(shipped_host: bool) -> ExploreConfig {
    ExploreConfig {
        agents_per_process: vec![1, 1],
        shipped_host,
        ..ExploreConfig::default()
    }
}

/// The explorer with `--shipped-host`: every store read and write of every
/// reachable state is made again by the shipped fs store code; the shipped
/// host's small world agrees everywhere.
#[test]
fn the_explorer_agrees_with_the_shipped_store_code_in_every_state() {
    let report = explore(&small_world(true), Arc::new(Shipped));
    assert!(!report.truncated);
    assert!(report.distinct_states > 100, "{report}");
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

/// A store model that differs from the shipped code (it drops the fence a
/// refresh writes) is caught by the explorer's twin at that write, as G4
/// with the shipped code named; without `--shipped-host` the same model is
/// caught only later, by what the lost fence breaks.
#[test]
fn the_explorer_twin_catches_a_store_model_that_differs_from_the_shipped_code_g4() {
    let report = explore(&small_world(true), Arc::new(ForgetsFences));
    let twin = report.violations.iter().find(|c| {
        c.found.guarantee == Guarantee::G4 && c.found.detail.contains("shipped fs store")
    });
    let twin =
        twin.unwrap_or_else(|| panic!("the explorer's twin is blind: {:?}", report.violations));
    eprintln!("{twin}");
    let without = explore(&small_world(false), Arc::new(ForgetsFences));
    assert!(
        !without
            .violations
            .iter()
            .any(|c| c.found.detail.contains("shipped fs store")),
        "only the twin names the shipped code"
    );
}

/// A lock model that lets two agents of one process hold the refresh lock
/// together (B3's rule, re-entrant within a process).
#[derive(Debug)]
struct ReentrantLockModel;

impl HostHooks for ReentrantLockModel {
    fn name(&self) -> &'static str {
        "re-entrant lock model"
    }

    fn in_process_exclusion(&self) -> bool {
        false
    }
}

/// The explorer's lock model is checked against the shipped refresh lock
/// (`FsRefreshLock`: the single-flight slot, then `flock`) in every state
/// where an agent waits for a held slot: two agents of one process agree
/// with the shipped lock everywhere, and a model that lets the second one
/// in beside the first is caught at the state where it would, as G8 with
/// the shipped lock named. Without `--shipped-host` only the later double
/// holding is seen, and the shipped lock is not named.
#[test]
fn the_explorer_twin_catches_a_lock_model_that_differs_from_the_shipped_lock_g8() {
    let one_process = |shipped_host| ExploreConfig {
        agents_per_process: vec![2],
        shipped_host,
        ..ExploreConfig::default()
    };
    let agreed = explore(&one_process(true), Arc::new(Shipped));
    assert!(!agreed.truncated);
    assert!(agreed.violations.is_empty(), "{:?}", agreed.violations);

    let report = explore(&one_process(true), Arc::new(ReentrantLockModel));
    let twin = report.violations.iter().find(|c| {
        c.found.guarantee == Guarantee::G8 && c.found.detail.contains("the shipped fs lock refuses")
    });
    let twin = twin
        .unwrap_or_else(|| panic!("the explorer's lock twin is blind: {:?}", report.violations));
    eprintln!("{twin}");
    let without = explore(&one_process(false), Arc::new(ReentrantLockModel));
    assert!(
        without.violated(Guarantee::G8),
        "the model's own check sees the double holding"
    );
    assert!(
        !without
            .violations
            .iter()
            .any(|c| c.found.detail.contains("shipped fs lock")),
        "only the twin names the shipped lock"
    );
}
