//! The I/O seam under the fs host: every file, lock, clock and process call
//! that the store and write-path code makes goes through [`Io`].
//!
//! [`OsIo`] is the real thing (no-follow opens, `fsync`, `rename`, `flock`).
//! A simulated implementation with the failure model of a real file system
//! (writes cached until fsynced, a rename durable only after its directory is
//! fsynced, power loss dropping what is not durable, EIO and ENOSPC on any
//! call) lives in `rotor-sim` (`rotor_sim::disk`), so the checkers run the
//! store code users run, with only the I/O beneath it swapped
//! (docs/SPEC.md §8; the FoundationDB way).
//!
//! The seam is narrow on purpose: paths in, bytes and metadata out. Policy
//! (what counts as unsafe, when to fsync, what to do with a corrupt file)
//! stays above it, in [`crate::safe_fs`] and [`crate::store`], where it is
//! written once for both implementations.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::lock::{self, HolderMeta, LockWait};

mod forward;
pub use forward::ForwardIo;

/// What a path names, as `lstat` sees it (links are not followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (fifo, socket, device).
    Other,
}

/// The metadata rotor's safety checks need (G9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// What the path names.
    pub kind: Kind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// The owner's uid.
    pub uid: u32,
}

/// What [`Io::read`] found at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// A regular file and all its bytes.
    File(Vec<u8>),
    /// Something that is not a regular file (a directory, a fifo).
    NotRegular,
}

/// One entry of [`Io::list_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name.
    pub name: OsString,
    /// Whether it is a regular file (links are not followed).
    pub is_file: bool,
}

/// A file being written: bytes go to the file system's cache until
/// [`FileHandle::sync`] makes them durable.
pub trait FileHandle: Send {
    /// Writes all of `bytes` at the end of the file.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// `fsync`: the file's data is durable when this returns `Ok`.
    fn sync(&mut self) -> io::Result<()>;
}

/// A held exclusive lock; dropping it releases the lock.
pub trait HeldFileLock: Send + fmt::Debug {}

/// The error a no-follow open gives for a symbolic link (`ELOOP`); an
/// [`Io`] reports a link met where a file is expected with it.
pub fn link_refused() -> io::Error {
    io::Error::from_raw_os_error(libc::ELOOP)
}

/// Every I/O call of the store and write-path code. Calls never follow a
/// symbolic link; a link met where a file is expected is [`link_refused`].
pub trait Io: Send + Sync + fmt::Debug {
    /// `lstat`.
    fn lstat(&self, path: &Path) -> io::Result<Meta>;
    /// Creates one directory with `mode` (its parent must exist).
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Reads a whole file without following a link; `None` when missing.
    fn read(&self, path: &Path) -> io::Result<Option<Opened>>;
    /// Creates a new file (`O_EXCL`, no-follow) with `mode`, open for writing.
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>>;
    /// Renames `from` over `to` (atomic; durable once the directory is synced).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// `fsync` of a directory: its entries (creates, renames, removes) are
    /// durable when this returns `Ok`.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// The entries of a directory.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>>;
    /// Takes an exclusive lock on the lock file at `path` (created 0600,
    /// no-follow, never deleted), waiting at most `wait_ms_max`, and records
    /// `meta` in it for diagnostics.
    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait>;
    /// Whether a process with this pid exists.
    fn process_exists(&self, pid: u32) -> bool;
    /// This process's id.
    fn pid(&self) -> u32;
    /// This process's effective uid.
    fn euid(&self) -> u32;
}

/// The real file system, clock and processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsIo;

fn nofollow(options: &mut OpenOptions) -> &mut OpenOptions {
    options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
}

struct OsFile(File);

impl FileHandle for OsFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

impl HeldFileLock for lock::HeldLock {}

impl Io for OsIo {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        let meta = fs::symlink_metadata(path)?;
        let kind = meta.file_type();
        let kind = if kind.is_symlink() {
            Kind::Symlink
        } else if kind.is_dir() {
            Kind::Dir
        } else if kind.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        Ok(Meta {
            kind,
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
        })
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        DirBuilder::new().mode(mode).create(path)
    }

    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        let mut file = match nofollow(OpenOptions::new().read(true)).open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if !file.metadata()?.is_file() {
            return Ok(Some(Opened::NotRegular));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(Some(Opened::File(bytes)))
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let file =
            nofollow(OpenOptions::new().write(true).create_new(true).mode(mode)).open(path)?;
        Ok(Box::new(OsFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir)?
            .sync_all()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
            entries.push(DirEntry {
                name: entry.file_name(),
                is_file,
            });
        }
        Ok(entries)
    }

    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        let held = lock::lock_exclusive(path, wait_ms_max, meta)?;
        Ok(Box::new(held))
    }

    fn process_exists(&self, pid: u32) -> bool {
        lock::process_exists(pid)
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn euid(&self) -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }
}
