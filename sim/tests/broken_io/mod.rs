//! Broken hosts for the disk checks: the real disk with one rule of its
//! use dropped, as a wrapper over the I/O seam (test code only; the
//! shipped code has no switch that turns a bug on).
// Each test binary that includes this module uses some of the hosts.
#![allow(dead_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rotor_fs::io::{DirEntry, FileHandle, HeldFileLock, Io, Meta, Opened};
use rotor_fs::lock::{HolderMeta, LockWait};
use rotor_sim::disk::SimDisk;

/// Which rule of the real file-system use a broken host drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
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
    /// A store's sidecar lock is never taken: read-modify-writes of one
    /// store interleave (B4's family).
    NoStoreLock,
    /// The cross-process refresh lock is never taken: every process walks
    /// into the refresh (B1's family).
    NoRefreshLock,
}

/// A lock that was never taken.
#[derive(Debug)]
struct NotLocked;

impl HeldFileLock for NotLocked {}

/// The real disk with one rule dropped.
#[derive(Debug)]
struct BrokenIo {
    disk: Arc<SimDisk>,
    broken: Broken,
    renamed_into: Mutex<Vec<PathBuf>>,
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
        let refresh_lock = path.to_string_lossy().contains("/locks/");
        let skip = match self.broken {
            Broken::NoStoreLock => !refresh_lock,
            Broken::NoRefreshLock => refresh_lock,
            _ => false,
        };
        if skip {
            return Ok(Box::new(NotLocked));
        }
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

/// The shipped host: the disk itself.
pub fn shipped(disk: Arc<SimDisk>) -> Arc<dyn Io> {
    disk
}

/// A host that breaks `broken`.
pub fn broken(broken: Broken) -> impl Fn(Arc<SimDisk>) -> Arc<dyn Io> + Sync {
    move |disk| {
        Arc::new(BrokenIo {
            disk,
            broken,
            renamed_into: Default::default(),
        })
    }
}
