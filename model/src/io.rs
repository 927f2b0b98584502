//! The models' file system: an in-memory [`Io`] on the primitives of
//! [`rotor_fs::sync`], under which the shipped store code
//! ([`rotor_fs::StoreFile`], [`rotor_fs::FsStores`]) and the shipped refresh
//! lock ([`rotor_fs::FsRefreshLock`]) run unchanged.
//!
//! One [`Machine`] holds the files, directories and the OS's lock table of
//! a run; every thread of the run (agent, background writer, login) gets its
//! own [`ModelIo`], a view of the machine as one process (`pid`) sees it,
//! named after the thread so the checkers can say who did what.
//!
//! # The file system
//!
//! Files are whole byte strings, directories a mode. A rename replaces its
//! target at once, so a reader sees a whole old or a whole new file; there
//! is no power loss here (that is `rotor_sim::disk`'s job): the models
//! explore the order of events, not what a crash of the machine keeps.
//!
//! # The locks
//!
//! [`Io::lock_exclusive`] is an advisory lock that a waiter waits for until
//! it is released (untimed under loom and shuttle, like
//! [`rotor_fs::sync::wait_timeout`]; bounded by the budget on real threads).
//! The OS releases every lock of a process that dies ([`Machine::crash`]);
//! dropping the returned box releases it. Two semantics, as two backends
//! would give them:
//!
//! - a **refresh-lock file** (in the layout's lock directory) has the
//!   semantics of POSIX record locks (`fcntl`), the weakest advisory backend
//!   a host could be given: it is held **per process**, so a second request
//!   from the process that holds it is granted at once, and one release from
//!   the process frees it. The refresh lock claims to be correct over that
//!   (its single-flight keeps a process's second thread out, docs/bugs.md
//!   B3), and the model checks exactly that: a second thread of a process
//!   let in is recorded as a G8 violation (its double presentation, if any,
//!   is G1). Every fresh acquisition gets the next number of a fence counter.
//! - every **other lock file** (a store's `.lock` sidecar) is held per open
//!   file, as `flock` (the fs host's backend, [`rotor_fs::io::OsIo`]) holds
//!   it: each call is its own holder, so two threads of one process exclude
//!   each other too. The store code has no single-flight in front of its
//!   lock and relies on this.
//!
//! A release by a process that does not hold the lock is a G8 violation.
//!
//! # What is a scheduling point
//!
//! Only what races: a read of a store file, a rename over one, and taking a
//! lock (releasing one only when someone waits for it). Each is one
//! acquisition of a model mutex of its path. Everything else (lstat, mkdir,
//! creating and writing a temp file, fsync, listing a directory) happens on
//! a `std` mutex that is never held across a model primitive: atomic, and no
//! interleavings of its own, so loom stays tractable.
//!
//! # The checks (recorded in the [`Log`], never panicked on)
//!
//! Each store file has a write counter (its version). Each view records the
//! version of every store file it reads. A rename over a store file by a
//! view whose last read of it is older than the file's current version is a
//! lost update (G4): the document renamed in was computed from a version
//! someone else has since replaced. The bytes renamed in are decoded, and
//! compared with the document they replace: a profile whose generation goes
//! down (or that disappears) is G5, and every replaced credential is judged
//! against the identity table ([`judge_write`], G3). None of this states a
//! host rule: it watches what the shipped code does to the files.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rotor_fs::io::{DirEntry, FileHandle, HeldFileLock, Io, Kind, Meta, Opened};
use rotor_fs::lock::{HolderMeta, LockWait};
use rotor_fs::paths::Layout;
use rotor_fs::sync::{self, Condvar, Mutex};
use rotor_kernel::StoreDoc;

use crate::check::{Guarantee, Log};
use crate::gate_check::{judge_write, WriteKind};

/// The uid of the model's user: owner of everything, and every view's euid.
pub const UID: u32 = 1000;
/// The mode of every directory the machine starts with.
const DIR_MODE: u32 = 0o700;
/// Bits a `mkdir` clears (the process's umask).
const UMASK: u32 = 0o022;
/// The error every call of a dead process gets.
const EIO: i32 = 5;

/// The model primitives of one path: taking `step` is the scheduling point
/// of an operation on the path; `released` is signalled (under `step`)
/// when the path's lock is released and someone waits for it.
#[derive(Debug)]
struct Slot {
    step: Mutex<()>,
    released: Condvar,
}

impl Slot {
    fn new() -> Self {
        Slot {
            step: Mutex::new(()),
            released: Condvar::new(),
        }
    }
}

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The holding process.
    pub pid: u32,
    /// The fence number of the acquisition.
    pub fence: u64,
    /// The view (thread) that took it.
    pub by: String,
}

/// Everything on the machine, behind a `std` mutex (see the module docs).
#[derive(Debug, Default)]
struct State {
    dirs: BTreeMap<OsString, u32>,
    files: BTreeMap<OsString, Vec<u8>>,
    /// Write counter of every store file.
    versions: BTreeMap<OsString, u64>,
    /// Every store file's document as last renamed in (decoded once).
    docs: BTreeMap<OsString, StoreDoc>,
    /// (view, store file) -> the version that view last read.
    last_read: BTreeMap<(u64, OsString), u64>,
    locks: BTreeMap<OsString, Held>,
    /// How many wait for each lock.
    waiters: BTreeMap<OsString, usize>,
    fences_issued: u64,
    dead: BTreeSet<u32>,
    views: u64,
}

/// The machine of one run: files, directories, the lock table, and the
/// checker's log. Shared by every [`ModelIo`] of the run.
pub struct Machine {
    layout: Layout,
    state: std::sync::Mutex<State>,
    slots: std::sync::Mutex<BTreeMap<OsString, std::sync::Arc<Slot>>>,
    /// The store files (path -> store name): the paths whose reads and
    /// renames are scheduling points and are checked.
    stores: BTreeMap<OsString, String>,
    log: std::sync::Arc<Log>,
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("root", &self.layout.root())
            .field("stores", &self.stores)
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine with the state directory of `layout` (its `agents` and
    /// lock directories made, 0700, owned by [`UID`]) and the store files
    /// `stores` (path, name and first document), whose directories are made
    /// too. Violations go to `log`.
    pub fn new(
        layout: Layout,
        stores: Vec<(PathBuf, String, StoreDoc)>,
        log: std::sync::Arc<Log>,
    ) -> Self {
        let mut state = State::default();
        let mut dirs = vec![
            layout.root().to_path_buf(),
            layout.agents_dir(),
            layout.root().join(Layout::LOCK_DIR_COMPONENTS[0]),
            layout.lock_dir(),
        ];
        let mut slots = BTreeMap::new();
        let mut names = BTreeMap::new();
        for (path, name, doc) in stores {
            dirs.extend(path.parent().map(Path::to_path_buf));
            let key = path.into_os_string();
            state.files.insert(key.clone(), doc.to_json());
            state.docs.insert(key.clone(), doc);
            state.versions.insert(key.clone(), 0);
            slots.insert(key.clone(), std::sync::Arc::new(Slot::new()));
            names.insert(key, name);
        }
        for dir in dirs {
            state.dirs.insert(dir.into_os_string(), DIR_MODE);
        }
        Machine {
            layout,
            state: std::sync::Mutex::new(state),
            slots: std::sync::Mutex::new(slots),
            stores: names,
            log,
        }
    }

    /// The view of process `pid` for the thread `name`, whose writes the
    /// identity judge treats as `kind`.
    pub fn view(
        self: &std::sync::Arc<Self>,
        pid: u32,
        name: impl Into<String>,
        kind: WriteKind,
    ) -> ModelIo {
        let mut state = self.state();
        state.views += 1;
        ModelIo {
            machine: self.clone(),
            view: state.views,
            pid,
            name: name.into(),
            kind,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot of `path`, made on first use.
    fn slot(&self, path: &Path) -> std::sync::Arc<Slot> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .entry(path.as_os_str().to_owned())
            .or_insert_with(|| std::sync::Arc::new(Slot::new()))
            .clone()
    }

    /// Whether `path`'s lock is held per process (a refresh-lock file).
    fn per_process(&self, path: &Path) -> bool {
        path.parent() == Some(self.layout.lock_dir().as_path())
    }

    /// The bytes of a file as they are now, read by the checker (not a
    /// scheduling point, not recorded as anyone's read).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.state().files.get(path.as_os_str()).cloned()
    }

    /// Process `pid` dies: the OS releases every lock it held, and its
    /// later calls fail. Returns how many locks that was.
    pub fn crash(&self, pid: u32) -> usize {
        let woken: Vec<OsString> = {
            let mut state = self.state();
            state.dead.insert(pid);
            let held: Vec<OsString> = state
                .locks
                .iter()
                .filter(|(_, held)| held.pid == pid)
                .map(|(path, _)| path.clone())
                .collect();
            for path in &held {
                state.locks.remove(path.as_os_str());
            }
            held
        };
        for path in &woken {
            self.wake(Path::new(path));
        }
        woken.len()
    }

    /// The locks held now.
    pub fn held_locks(&self) -> Vec<(PathBuf, Held)> {
        let state = self.state();
        state
            .locks
            .iter()
            .map(|(path, held)| (PathBuf::from(path), held.clone()))
            .collect()
    }

    /// How many fresh acquisitions of a lock there were.
    pub fn fences_issued(&self) -> u64 {
        self.state().fences_issued
    }

    /// Wakes the waiters of `path`'s lock, if any.
    fn wake(&self, path: &Path) {
        let waited = self
            .state()
            .waiters
            .get(path.as_os_str())
            .copied()
            .unwrap_or(0)
            > 0;
        if waited {
            let slot = self.slot(path);
            let _step = sync::lock(&slot.step);
            slot.released.notify_all();
        }
    }

    /// The scheduling point of a read of, or a rename over, `path`: taken
    /// only for store files.
    fn store_step(&self, path: &Path) -> Option<std::sync::Arc<Slot>> {
        self.stores
            .contains_key(path.as_os_str())
            .then(|| self.slot(path))
    }

    /// The checks of a rename of `bytes` over the store file `path` by
    /// `view` (see the module docs); then counts the write.
    fn check_store_write(&self, state: &mut State, view: &ModelIo, path: &Path, bytes: &[u8]) {
        let name = &self.stores[path.as_os_str()];
        let writer = &view.name;
        let version = state.versions.get(path.as_os_str()).copied().unwrap_or(0);
        let read = state
            .last_read
            .get(&(view.view, path.as_os_str().to_owned()))
            .copied();
        if read != Some(version) {
            self.log.violation(
                Guarantee::G4,
                format!(
                    "lost update in store {name}: {writer} renamed over it a document computed \
                     from {}, but the store was at version {version} (someone wrote in between \
                     and that write is now gone)",
                    read.map_or("no read of it".to_string(), |read| format!(
                        "version {read}"
                    ))
                ),
            );
        }
        let before = state.docs.remove(path.as_os_str()).unwrap_or_default();
        let after = StoreDoc::from_json(bytes).unwrap_or_else(|error| {
            panic!(
                "store {name}: {writer} renamed in a document that does not decode ({error}): \
                 the shipped store code wrote a torn or foreign file"
            )
        });
        judge_write(name, writer, view.kind, &before, &after, &self.log);
        for (profile, was) in &before.profiles {
            let now = after.profiles.get(profile).map(|c| c.generation);
            if now.is_none_or(|now| now < was.generation) {
                self.log.violation(
                    Guarantee::G5,
                    format!(
                        "store {name}: {writer} took profile {profile} from generation {} to {}",
                        was.generation,
                        now.map_or("nothing".to_string(), |g| g.to_string())
                    ),
                );
            }
        }
        state.docs.insert(path.as_os_str().to_owned(), after);
        state
            .versions
            .insert(path.as_os_str().to_owned(), version + 1);
        state
            .last_read
            .insert((view.view, path.as_os_str().to_owned()), version + 1);
    }
}

/// One thread's view of the [`Machine`], as process `pid`: an [`Io`].
#[derive(Clone, Debug)]
pub struct ModelIo {
    machine: std::sync::Arc<Machine>,
    view: u64,
    pid: u32,
    name: String,
    kind: WriteKind,
}

impl ModelIo {
    /// The machine.
    pub fn machine(&self) -> &std::sync::Arc<Machine> {
        &self.machine
    }

    /// The thread this view belongs to.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn alive(&self, state: &State) -> io::Result<()> {
        if state.dead.contains(&self.pid) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(())
    }

    fn parent_is_dir(state: &State, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if state.dirs.contains_key(parent.as_os_str()) => Ok(()),
            Some(parent) if state.files.contains_key(parent.as_os_str()) => {
                Err(io::Error::from(io::ErrorKind::NotADirectory))
            }
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

/// A temp file being written.
struct ModelFile {
    machine: std::sync::Arc<Machine>,
    path: PathBuf,
}

impl FileHandle for ModelFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.machine.state();
        match state.files.get_mut(self.path.as_os_str()) {
            Some(file) => {
                file.extend_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
struct ModelLock {
    machine: std::sync::Arc<Machine>,
    path: PathBuf,
    pid: u32,
    fence: u64,
    by: String,
}

impl HeldFileLock for ModelLock {}

impl Drop for ModelLock {
    fn drop(&mut self) {
        let machine = &self.machine;
        let per_process = machine.per_process(&self.path);
        let released = {
            let mut state = machine.state();
            if state.dead.contains(&self.pid) {
                return; // the OS released it when the process died
            }
            match state.locks.get(self.path.as_os_str()) {
                Some(held) if held.fence == self.fence || per_process && held.pid == self.pid => {
                    state.locks.remove(self.path.as_os_str());
                    true
                }
                other => {
                    let holder = other.map_or("nobody".to_string(), |held| {
                        format!("process {} (fence {}, {})", held.pid, held.fence, held.by)
                    });
                    drop(state);
                    machine.log.violation(
                        Guarantee::G8,
                        format!(
                            "{} (process {}) released lock {}, held by {holder}",
                            self.by,
                            self.pid,
                            self.path.display()
                        ),
                    );
                    false
                }
            }
        };
        if released {
            machine.wake(&self.path);
        }
    }
}

impl Io for ModelIo {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        let state = self.machine.state();
        self.alive(&state)?;
        if let Some(mode) = state.dirs.get(path.as_os_str()) {
            return Ok(Meta {
                kind: Kind::Dir,
                mode: *mode,
                uid: UID,
            });
        }
        if state.files.contains_key(path.as_os_str()) {
            return Ok(Meta {
                kind: Kind::File,
                mode: rotor_fs::safe_fs::FILE_MODE,
                uid: UID,
            });
        }
        Err(io::Error::from(io::ErrorKind::NotFound))
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut state = self.machine.state();
        self.alive(&state)?;
        Self::parent_is_dir(&state, path)?;
        if state.dirs.contains_key(path.as_os_str()) || state.files.contains_key(path.as_os_str()) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        state
            .dirs
            .insert(path.as_os_str().to_owned(), mode & !UMASK);
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        let slot = self.machine.store_step(path);
        let _step = slot.as_ref().map(|slot| sync::lock(&slot.step));
        let mut state = self.machine.state();
        self.alive(&state)?;
        if state.dirs.contains_key(path.as_os_str()) {
            return Ok(Some(Opened::NotRegular));
        }
        if slot.is_some() {
            let version = state.versions.get(path.as_os_str()).copied().unwrap_or(0);
            state
                .last_read
                .insert((self.view, path.as_os_str().to_owned()), version);
        }
        Ok(state.files.get(path.as_os_str()).cloned().map(Opened::File))
    }

    fn create_new(&self, path: &Path, _mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let mut state = self.machine.state();
        self.alive(&state)?;
        Self::parent_is_dir(&state, path)?;
        if state.dirs.contains_key(path.as_os_str()) || state.files.contains_key(path.as_os_str()) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        state.files.insert(path.as_os_str().to_owned(), Vec::new());
        Ok(Box::new(ModelFile {
            machine: self.machine.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let slot = self.machine.store_step(to);
        let _step = slot.as_ref().map(|slot| sync::lock(&slot.step));
        let mut state = self.machine.state();
        self.alive(&state)?;
        Self::parent_is_dir(&state, to)?;
        if state.dirs.contains_key(to.as_os_str()) {
            return Err(io::Error::from(io::ErrorKind::IsADirectory));
        }
        let Some(bytes) = state.files.remove(from.as_os_str()) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        if slot.is_some() {
            self.machine.check_store_write(&mut state, self, to, &bytes);
        }
        state.files.insert(to.as_os_str().to_owned(), bytes);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let state = self.machine.state();
        self.alive(&state)?;
        if state.dirs.contains_key(dir.as_os_str()) {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.machine.state();
        self.alive(&state)?;
        if state.dirs.contains_key(path.as_os_str()) {
            return Err(io::Error::from(io::ErrorKind::IsADirectory));
        }
        match state.files.remove(path.as_os_str()) {
            Some(_) => Ok(()),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let state = self.machine.state();
        self.alive(&state)?;
        if !state.dirs.contains_key(dir.as_os_str()) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let entry = |path: &OsString, is_file: bool| DirEntry {
            name: Path::new(path)
                .file_name()
                .map(OsString::from)
                .unwrap_or_default(),
            is_file,
        };
        let in_dir = |path: &&OsString| Path::new(path).parent() == Some(dir);
        let files = state.files.keys().filter(in_dir).map(|p| entry(p, true));
        let dirs = state.dirs.keys().filter(in_dir).map(|p| entry(p, false));
        Ok(files.chain(dirs).collect())
    }

    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        _meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        let machine = &self.machine;
        let failed = |error: io::Error, waited_ms: u64| LockWait {
            waited_ms,
            holder: None,
            error: Some(rotor_fs::safe_fs::io_fault(path, "locking", &error)),
        };
        let per_process = machine.per_process(path);
        let started = Instant::now();
        let waited_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let slot = machine.slot(path);
        // The scheduling point of the acquisition; held from each look at
        // the table until the wait, so a release cannot slip in between.
        let mut step = sync::lock(&slot.step);
        let mut waiting = false;
        let mut timed_out = false;
        loop {
            let granted = {
                let mut state = machine.state();
                if let Err(error) = self.alive(&state) {
                    if waiting {
                        *state
                            .waiters
                            .entry(path.as_os_str().to_owned())
                            .or_default() -= 1;
                    }
                    return Err(failed(error, waited_ms()));
                }
                if let Err(error) = Self::parent_is_dir(&state, path) {
                    return Err(failed(error, waited_ms()));
                }
                let granted = match state.locks.get(path.as_os_str()) {
                    None => {
                        state.fences_issued += 1;
                        let held = Held {
                            pid: self.pid,
                            fence: state.fences_issued,
                            by: self.name.clone(),
                        };
                        state.locks.insert(path.as_os_str().to_owned(), held);
                        Some((state.fences_issued, None))
                    }
                    Some(held) if per_process && held.pid == self.pid => {
                        Some((held.fence, Some(held.clone())))
                    }
                    Some(held) if timed_out => {
                        let holder = HolderMeta {
                            pid: held.pid,
                            start_ticks: None,
                            host: "model".to_string(),
                            agent: held.by.clone(),
                            since_ms: 0,
                        };
                        *state
                            .waiters
                            .entry(path.as_os_str().to_owned())
                            .or_default() -= 1;
                        return Err(LockWait {
                            waited_ms: waited_ms(),
                            holder: Some(holder),
                            error: None,
                        });
                    }
                    Some(_) => None,
                };
                if waiting && granted.is_some() {
                    *state
                        .waiters
                        .entry(path.as_os_str().to_owned())
                        .or_default() -= 1;
                }
                if !waiting && granted.is_none() {
                    waiting = true;
                    *state
                        .waiters
                        .entry(path.as_os_str().to_owned())
                        .or_default() += 1;
                }
                if granted.is_some() {
                    // The lock file exists from the first lock on (never
                    // deleted).
                    state.files.entry(path.as_os_str().to_owned()).or_default();
                }
                granted
            };
            if let Some((fence, reentered)) = granted {
                drop(step);
                if let Some(held) = reentered {
                    machine.log.violation(
                        Guarantee::G8,
                        format!(
                            "{} entered lock {} while {}, another thread of its process {}, \
                             held it (fence {}): a per-process lock lets a second thread \
                             through, and nothing in front of it kept this one out",
                            self.name,
                            path.display(),
                            held.by,
                            self.pid,
                            held.fence
                        ),
                    );
                }
                return Ok(Box::new(ModelLock {
                    machine: machine.clone(),
                    path: path.to_path_buf(),
                    pid: self.pid,
                    fence,
                    by: self.name.clone(),
                }));
            }
            let remaining = wait_ms_max.saturating_sub(waited_ms());
            let (guard, timed) =
                sync::wait_timeout(&slot.released, step, Duration::from_millis(remaining));
            step = guard;
            timed_out = timed;
        }
    }

    fn process_exists(&self, pid: u32) -> bool {
        !self.machine.state().dead.contains(&pid)
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn euid(&self) -> u32 {
        UID
    }
}
