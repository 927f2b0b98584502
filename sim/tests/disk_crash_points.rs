//! G6 on the shipped store code: every crash point of a store write, on the
//! simulated disk (`rotor_sim::disk`), with power loss, torn writes, EIO and
//! ENOSPC at every call.
//!
//! The shipped host must show nothing. Each broken host below is the real
//! `rotor-fs` store code over a wrapper of the I/O seam that drops one rule
//! the host keeps (test code only; the shipped code has no switch): each
//! must be reported as a G6 violation with its replay command. Together they
//! show that every fsync and the temp-file-then-rename order are needed,
//! and that the checker sees their absence.
//!
//! Replay one crash point: the command a finding prints, e.g.
//! `ROTOR_DISK_SCENARIO=replace ROTOR_DISK_FAULT=power-loss@9 cargo test -p rotor-sim --test disk_crash_points shipped_store_writes_survive_every_crash_point_g6 -- --exact --nocapture`.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rotor_fs::io::{DirEntry, FileHandle, HeldFileLock, Io, Meta, Opened};
use rotor_fs::lock::{HolderMeta, LockWait};
use rotor_sim::disk::check::{calls_of_write, check_store_writes, Finding, Only, Scenario};
use rotor_sim::disk::SimDisk;
use rotor_sim::Guarantee;

/// Which rule of the real file-system use a broken host drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// The temp file's data is never fsynced before the rename.
    NoFileSync,
    /// The directory is never fsynced after the rename (or after a mkdir).
    NoDirSync,
    /// Only the directory fsync after a new directory is dropped: the fsync
    /// of a rename's directory is kept (the directory is told apart by
    /// whether any file was renamed into it since its last sync).
    NoDirSyncAfterMkdir,
    /// The store is rewritten in place: the "rename" copies the temp file's
    /// bytes into the target's own file, unsynced.
    WriteInPlace,
}

/// The real disk with one rule dropped.
#[derive(Debug)]
struct BrokenIo {
    disk: Arc<SimDisk>,
    broken: Broken,
    renamed_into: std::sync::Mutex<Vec<std::path::PathBuf>>,
}

struct UnsyncedFile(Box<dyn FileHandle>);

impl FileHandle for UnsyncedFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Io for BrokenIo {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        self.disk.lstat(path)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.disk.mkdir(path, mode)
    }

    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        self.disk.read(path)
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let file = self.disk.create_new(path, mode)?;
        match self.broken {
            Broken::NoFileSync => Ok(Box::new(UnsyncedFile(file))),
            _ => Ok(file),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if let Some(dir) = to.parent() {
            self.renamed_into.lock().unwrap().push(dir.to_path_buf());
        }
        if self.broken != Broken::WriteInPlace {
            return self.disk.rename(from, to);
        }
        let Some(Opened::File(bytes)) = self.disk.read(from)? else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        self.disk.remove(from)?;
        // Truncate and rewrite the target's own file, never fsynced: the
        // simulated disk's "remove, then create" stands for O_TRUNC here.
        match self.disk.remove(to) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let mut file = self.disk.create_new(to, 0o600)?;
        file.write_all(&bytes)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        match self.broken {
            Broken::NoDirSync => Ok(()),
            Broken::NoDirSyncAfterMkdir => {
                let mut renamed = self.renamed_into.lock().unwrap();
                if renamed.iter().any(|d| d == dir) {
                    renamed.retain(|d| d != dir);
                    self.disk.sync_dir(dir)
                } else {
                    Ok(())
                }
            }
            _ => self.disk.sync_dir(dir),
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.disk.remove(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        self.disk.list_dir(dir)
    }

    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        self.disk.lock_exclusive(path, wait_ms_max, meta)
    }

    fn process_exists(&self, pid: u32) -> bool {
        self.disk.process_exists(pid)
    }

    fn pid(&self) -> u32 {
        self.disk.pid()
    }

    fn euid(&self) -> u32 {
        self.disk.euid()
    }
}

fn shipped(disk: Arc<SimDisk>) -> Arc<dyn Io> {
    disk
}

fn broken(broken: Broken) -> impl Fn(Arc<SimDisk>) -> Arc<dyn Io> {
    move |disk| {
        Arc::new(BrokenIo {
            disk,
            broken,
            renamed_into: Default::default(),
        })
    }
}

fn report(findings: &[Finding]) -> String {
    findings
        .iter()
        .take(5)
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shipped_store_writes_survive_every_crash_point_g6() {
    let findings = check_store_writes(
        &shipped,
        &Only::from_env(),
        "shipped_store_writes_survive_every_crash_point_g6",
    );
    assert!(
        findings.is_empty(),
        "{} crash points broke G6 on the shipped store code:\n{}",
        findings.len(),
        report(&findings)
    );
}

#[test]
fn every_scenario_has_crash_points_worth_checking() {
    // A write that made no calls would make the sweep vacuous.
    for scenario in Scenario::ALL {
        let calls = calls_of_write(scenario, &shipped);
        assert!(calls >= 8, "{scenario:?}: only {calls} calls");
    }
}

fn expect_g6(which: Broken, name: &str, scenario: Scenario) {
    let findings = check_store_writes(&broken(which), &Only::default(), name);
    assert!(
        findings.iter().any(|f| f.scenario == scenario),
        "{which:?}: the checker did not report the broken host in {scenario:?}; findings:\n{}",
        report(&findings)
    );
    for finding in &findings {
        assert_eq!(finding.guarantee, Guarantee::G6);
        let text = finding.to_string();
        assert!(text.contains("replay: ROTOR_DISK_SCENARIO="), "{text}");
    }
    eprintln!(
        "{which:?}: {} findings, e.g.\n{}",
        findings.len(),
        report(&findings[..1])
    );
}

#[test]
fn a_host_that_skips_the_file_fsync_is_caught_g6() {
    expect_g6(
        Broken::NoFileSync,
        "a_host_that_skips_the_file_fsync_is_caught_g6",
        Scenario::Replace,
    );
}

#[test]
fn a_host_that_skips_the_directory_fsync_is_caught_g6() {
    expect_g6(
        Broken::NoDirSync,
        "a_host_that_skips_the_directory_fsync_is_caught_g6",
        Scenario::Replace,
    );
}

#[test]
fn a_host_that_does_not_fsync_new_directories_is_caught_g6() {
    expect_g6(
        Broken::NoDirSyncAfterMkdir,
        "a_host_that_does_not_fsync_new_directories_is_caught_g6",
        Scenario::FirstWrite,
    );
    expect_g6(
        Broken::NoDirSyncAfterMkdir,
        "a_host_that_does_not_fsync_new_directories_is_caught_g6",
        Scenario::SubAgentFirstWrite,
    );
}

#[test]
fn a_host_that_writes_in_place_is_caught_g6() {
    expect_g6(
        Broken::WriteInPlace,
        "a_host_that_writes_in_place_is_caught_g6",
        Scenario::Replace,
    );
}

#[test]
fn a_replayed_crash_point_runs_that_point_alone() {
    // What the replay command's variables select: one point, or the two
    // "power loss right after the write" points.
    let calls = calls_of_write(Scenario::Replace, &shipped);
    assert!(calls > 3);
    let before_rename = Only::new(Some("replace"), Some("power-loss@3"));
    let findings = check_store_writes(&broken(Broken::NoDirSync), &before_rename, "replay");
    // Call 3 of the replace write comes before the rename: a host without
    // directory fsyncs loses nothing there.
    assert!(findings.is_empty(), "{}", report(&findings));
    let after = Only::new(Some("replace"), Some("after"));
    let findings = check_store_writes(&broken(Broken::NoDirSync), &after, "replay");
    assert!(!findings.is_empty());
    assert!(findings
        .iter()
        .all(|f| f.plan.is_none() && f.scenario == Scenario::Replace));
}
