//! A simulated file system with the failure model of a real one, behind the
//! fs host's I/O seam ([`rotor_fs::io::Io`]), so the shipped store and
//! write-path code of `rotor-fs` runs on it unchanged.
//!
//! # The model (strict POSIX, what a careful program may rely on)
//!
//! - A file's bytes live in the cache when written and become durable only
//!   when the file is fsynced ([`FileHandle::sync`]).
//! - A directory entry (a created file, a rename, a removal, a new
//!   directory) becomes durable only when its directory is fsynced
//!   ([`Io::sync_dir`]). A directory created with `mkdir` is itself an entry
//!   of its parent: it survives power loss only once the parent is fsynced.
//! - Power loss ([`DiskFault::PowerLoss`]) drops everything not durable:
//!   entries revert to their durable state (an entry under a directory that
//!   vanished vanishes with it), files to their durable bytes, or, with
//!   [`DiskFault::PowerLossTorn`], to a torn prefix of what was written.
//!   Locks are released (every process died).
//! - `EIO` and `ENOSPC` can be injected at any numbered call (see
//!   [`fault`]); the failing call changes nothing.
//!
//! Locks are exclusive and never wait: the simulated machine runs one call
//! at a time, so a lock held by someone else is a timeout at once.
//!
//! ```
//! use std::path::Path;
//! use std::sync::Arc;
//! use rotor_fs::io::Io;
//! use rotor_sim::disk::{DiskFault, FaultPlan, SimDisk};
//!
//! let disk = Arc::new(SimDisk::new());
//! disk.mkdir(Path::new("/d"), 0o700).unwrap();
//! let mut file = disk.create_new(Path::new("/d/f"), 0o600).unwrap();
//! file.write_all(b"hello").unwrap();
//! file.sync().unwrap();
//! drop(file);
//! // The data is durable, the entry is not: power loss drops /d itself.
//! disk.plan(FaultPlan { at_call: disk.calls(), fault: DiskFault::PowerLoss });
//! assert!(disk.lstat(Path::new("/d")).is_err()); // the machine is down
//! disk.reboot();
//! assert!(disk.lstat(Path::new("/d")).is_err()); // and /d is gone
//! ```

pub mod check;
pub mod fault;
pub mod host_check;
pub mod provider;
pub mod sched;
pub mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rotor_fs::io::{link_refused, DirEntry, FileHandle, HeldFileLock, Io, Kind, Meta, Opened};
use rotor_fs::lock::{HolderMeta, LockWait};

pub use fault::{DiskFault, FaultPlan};
pub use sched::Scheduler;

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
/// The simulated user's uid (owner of everything created).
pub const UID: u32 = 1000;
/// The simulated process's pid.
pub const PID: u32 = 4242;
const UMASK: u32 = 0o022;

/// A file's bytes: what a reader sees now, and what survives power loss.
#[derive(Clone, Debug, Default)]
struct Inode {
    cached: Vec<u8>,
    durable: Vec<u8>,
    mode: u32,
}

/// A directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    File(usize),
    Dir { mode: u32 },
    Symlink,
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    /// Every path as a reader sees it now (full paths; "/" is implicit).
    visible: BTreeMap<PathBuf, Entry>,
    /// Every path as it would be after power loss.
    durable: BTreeMap<PathBuf, Entry>,
    /// Held locks: the token of their holder and its process.
    locks: BTreeMap<PathBuf, (u64, u32)>,
    lock_tokens: u64,
    calls: u64,
    plan: Option<FaultPlan>,
    down: bool,
    /// Processes killed (kill -9): their calls fail, their locks are gone.
    dead: BTreeSet<u32>,
    /// Calls made per process.
    process_calls: BTreeMap<u32, u64>,
    /// A process to kill at its numbered call.
    kill: Option<(u32, u64)>,
}

impl State {
    /// Counts a call of process `pid` and applies the planned fault or kill
    /// when its number comes.
    fn enter(&mut self, pid: u32) -> io::Result<()> {
        if self.down || self.dead.contains(&pid) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        let own = self.process_calls.entry(pid).or_insert(0);
        let own_number = *own;
        *own += 1;
        if self.kill == Some((pid, own_number)) {
            self.kill_process(pid);
            return Err(io::Error::from_raw_os_error(EIO));
        }
        let number = self.calls;
        self.calls += 1;
        match self.plan {
            Some(plan) if plan.at_call == number => match plan.fault {
                DiskFault::Eio => Err(io::Error::from_raw_os_error(EIO)),
                DiskFault::Enospc => Err(io::Error::from_raw_os_error(ENOSPC)),
                DiskFault::PowerLoss => {
                    self.lose_power(false);
                    Err(io::Error::from_raw_os_error(EIO))
                }
                DiskFault::PowerLossTorn => {
                    self.lose_power(true);
                    Err(io::Error::from_raw_os_error(EIO))
                }
            },
            _ => Ok(()),
        }
    }

    /// kill -9: the OS releases the process's locks; what it wrote stays in
    /// the cache (the machine is still up).
    fn kill_process(&mut self, pid: u32) {
        self.dead.insert(pid);
        self.locks.retain(|_, (_, owner)| *owner != pid);
    }

    fn lose_power(&mut self, torn: bool) {
        self.down = true;
        self.locks.clear();
        for inode in &mut self.inodes {
            if torn && inode.cached != inode.durable {
                let half = inode.cached.len() / 2;
                inode.durable = inode.cached[..half].to_vec();
            }
            inode.cached = inode.durable.clone();
        }
        // Entries survive only where every ancestor survives (sorted order
        // visits a directory before what is under it).
        let mut kept: BTreeMap<PathBuf, Entry> = BTreeMap::new();
        for (path, entry) in &self.durable {
            let parent_kept = match path.parent() {
                Some(parent) if parent != Path::new("/") => {
                    matches!(kept.get(parent), Some(Entry::Dir { .. }))
                }
                _ => true,
            };
            if parent_kept {
                kept.insert(path.clone(), *entry);
            }
        }
        self.durable = kept.clone();
        self.visible = kept;
    }

    fn parent_is_dir(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if parent == Path::new("/") => Ok(()),
            Some(parent) => match self.visible.get(parent) {
                Some(Entry::Dir { .. }) => Ok(()),
                Some(Entry::Symlink) => Err(link_refused()),
                Some(Entry::File(_)) => Err(io::Error::from(io::ErrorKind::NotADirectory)),
                None => Err(io::Error::from(io::ErrorKind::NotFound)),
            },
            None => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }

    fn new_file(&mut self, path: &Path, mode: u32) -> usize {
        let id = self.inodes.len();
        self.inodes.push(Inode {
            mode: mode & !UMASK,
            ..Inode::default()
        });
        self.visible.insert(path.to_path_buf(), Entry::File(id));
        id
    }
}

/// The simulated file system. Cheap to share (`Arc<SimDisk>` is an
/// [`Io`]); every call is serialized, as on one simulated machine. With a
/// [`Scheduler`], every call is a switch point of the threads that share
/// the disk, and a contended lock is waited for by letting others run.
#[derive(Debug)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
    scheduler: Option<Arc<Scheduler>>,
    /// The process making the calls (see [`SimDisk::process`]).
    pid: u32,
}

impl Default for SimDisk {
    fn default() -> Self {
        SimDisk {
            state: Arc::default(),
            scheduler: None,
            pid: PID,
        }
    }
}

/// How many switch points a contended lock is waited for before the wait
/// times out (the simulated machine's lock wait budget).
pub const LOCK_WAIT_SWITCHES_MAX: u32 = 20_000;

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock (a failed assertion in a test) leaves
    // the state as it was at the panic: still worth reading.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimDisk {
    /// An empty disk: only `/`.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// An empty disk whose calls are switch points of `scheduler`.
    pub fn with_scheduler(scheduler: Arc<Scheduler>) -> SimDisk {
        SimDisk {
            scheduler: Some(scheduler),
            ..SimDisk::default()
        }
    }

    /// The same disk as seen by process `pid`: its calls are counted, and
    /// can be killed, as that process's.
    pub fn process(&self, pid: u32) -> SimDisk {
        SimDisk {
            state: Arc::clone(&self.state),
            scheduler: self.scheduler.clone(),
            pid,
        }
    }

    /// Kills process `pid` at its call numbered `at_call` (0 is its first).
    pub fn plan_kill(&self, pid: u32, at_call: u64) {
        lock(&self.state).kill = Some((pid, at_call));
    }

    /// Whether process `pid` was killed.
    pub fn is_dead(&self, pid: u32) -> bool {
        lock(&self.state).dead.contains(&pid)
    }

    /// The lock files process `pid` holds now (a checker's view: G8 asks
    /// that a refresh token is presented only under the refresh lock).
    pub fn locks_held_by(&self, pid: u32) -> Vec<PathBuf> {
        lock(&self.state)
            .locks
            .iter()
            .filter(|(_, (_, owner))| *owner == pid)
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// Lets the scheduler run another thread first (no-op without one).
    pub fn switch(&self) {
        if let Some(scheduler) = &self.scheduler {
            scheduler.switch();
        }
    }

    fn enter(&self) -> MutexGuard<'_, State> {
        self.switch();
        lock(&self.state)
    }

    /// How many calls have been made so far (the number the next call gets).
    pub fn calls(&self) -> u64 {
        lock(&self.state).calls
    }

    /// Plans one fault (replacing any earlier plan).
    pub fn plan(&self, plan: FaultPlan) {
        lock(&self.state).plan = Some(plan);
    }

    /// Whether the planned power loss has happened and the machine is down.
    pub fn is_down(&self) -> bool {
        lock(&self.state).down
    }

    /// Powers the machine back on after a power loss and clears the plan.
    pub fn reboot(&self) {
        let mut state = lock(&self.state);
        state.down = false;
        state.plan = None;
    }

    /// Drops the planned fault and kill that have not happened yet (a run
    /// over; its checkers read the disk without faults).
    pub fn cancel_plans(&self) {
        let mut state = lock(&self.state);
        state.plan = None;
        state.kill = None;
    }

    /// Loses power now (outside any call): what a crash right after the
    /// last call leaves.
    pub fn lose_power(&self, torn: bool) {
        let mut state = lock(&self.state);
        state.lose_power(torn);
        state.down = false;
        state.plan = None;
    }

    /// Makes everything durable as it is now (every file and every
    /// directory fsynced): the starting point of a crash test.
    pub fn sync_everything(&self) {
        let mut state = lock(&self.state);
        for inode in &mut state.inodes {
            inode.durable = inode.cached.clone();
        }
        state.durable = state.visible.clone();
    }

    /// Loses power now and stays down until [`SimDisk::reboot`]: a crash
    /// while the host is between calls (in an endpoint call, say).
    pub fn power_off(&self, torn: bool) {
        lock(&self.state).lose_power(torn);
    }

    /// Plants a symbolic link at `path`, durably (for G9 tests).
    pub fn plant_symlink(&self, path: &Path) {
        let mut state = lock(&self.state);
        state.visible.insert(path.to_path_buf(), Entry::Symlink);
        state.durable.insert(path.to_path_buf(), Entry::Symlink);
    }

    /// The paths a reader sees now, sorted (for reports).
    pub fn visible_paths(&self) -> Vec<PathBuf> {
        lock(&self.state).visible.keys().cloned().collect()
    }
}

struct SimFile {
    state: Arc<Mutex<State>>,
    scheduler: Option<Arc<Scheduler>>,
    pid: u32,
    inode: usize,
}

impl SimFile {
    fn enter(&self) -> MutexGuard<'_, State> {
        if let Some(scheduler) = &self.scheduler {
            scheduler.switch();
        }
        lock(&self.state)
    }
}

impl FileHandle for SimFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        state.inodes[self.inode].cached.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        let inode = &mut state.inodes[self.inode];
        inode.durable = inode.cached.clone();
        Ok(())
    }
}

#[derive(Debug)]
struct SimLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    token: u64,
}

impl HeldFileLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        // A lock lost to power loss may have been taken again since.
        if state.locks.get(&self.path).map(|(token, _)| *token) == Some(self.token) {
            state.locks.remove(&self.path);
        }
    }
}

impl Io for SimDisk {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        if path == Path::new("/") {
            return Ok(Meta {
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
            });
        }
        match state.visible.get(path) {
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
            Some(Entry::Dir { mode }) => Ok(Meta {
                kind: Kind::Dir,
                mode: *mode,
                uid: UID,
            }),
            Some(Entry::File(id)) => Ok(Meta {
                kind: Kind::File,
                mode: state.inodes[*id].mode,
                uid: UID,
            }),
            Some(Entry::Symlink) => Ok(Meta {
                kind: Kind::Symlink,
                mode: 0o777,
                uid: UID,
            }),
        }
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        state.parent_is_dir(path)?;
        if path == Path::new("/") || state.visible.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        state.visible.insert(
            path.to_path_buf(),
            Entry::Dir {
                mode: mode & !UMASK,
            },
        );
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        if let Err(error) = state.parent_is_dir(path) {
            return match error.kind() {
                io::ErrorKind::NotFound => Ok(None),
                _ => Err(error),
            };
        }
        match state.visible.get(path) {
            None => Ok(None),
            Some(Entry::Symlink) => Err(link_refused()),
            Some(Entry::Dir { .. }) => Ok(Some(Opened::NotRegular)),
            Some(Entry::File(id)) => Ok(Some(Opened::File(state.inodes[*id].cached.clone()))),
        }
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        state.parent_is_dir(path)?;
        match state.visible.get(path) {
            Some(Entry::Symlink) => return Err(link_refused()),
            Some(_) => return Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            None => {}
        }
        let inode = state.new_file(path, mode);
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            scheduler: self.scheduler.clone(),
            pid: self.pid,
            inode,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        state.parent_is_dir(to)?;
        let entry = match state.visible.get(from) {
            Some(entry @ Entry::File(_)) => *entry,
            Some(_) => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
            None => return Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        if matches!(state.visible.get(to), Some(Entry::Dir { .. })) {
            return Err(io::Error::from(io::ErrorKind::IsADirectory));
        }
        state.visible.remove(from);
        state.visible.insert(to.to_path_buf(), entry);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        if dir != Path::new("/") && !matches!(state.visible.get(dir), Some(Entry::Dir { .. })) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let in_dir = |path: &PathBuf| path.parent() == Some(dir);
        state.durable.retain(|path, _| !in_dir(path));
        let entries: Vec<(PathBuf, Entry)> = state
            .visible
            .iter()
            .filter(|(path, _)| in_dir(path))
            .map(|(path, entry)| (path.clone(), *entry))
            .collect();
        state.durable.extend(entries);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        match state.visible.get(path) {
            Some(Entry::Dir { .. }) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            Some(_) => {
                state.visible.remove(path);
                Ok(())
            }
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let mut state = self.enter();
        state.enter(self.pid)?;
        let entries = state
            .visible
            .iter()
            .filter(|(path, _)| path.parent() == Some(dir))
            .map(|(path, entry)| DirEntry {
                name: path.file_name().map(OsString::from).unwrap_or_default(),
                is_file: matches!(entry, Entry::File(_)),
            })
            .collect();
        Ok(entries)
    }

    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        _meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        let failed = |error: io::Error| LockWait {
            waited_ms: 0,
            holder: None,
            error: Some(rotor_fs::safe_fs::io_fault(path, "locking", &error)),
        };
        let mut state = self.enter();
        state.enter(self.pid).map_err(failed)?;
        state.parent_is_dir(path).map_err(failed)?;
        match state.visible.get(path) {
            Some(Entry::File(_)) => {}
            Some(_) => return Err(failed(link_refused())),
            None => {
                state.new_file(path, rotor_fs::safe_fs::FILE_MODE);
            }
        }
        // Contended: let the others run (the holder among them) and look
        // again, up to the wait budget; alone on the disk, time out at once.
        let mut switches = 0;
        while state.locks.contains_key(path) {
            if self.scheduler.is_none() || switches == LOCK_WAIT_SWITCHES_MAX {
                return Err(LockWait {
                    waited_ms: wait_ms_max,
                    holder: None,
                    error: None,
                });
            }
            drop(state);
            switches += 1;
            state = self.enter();
            if state.down || state.dead.contains(&self.pid) {
                return Err(failed(io::Error::from_raw_os_error(EIO)));
            }
        }
        state.lock_tokens += 1;
        let token = state.lock_tokens;
        state.locks.insert(path.to_path_buf(), (token, self.pid));
        Ok(Box::new(SimLock {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
            token,
        }))
    }

    fn process_exists(&self, pid: u32) -> bool {
        let state = lock(&self.state);
        !state.dead.contains(&pid) && (pid == PID || state.process_calls.contains_key(&pid))
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn euid(&self) -> u32 {
        UID
    }
}
