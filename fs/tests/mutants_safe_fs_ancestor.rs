//! A test written for a mutant `cargo mutants` found alive in
//! `fs/src/safe_fs.rs`'s `create_dir_all_on` even with
//! `fs/tests/mutants_safe_fs.rs` (docs/mutants.md): when making a missing
//! ancestor of the state directory fails, the error names that ancestor and
//! its cause (a full disk), not a later, misleading "no such file" about the
//! state directory itself (G10: which file, and why).

use std::io;
use std::path::{Path, PathBuf};

use rotor_fs::io::{DirEntry, FileHandle, HeldFileLock, Io, Meta, Opened, OsIo};
use rotor_fs::lock::{HolderMeta, LockWait};
use rotor_fs::safe_fs::check_root_on;

/// The real file system, where `mkdir` of one path fails with a full disk.
#[derive(Debug)]
struct FullDiskAt(PathBuf);

impl Io for FullDiskAt {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        OsIo.lstat(path)
    }
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        if path == self.0 {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        OsIo.mkdir(path, mode)
    }
    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        OsIo.read(path)
    }
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        OsIo.create_new(path, mode)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsIo.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsIo.sync_dir(dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        OsIo.remove(path)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        OsIo.list_dir(dir)
    }
    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        OsIo.lock_exclusive(path, wait_ms_max, meta)
    }
    fn process_exists(&self, pid: u32) -> bool {
        OsIo.process_exists(pid)
    }
    fn pid(&self) -> u32 {
        OsIo.pid()
    }
    fn euid(&self) -> u32 {
        OsIo.euid()
    }
}

#[test]
fn a_failed_ancestor_is_named_with_its_cause_g10() {
    let dir = tempfile::tempdir().unwrap();
    let ancestor = dir.path().join("home");
    let root = ancestor.join("state");
    let fault = check_root_on(&FullDiskAt(ancestor.clone()), &root, true).unwrap_err();
    let expected = format!(
        "creating {}: {}",
        ancestor.display(),
        io::Error::from(io::ErrorKind::StorageFull)
    );
    assert_eq!(fault.detail, expected);
    assert!(!ancestor.exists());
}
