//! The host conformance suite (`rotor_fs::conformance`) against the fs host,
//! and against broken fs hosts that must fail it. The same suite runs
//! against the simulator's host models (the root package's
//! `tests/conformance_sim.rs`).
//!
//! The broken hosts are wrappers over the real `FsStores` and
//! `FsRefreshLock`, each dropping one rule a host must keep; the suite must
//! stop at the case that checks that rule, naming its guarantee. A suite
//! that passes a host which loses writes, skips the compare-and-swap or
//! lets two participants hold the refresh lock would certify hosts that
//! break G4..G8.
#![cfg(feature = "conformance")]

use std::path::PathBuf;
use std::sync::Arc;

use rotor_fs::conformance::{run_all, Agent, HostFactory, StoreName, PROVIDER};
use rotor_fs::{AgentId, FsRefreshLock, FsStores, Layout, SingleFlight, StoreFile};
use rotor_kernel::driver::{RefreshLock, Stores};
use rotor_kernel::{
    Credential, Expect, LockFailure, LockKey, Mutation, ProfileView, StoreDoc, StoreFault,
    StoreFaultKind, StoreRef, WriteOutcome,
};

/// Each participant gets its own single-flight, as separate processes do,
/// so exclusion between participants comes from `flock` alone.
struct FsFactory {
    temp: Option<tempfile::TempDir>,
}

fn agent_id(agent: Agent) -> AgentId {
    match agent {
        Agent::Main => AgentId::main(),
        Agent::Worker => AgentId::new("worker").unwrap(),
    }
}

impl FsFactory {
    fn root(&self) -> PathBuf {
        self.temp.as_ref().unwrap().path().join("state")
    }

    fn file(&self, store: StoreName) -> StoreFile {
        let agent = match store {
            StoreName::Main => Agent::Main,
            StoreName::Worker => Agent::Worker,
        };
        StoreFile::new(&Layout::new(self.root()), &agent_id(agent), 1_000)
    }
}

impl HostFactory for FsFactory {
    type Stores = FsStores;
    type Lock = FsRefreshLock;

    fn reset(&mut self) {
        self.temp = Some(tempfile::tempdir().unwrap());
        rotor_fs::safe_fs::check_root(&self.root(), true).unwrap();
    }

    fn stores(&mut self, agent: Agent) -> FsStores {
        FsStores::new(&Layout::new(self.root()), &agent_id(agent), 1_000)
    }

    fn lock(&mut self, participant: usize) -> FsRefreshLock {
        FsRefreshLock::new(
            Layout::new(self.root()),
            SingleFlight::new(),
            &format!("p{participant}"),
        )
    }

    fn seed(&mut self, store: StoreName, doc: StoreDoc) {
        self.file(store)
            .update("update", move |current| {
                *current = doc;
                ((), true)
            })
            .unwrap();
    }

    fn snapshot(&mut self, store: StoreName) -> Option<StoreDoc> {
        self.file(store).read_doc().unwrap()
    }
}

#[test]
fn fs_host_passes_the_conformance_suite() {
    let names = run_all(&mut FsFactory { temp: None });
    assert_eq!(
        names.len(),
        rotor_fs::conformance::cases::<FsFactory>().len()
    );
    assert!(names.len() >= 12, "cases went missing: {names:?}");
    println!("conformance cases passed: {names:?}");
}

/// One rule a broken host drops.
#[derive(Clone, Copy, Debug)]
enum Defect {
    /// Every write answers `Applied` and writes nothing (G6).
    LosesWrites,
    /// A write applies its mutation to whatever the store holds, not only
    /// to the entry the kernel read (G5).
    SkipsCompareAndSwap,
    /// A write keeps the profiles and drops the document's `state` (G4).
    DropsState,
    /// A sub-agent's own store is main.
    OwnStoreIsMain,
    /// The refresh lock is granted to everyone (G8).
    LockExcludesNobody,
    /// The in-doubt fence is never written (G7).
    LosesFences,
    /// A sub-agent's mirror into main is dropped (G3).
    LosesMirrors,
    /// A read of a store with no entry returns one anyway.
    InventsEntries,
    /// A read waits for the refresh lock, so a cached token is not served
    /// while a refresh is under way.
    ReadsTakeTheRefreshLock,
    /// A rotation's commit is dropped (G6).
    LosesCommits,
    /// The provider's refusal is not recorded on the entry (G7).
    LosesReauthMarks,
    /// A sub-agent's adoption into its own store is dropped (G2).
    LosesSubAgentAdoptions,
}

struct Broken {
    fs: FsFactory,
    defect: Defect,
}

struct BrokenStores {
    inner: FsStores,
    defect: Defect,
    agent: Agent,
    own: StoreFile,
    main: StoreFile,
    /// The participant's own refresh lock (`ReadsTakeTheRefreshLock`).
    lock: FsRefreshLock,
}

impl Stores for BrokenStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        if let Defect::ReadsTakeTheRefreshLock = self.defect {
            let key = LockKey::new(PROVIDER, profile);
            self.lock.acquire(&key, 50).map_err(|failure| StoreFault {
                kind: StoreFaultKind::LockTimeout,
                detail: format!("the read waited for the refresh lock: {failure:?}"),
            })?;
            self.lock.release(&key);
        }
        let mut view = self.inner.read(store, profile)?;
        if let (Defect::InventsEntries, None) = (self.defect, &view.credential) {
            view.credential = Some(Arc::new(Credential::oauth(PROVIDER, "at-x", "rt-x", 0)));
        }
        Ok(view)
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        match (self.defect, mutation) {
            (Defect::LosesWrites, _)
            | (Defect::LosesFences, Mutation::PutFence { .. })
            | (Defect::LosesMirrors, Mutation::Mirror { .. })
            | (Defect::LosesCommits, Mutation::Commit { .. })
            | (Defect::LosesReauthMarks, Mutation::MarkNeedsReauth { .. }) => {
                return Ok(WriteOutcome::Applied)
            }
            (Defect::LosesSubAgentAdoptions, Mutation::Adopt { .. })
                if self.agent == Agent::Worker && store == StoreRef::Own =>
            {
                return Ok(WriteOutcome::Applied)
            }
            (Defect::SkipsCompareAndSwap, Mutation::Adopt { credential, .. }) => {
                let current = self.inner.read(store, profile)?;
                let unchecked = Mutation::Adopt {
                    expect: Expect::of(current.credential.as_deref()),
                    credential: credential.clone(),
                };
                return self.inner.write(store, profile, &unchecked);
            }
            _ => {}
        }
        let outcome = self.inner.write(store, profile, mutation)?;
        if let Defect::DropsState = self.defect {
            let file = match store {
                StoreRef::Own => &self.own,
                StoreRef::Main => &self.main,
            };
            file.update("drop state", |doc| {
                doc.state = None;
                ((), true)
            })
            .unwrap_or_else(|error| panic!("the broken host's own write failed: {error:?}"));
        }
        Ok(outcome)
    }
}

struct BrokenLock {
    inner: FsRefreshLock,
    defect: Defect,
}

impl RefreshLock for BrokenLock {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        match self.defect {
            Defect::LockExcludesNobody => Ok(()),
            _ => self.inner.acquire(key, wait_ms_max),
        }
    }

    fn release(&mut self, key: &LockKey) {
        if !matches!(self.defect, Defect::LockExcludesNobody) {
            self.inner.release(key);
        }
    }
}

impl HostFactory for Broken {
    type Stores = BrokenStores;
    type Lock = BrokenLock;

    fn reset(&mut self) {
        self.fs.reset();
    }

    fn stores(&mut self, agent: Agent) -> BrokenStores {
        let own = match (self.defect, agent) {
            (Defect::OwnStoreIsMain, _) | (_, Agent::Main) => Agent::Main,
            (_, Agent::Worker) => Agent::Worker,
        };
        let layout = Layout::new(self.fs.root());
        let own_name = match own {
            Agent::Main => StoreName::Main,
            Agent::Worker => StoreName::Worker,
        };
        BrokenStores {
            inner: FsStores::new(&layout, &agent_id(own), 1_000),
            defect: self.defect,
            agent,
            own: self.fs.file(own_name),
            main: self.fs.file(StoreName::Main),
            lock: self.fs.lock(0),
        }
    }

    fn lock(&mut self, participant: usize) -> BrokenLock {
        BrokenLock {
            inner: self.fs.lock(participant),
            defect: self.defect,
        }
    }

    fn seed(&mut self, store: StoreName, doc: StoreDoc) {
        self.fs.seed(store, doc);
    }

    fn snapshot(&mut self, store: StoreName) -> Option<StoreDoc> {
        self.fs.snapshot(store)
    }
}

/// The message the suite stops with on a host with `defect`.
fn failure_of(defect: Defect) -> String {
    let mut factory = Broken {
        fs: FsFactory { temp: None },
        defect,
    };
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_all(&mut factory)))
        .expect_err(&format!("the suite passed a host that {defect:?}"));
    panic
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| format!("{panic:?}"))
}

/// Each broken host fails the suite at the case that checks the rule it
/// drops, and the message names the case and its guarantee.
#[test]
fn the_suite_fails_each_broken_host_at_the_case_for_its_rule() {
    let table = [
        (
            Defect::LosesWrites,
            "write_is_visible_to_the_next_read_g6",
            "G6",
        ),
        (
            Defect::SkipsCompareAndSwap,
            "conflicting_write_changes_nothing_g5",
            "G5",
        ),
        (
            Defect::DropsState,
            "write_preserves_state_and_other_profiles_g4",
            "G4: state lost",
        ),
        (
            Defect::OwnStoreIsMain,
            "own_and_main_are_distinct_stores",
            "a sub-agent's own write reached main",
        ),
        (
            Defect::LockExcludesNobody,
            "refresh_lock_excludes_other_participants_g8",
            "G8",
        ),
        (
            Defect::LosesFences,
            "unknown_outcome_keeps_the_fence_g7",
            "G7",
        ),
        (
            Defect::LosesMirrors,
            "sub_agent_refresh_mirrors_into_main_g3",
            "mirrored",
        ),
        (
            Defect::InventsEntries,
            "read_of_a_missing_store_is_empty",
            "reads as empty",
        ),
        (
            Defect::ReadsTakeTheRefreshLock,
            "cached_token_needs_no_lock_or_call",
            "cached token",
        ),
        (
            Defect::LosesCommits,
            "refresh_presents_once_and_commits_g1_g6",
            "G5/G6",
        ),
        (
            Defect::LosesReauthMarks,
            "reuse_marks_needs_reauth_g7",
            "the refused family is marked",
        ),
        (
            Defect::LosesSubAgentAdoptions,
            "peer_adopts_instead_of_refreshing_g2",
            "the adopted credential is stored",
        ),
    ];
    let mut wrong = Vec::new();
    for (defect, case, says) in table {
        let message = failure_of(defect);
        let expected = format!("conformance case `{case}` failed: ");
        if !message.starts_with(&expected) || !message.contains(says) {
            wrong.push(format!(
                "{defect:?}: expected `{case}` saying {says:?}, got: {message}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
