//! Broken hosts for the disk checks: the real disk with one rule of its
//! use dropped, as a wrapper over the I/O seam, and one broken endpoint
//! (B9) for the disk world (test code only; the shipped code has no switch
//! that turns a bug on).
// Each test binary that includes this module uses some of the hosts.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rotor_fs::io::{FileHandle, ForwardIo, HeldFileLock, Io, Meta, Opened};
use rotor_fs::lock::{HolderMeta, LockWait};
use rotor_fs::{AgentId, Layout, StoreFile};
use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{Credential, EndpointError, StoreDoc, TokenGrant, Transport};
use rotor_sim::disk::world::WorldEndpoint;
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
    /// The refresh lock is held per process and path, as POSIX record
    /// locks (`fcntl`) are, not per open file description as `flock` is: a
    /// second `Rotor` of the holder's process "re-acquires" it at once and
    /// walks through, and the first release of either frees it (B3).
    ReentrantRefreshLock,
    /// A sub-agent's mirror into main lands after its refresh lock is
    /// released: its write of main's store that changes the credential is
    /// held back and made, as a read-modify-write under main's store lock, only once
    /// the refresh lock is gone (B6).
    MirrorAfterRelease,
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
    /// `ReentrantRefreshLock`: the refresh locks held, per path and process,
    /// shared by every `Io` the host builds (one per `Rotor`).
    per_process: Arc<Mutex<PerProcess>>,
    /// `MirrorAfterRelease`: this process's refresh and what it holds back.
    mirror: Arc<Mutex<Mirror>>,
}

/// Refresh locks held per (path, pid), each with the generation of its
/// taking: a later release of an older generation frees nothing.
#[derive(Debug, Default)]
struct PerProcess {
    held: HashMap<(PathBuf, u32), (u64, Box<dyn HeldFileLock>)>,
    generation: u64,
}

/// A grant of a per-process refresh lock; the first one dropped frees it.
#[derive(Debug)]
struct ProcessLockGrant {
    per_process: Arc<Mutex<PerProcess>>,
    key: (PathBuf, u32),
    generation: u64,
}

impl HeldFileLock for ProcessLockGrant {}

impl Drop for ProcessLockGrant {
    fn drop(&mut self) {
        let mut per_process = self.per_process.lock().unwrap();
        let taken = per_process.held.get(&self.key).map(|(g, _)| *g);
        // fcntl semantics: whichever holder unlocks, the process's lock is
        // gone; a grant of an earlier generation was already freed.
        if taken == Some(self.generation) {
            let _freed = per_process.held.remove(&self.key);
        }
    }
}

/// One process's refresh, as `MirrorAfterRelease` sees it.
#[derive(Debug, Default)]
struct Mirror {
    /// The refresh lock is held.
    holding: bool,
    /// The process looks at a sub-agent's directory: it is a sub-agent, whose
    /// writes of main are fences and mirrors (a main agent's are its own
    /// fences and commits, left alone).
    sub_agent: bool,
    /// The mirror held back: main's store document as the mirror wrote it.
    held_back: Option<(PathBuf, StoreDoc)>,
}

/// The refresh lock of `MirrorAfterRelease`: releasing it makes the mirror
/// that was held back.
#[derive(Debug)]
struct ReleaseThenMirror {
    inner: Option<Box<dyn HeldFileLock>>,
    disk: Arc<SimDisk>,
    mirror: Arc<Mutex<Mirror>>,
}

impl HeldFileLock for ReleaseThenMirror {}

impl Drop for ReleaseThenMirror {
    fn drop(&mut self) {
        // Release first: from here another process may take the lock and
        // read main before the rotation is there.
        drop(self.inner.take());
        let held_back = {
            let mut mirror = self.mirror.lock().unwrap();
            mirror.holding = false;
            mirror.held_back.take()
        };
        let Some((main_path, doc)) = held_back else {
            return;
        };
        // `<root>/agents/main/auth-profiles.json`.
        let Some(root) = main_path.ancestors().nth(3) else {
            return;
        };
        let store = StoreFile::with_io(
            self.disk.clone(),
            &Layout::new(root),
            &AgentId::main(),
            10_000,
        );
        // The mirror, late: the rotated profile and main's fences as the
        // mirror left them, over whatever main holds now. A failure (the
        // process was killed meanwhile) loses the mirror, as a crash would.
        let _ = store.update("mirror-after-release", |current| {
            current.profiles = doc.profiles.clone();
            current.fences = doc.fences.clone();
            ((), true)
        });
    }
}

fn is_main_store(path: &Path) -> bool {
    path.ends_with("agents/main/auth-profiles.json")
}

/// A path in the directory of an agent other than main (`agents/<id>`, or
/// a file in it): a sub-agent looks there first, even when its own store
/// does not exist yet.
fn is_sub_agent_path(path: &Path) -> bool {
    let dir = if path.ends_with("auth-profiles.json") {
        path.parent()
    } else {
        Some(path)
    };
    dir.is_some_and(|dir| {
        dir.parent()
            .is_some_and(|parent| parent.ends_with("agents"))
            && !dir.ends_with("main")
    })
}

fn is_refresh_lock(path: &Path) -> bool {
    path.to_string_lossy().contains("/locks/")
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

impl ForwardIo for BrokenIo {
    fn inner(&self) -> &dyn Io {
        &*self.disk
    }

    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        if self.broken == Broken::MirrorAfterRelease && is_sub_agent_path(path) {
            self.mirror.lock().unwrap().sub_agent = true;
        }
        self.disk.lstat(path)
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
        if self.broken == Broken::MirrorAfterRelease {
            let (holding, sub_agent) = {
                let mirror = self.mirror.lock().unwrap();
                (mirror.holding, mirror.sub_agent)
            };
            if holding && sub_agent && is_main_store(to) {
                // Under the refresh lock a sub-agent writes main twice: its
                // fence (fences only) and its mirror (the rotated
                // credential). The mirror is the one that changes a
                // profile: keep its document, drop its temp file, and tell
                // the host it landed.
                let Some(Opened::File(bytes)) = self.disk.read(from)? else {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                };
                let doc = StoreDoc::from_json(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let current = match self.disk.read(to)? {
                    Some(Opened::File(bytes)) => StoreDoc::from_json(&bytes).ok(),
                    _ => None,
                };
                if current.is_some_and(|current| current.profiles != doc.profiles) {
                    self.disk.remove(from)?;
                    self.mirror.lock().unwrap().held_back = Some((to.to_path_buf(), doc));
                    return Ok(());
                }
            }
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

    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        let refresh_lock = is_refresh_lock(path);
        let skip = match self.broken {
            Broken::NoStoreLock => !refresh_lock,
            Broken::NoRefreshLock => refresh_lock,
            _ => false,
        };
        if skip {
            return Ok(Box::new(NotLocked));
        }
        match self.broken {
            Broken::ReentrantRefreshLock if refresh_lock => {
                self.lock_per_process(path, wait_ms_max, meta)
            }
            Broken::MirrorAfterRelease if refresh_lock => {
                let inner = self.disk.lock_exclusive(path, wait_ms_max, meta)?;
                self.mirror.lock().unwrap().holding = true;
                Ok(Box::new(ReleaseThenMirror {
                    inner: Some(inner),
                    disk: self.disk.clone(),
                    mirror: self.mirror.clone(),
                }))
            }
            _ => self.disk.lock_exclusive(path, wait_ms_max, meta),
        }
    }
}

impl BrokenIo {
    /// `ReentrantRefreshLock`: a lock the caller's process already holds is
    /// granted at once; otherwise the real lock is waited for (never while
    /// holding the table, which would stop the scheduler's other threads).
    fn lock_per_process(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        let key = (path.to_path_buf(), self.disk.pid());
        let grant = |generation| {
            Box::new(ProcessLockGrant {
                per_process: self.per_process.clone(),
                key: key.clone(),
                generation,
            })
        };
        let held = self.per_process.lock().unwrap().held.get(&key).map(|h| h.0);
        if let Some(generation) = held {
            return Ok(grant(generation));
        }
        let inner = self.disk.lock_exclusive(path, wait_ms_max, meta)?;
        let mut per_process = self.per_process.lock().unwrap();
        per_process.generation += 1;
        let generation = per_process.generation;
        per_process.held.insert(key.clone(), (generation, inner));
        Ok(grant(generation))
    }
}

/// The shipped host: the disk itself.
pub fn shipped(disk: Arc<SimDisk>) -> Arc<dyn Io> {
    disk
}

/// A host that breaks `broken`.
pub fn broken(broken: Broken) -> impl Fn(Arc<SimDisk>) -> Arc<dyn Io> + Sync {
    let per_process = Arc::new(Mutex::new(PerProcess::default()));
    move |disk| {
        Arc::new(BrokenIo {
            disk,
            broken,
            renamed_into: Default::default(),
            per_process: per_process.clone(),
            mirror: Default::default(),
        })
    }
}

/// B9's endpoint: it stops waiting at once and reports a timeout after
/// the request was sent, but the request goes on. It reaches the provider
/// later, after the resolve ended and the refresh lock was released
/// (modelled as delivery when the endpoint is dropped, on the presenting
/// process's thread, after a switch point); its reply is lost. The kernel
/// classifies the timeout as an unknown outcome and keeps its fence (G7),
/// so the next holder stops at it: what is broken is the lock released
/// while the call was in flight (G8).
pub struct ReleasesWhileInFlight {
    inner: WorldEndpoint,
    in_flight: Vec<Credential>,
}

impl TokenEndpoint for ReleasesWhileInFlight {
    fn refresh(
        &mut self,
        credential: &Credential,
        _deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        self.in_flight.push(credential.clone());
        Err(EndpointError::transport(Transport::TimedOutAfterSend))
    }
}

impl Drop for ReleasesWhileInFlight {
    fn drop(&mut self) {
        for credential in std::mem::take(&mut self.in_flight) {
            let _lost_reply = self.inner.refresh(&credential, 0);
        }
    }
}

/// Wraps a world's endpoint in [`ReleasesWhileInFlight`].
pub fn releases_while_in_flight(inner: WorldEndpoint) -> Box<dyn TokenEndpoint> {
    Box::new(ReleasesWhileInFlight {
        inner,
        in_flight: Vec::new(),
    })
}
