//! [`ForwardIo`]: an [`Io`] that passes every call to another one, except
//! the calls it chooses to change.
//!
//! Test hosts are built this way: a broken fs host drops one fsync or one
//! lock and forwards the rest; a faulty disk fails one call; the simulator's
//! twin injects a single error. Each names its inner I/O once and overrides
//! only the calls it breaks, so the rest of the seam is never written again
//! (and a call added to [`Io`] reaches every wrapper at once).
//!
//! ```
//! use std::io;
//! use std::path::Path;
//! use rotor_fs::io::{ForwardIo, Io, OsIo};
//!
//! /// The real file system, except that no directory is ever fsynced.
//! #[derive(Debug)]
//! struct NoDirSync;
//!
//! impl ForwardIo for NoDirSync {
//!     fn inner(&self) -> &dyn Io {
//!         &OsIo
//!     }
//!     fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! let io: &dyn Io = &NoDirSync;
//! assert_eq!(io.pid(), std::process::id());
//! assert!(io.sync_dir(Path::new("/no/such/dir")).is_ok());
//! assert!(OsIo.sync_dir(Path::new("/no/such/dir")).is_err());
//! ```

use std::fmt;
use std::io;
use std::path::Path;

use super::{DirEntry, FileHandle, HeldFileLock, Io, Meta, Opened};
use crate::lock::{HolderMeta, LockWait};

/// An [`Io`] made of another one: every method defaults to the same call on
/// [`ForwardIo::inner`]. Implement `inner` and override what differs; the
/// type is then an [`Io`].
pub trait ForwardIo: Send + Sync + fmt::Debug {
    /// The I/O the calls go to unless overridden.
    fn inner(&self) -> &dyn Io;

    /// [`Io::lstat`].
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        self.inner().lstat(path)
    }
    /// [`Io::mkdir`].
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.inner().mkdir(path, mode)
    }
    /// [`Io::read`].
    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        self.inner().read(path)
    }
    /// [`Io::create_new`].
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        self.inner().create_new(path, mode)
    }
    /// [`Io::rename`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner().rename(from, to)
    }
    /// [`Io::sync_dir`].
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner().sync_dir(dir)
    }
    /// [`Io::remove`].
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner().remove(path)
    }
    /// [`Io::list_dir`].
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner().list_dir(dir)
    }
    /// [`Io::lock_exclusive`].
    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        self.inner().lock_exclusive(path, wait_ms_max, meta)
    }
    /// [`Io::process_exists`].
    fn process_exists(&self, pid: u32) -> bool {
        self.inner().process_exists(pid)
    }
    /// [`Io::pid`].
    fn pid(&self) -> u32 {
        self.inner().pid()
    }
    /// [`Io::euid`].
    fn euid(&self) -> u32 {
        self.inner().euid()
    }
}

impl<T: ForwardIo> Io for T {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        ForwardIo::lstat(self, path)
    }
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        ForwardIo::mkdir(self, path, mode)
    }
    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        ForwardIo::read(self, path)
    }
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        ForwardIo::create_new(self, path, mode)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        ForwardIo::rename(self, from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        ForwardIo::sync_dir(self, dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        ForwardIo::remove(self, path)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        ForwardIo::list_dir(self, dir)
    }
    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        ForwardIo::lock_exclusive(self, path, wait_ms_max, meta)
    }
    fn process_exists(&self, pid: u32) -> bool {
        ForwardIo::process_exists(self, pid)
    }
    fn pid(&self) -> u32 {
        ForwardIo::pid(self)
    }
    fn euid(&self) -> u32 {
        ForwardIo::euid(self)
    }
}
