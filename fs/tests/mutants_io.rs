//! Tests written for `cargo mutants` over the I/O seam (`fs/src/io.rs`,
//! `fs/src/io/forward.rs`; docs/mutants.md, fs campaign 3). Everything the
//! store and write path know of a file comes through [`Io`], so [`OsIo`]
//! must report what the kernel of the machine says (a link is a link, a
//! missing file is `None`, a mode is its permission bits) and a
//! [`ForwardIo`] wrapper must hand every call it does not override to its
//! inner I/O unchanged: the simulator's faulty disks, the models' broken
//! hosts and these tests' own wrappers are built on that forwarding. Each
//! test names the guarantee a wrong answer would break (G9 path and file
//! safety, G6 durability, G8 the lock, G4 no lost update).

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rotor_fs::io::{
    link_refused, DirEntry, FileHandle, ForwardIo, HeldFileLock, Io, Kind, Meta, Opened, OsIo,
};
use rotor_fs::lock::{HolderMeta, LockWait};

fn holder(agent: &str) -> HolderMeta {
    HolderMeta {
        pid: std::process::id(),
        start_ticks: None,
        host: "test-host".into(),
        agent: agent.into(),
        since_ms: 0,
    }
}

fn mkfifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
}

/// `lstat` names each kind of path as it is, without following a link, and
/// reports the permission bits (setuid and sticky included, file type bits
/// excluded) and the owner: the store's safety checks refuse a link, a
/// group- or world-writable file and another user's file on these (G9).
#[test]
fn g9_lstat_reports_kind_mode_and_owner_without_following_links() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4640)).unwrap();
    let link = dir.path().join("link");
    symlink(&file, &link).unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);

    let meta = OsIo.lstat(&file).unwrap();
    assert_eq!(
        meta,
        Meta {
            kind: Kind::File,
            mode: 0o4640,
            uid: OsIo.euid(),
        }
    );
    assert_eq!(OsIo.lstat(&link).unwrap().kind, Kind::Symlink);
    assert_eq!(OsIo.lstat(dir.path()).unwrap().kind, Kind::Dir);
    assert_eq!(OsIo.lstat(&fifo).unwrap().kind, Kind::Other);
    let missing = OsIo.lstat(&dir.path().join("missing")).unwrap_err();
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
}

/// The owner `lstat` reports is this process's effective uid for a file it
/// made, and `pid` is this process: the lock's holder record and the
/// "another user's store" check rest on both (G8, G9).
#[test]
fn g9_euid_and_pid_are_this_processes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine");
    std::fs::write(&file, b"").unwrap();
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(OsIo.euid(), euid);
    assert_eq!(OsIo.lstat(&file).unwrap().uid, euid);
    assert_eq!(OsIo.pid(), std::process::id());
}

/// `read` gives a file's bytes, `None` for a missing path, `NotRegular` for
/// a directory or a FIFO (without blocking on the FIFO), and refuses a link
/// with `ELOOP` instead of reading what it points at (G9).
#[test]
fn g9_read_returns_bytes_none_not_regular_or_refuses_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.json");
    std::fs::write(&file, b"{\"version\":1}").unwrap();
    let link = dir.path().join("link.json");
    symlink(&file, &link).unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);

    assert_eq!(
        OsIo.read(&file).unwrap(),
        Some(Opened::File(b"{\"version\":1}".to_vec()))
    );
    assert_eq!(OsIo.read(&dir.path().join("missing")).unwrap(), None);
    assert_eq!(OsIo.read(dir.path()).unwrap(), Some(Opened::NotRegular));
    assert_eq!(OsIo.read(&fifo).unwrap(), Some(Opened::NotRegular));
    let refused = OsIo.read(&link).unwrap_err();
    assert_eq!(refused.raw_os_error(), link_refused().raw_os_error());
}

/// `create_new` makes a new file with exactly the mode asked (a temp file
/// holding tokens is 0600), never opens an existing file or a link, and the
/// bytes written and synced are the file's (G6, G9).
#[test]
fn g6_create_new_writes_a_new_file_with_its_mode_and_refuses_existing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tmp");
    let mut handle = OsIo.create_new(&path, 0o600).unwrap();
    handle.write_all(b"token ").unwrap();
    handle.write_all(b"bytes").unwrap();
    handle.sync().unwrap();
    drop(handle);
    assert_eq!(std::fs::read(&path).unwrap(), b"token bytes");
    assert_eq!(OsIo.lstat(&path).unwrap().mode, 0o600);

    let again = OsIo.create_new(&path, 0o600).err().expect("O_EXCL");
    assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    let target = dir.path().join("elsewhere");
    let link = dir.path().join("planted");
    symlink(&target, &link).unwrap();
    assert!(OsIo.create_new(&link, 0o600).is_err(), "a planted link");
    assert!(!target.exists(), "nothing was created through the link");
}

/// `mkdir` makes a directory with the mode asked and fails when it exists
/// or its parent does not (the state directory is 0700, G9).
#[test]
fn g9_mkdir_makes_one_directory_with_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    OsIo.mkdir(&state, 0o700).unwrap();
    let meta = OsIo.lstat(&state).unwrap();
    assert_eq!((meta.kind, meta.mode), (Kind::Dir, 0o700));
    assert_eq!(
        OsIo.mkdir(&state, 0o700).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        OsIo.mkdir(&dir.path().join("a/b"), 0o700)
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
}

/// `rename` replaces the target atomically, `remove` deletes a file, and
/// `sync_dir` syncs a directory but refuses a file, a link and a missing
/// path: a store's rename is made durable by syncing its real directory
/// (G6, G9).
#[test]
fn g6_rename_remove_and_sync_dir_act_on_the_paths_given() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("tmp");
    let to = dir.path().join("store.json");
    std::fs::write(&from, b"new").unwrap();
    std::fs::write(&to, b"old").unwrap();
    OsIo.rename(&from, &to).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"new");
    assert!(!from.exists());
    OsIo.sync_dir(dir.path()).unwrap();

    let link = dir.path().join("dir-link");
    symlink(dir.path(), &link).unwrap();
    assert!(OsIo.sync_dir(&link).is_err(), "a link is not followed");
    assert!(OsIo.sync_dir(&to).is_err(), "a file is not a directory");
    assert!(OsIo.sync_dir(&dir.path().join("missing")).is_err());

    OsIo.remove(&to).unwrap();
    assert!(!to.exists());
    assert_eq!(
        OsIo.remove(&to).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

/// `list_dir` names every entry and marks regular files only: a link or a
/// directory named like a temp file is never taken for one (the stale-temp
/// sweep removes files only, G9).
#[test]
fn g9_list_dir_marks_regular_files_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.tmp"), b"").unwrap();
    std::fs::create_dir(dir.path().join("b.tmp")).unwrap();
    symlink(dir.path().join("a.tmp"), dir.path().join("c.tmp")).unwrap();
    let mut entries = OsIo.list_dir(dir.path()).unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let entry = |name: &str, is_file| DirEntry {
        name: OsString::from(name),
        is_file,
    };
    assert_eq!(
        entries,
        [
            entry("a.tmp", true),
            entry("b.tmp", false),
            entry("c.tmp", false)
        ]
    );
    assert!(OsIo.list_dir(&dir.path().join("missing")).is_err());
}

/// `lock_exclusive` holds the `flock` until the guard drops: a second wait
/// on the same file times out while it is held and succeeds after (G8).
#[test]
fn g8_lock_exclusive_holds_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("refresh.lock");
    let held = OsIo.lock_exclusive(&path, 0, &holder("first")).unwrap();
    let refused = OsIo
        .lock_exclusive(&path, 50, &holder("second"))
        .expect_err("G8: the lock is held");
    assert!(refused.error.is_none(), "a timeout, not an error");
    drop(held);
    let again = OsIo.lock_exclusive(&path, 0, &holder("third"));
    assert!(again.is_ok(), "G8: released when the guard dropped");
}

/// `process_exists` is true for this process and false for a pid no
/// process has: a stale lock holder is told from a live one by it (G8).
#[test]
fn g8_process_exists_tells_live_from_gone() {
    assert!(OsIo.process_exists(std::process::id()));
    // Above the kernel's pid_max (at most 2^22).
    assert!(!OsIo.process_exists(0x7fff_fff0));
}

/// A fake I/O that answers every call with a value of its own and records
/// the call, so a forwarding wrapper can be seen to pass it on unchanged.
#[derive(Debug, Default)]
struct Recording {
    calls: Mutex<Vec<String>>,
}

impl Recording {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

#[derive(Debug)]
struct Lease;
impl HeldFileLock for Lease {}

struct Sink;
impl FileHandle for Sink {
    fn write_all(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Err(io::Error::other("sink sync"))
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

impl Io for Recording {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        self.record(format!("lstat {}", show(path)));
        Ok(Meta {
            kind: Kind::Other,
            mode: 0o640,
            uid: 77,
        })
    }
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(format!("mkdir {} {mode:o}", show(path)));
        Err(io::Error::other("mkdir refused"))
    }
    fn read(&self, path: &Path) -> io::Result<Option<Opened>> {
        self.record(format!("read {}", show(path)));
        Ok(Some(Opened::File(b"recorded".to_vec())))
    }
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        self.record(format!("create_new {} {mode:o}", show(path)));
        Ok(Box::new(Sink))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.record(format!("rename {} {}", show(from), show(to)));
        Err(io::Error::other("rename refused"))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.record(format!("sync_dir {}", show(dir)));
        Err(io::Error::other("sync_dir refused"))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.record(format!("remove {}", show(path)));
        Err(io::Error::other("remove refused"))
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        self.record(format!("list_dir {}", show(dir)));
        Ok(vec![DirEntry {
            name: "listed".into(),
            is_file: true,
        }])
    }
    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        self.record(format!(
            "lock_exclusive {} {wait_ms_max} {}",
            show(path),
            meta.agent
        ));
        if wait_ms_max == 0 {
            Ok(Box::new(Lease))
        } else {
            Err(LockWait {
                waited_ms: wait_ms_max,
                holder: None,
                error: None,
            })
        }
    }
    fn process_exists(&self, pid: u32) -> bool {
        self.record(format!("process_exists {pid}"));
        pid == 7
    }
    fn pid(&self) -> u32 {
        self.record("pid".into());
        4242
    }
    fn euid(&self) -> u32 {
        self.record("euid".into());
        99
    }
}

/// Overrides nothing: every call goes through `ForwardIo`'s defaults.
#[derive(Debug)]
struct Through<'a>(&'a Recording);

impl ForwardIo for Through<'_> {
    fn inner(&self) -> &dyn Io {
        self.0
    }
}

/// Every call a `ForwardIo` does not override reaches the inner I/O once,
/// with its arguments, and its answer (value or error) comes back as the
/// inner I/O gave it. A default that answered on its own would let a
/// broken-host test run against a disk it never touches, and a checker
/// would pass for want of I/O (G4, G6, G8, G9).
#[test]
fn a_forwarding_wrapper_passes_every_call_and_answer_through() {
    let recording = Recording::default();
    let io: &dyn Io = &Through(&recording);
    let a = PathBuf::from("/s/a");
    let b = PathBuf::from("/s/b");

    assert_eq!(
        io.lstat(&a).unwrap(),
        Meta {
            kind: Kind::Other,
            mode: 0o640,
            uid: 77
        }
    );
    assert_eq!(
        io.mkdir(&a, 0o700).unwrap_err().to_string(),
        "mkdir refused"
    );
    assert_eq!(
        io.read(&a).unwrap(),
        Some(Opened::File(b"recorded".to_vec()))
    );
    let Ok(mut handle) = io.create_new(&b, 0o600) else {
        panic!("create_new was not forwarded");
    };
    assert_eq!(handle.sync().unwrap_err().to_string(), "sink sync");
    assert_eq!(io.rename(&a, &b).unwrap_err().to_string(), "rename refused");
    assert_eq!(io.sync_dir(&a).unwrap_err().to_string(), "sync_dir refused");
    assert_eq!(io.remove(&b).unwrap_err().to_string(), "remove refused");
    assert_eq!(
        io.list_dir(&a).unwrap(),
        [DirEntry {
            name: "listed".into(),
            is_file: true
        }]
    );
    assert!(io.lock_exclusive(&a, 0, &holder("granted")).is_ok());
    let waited = io.lock_exclusive(&b, 30, &holder("waiting")).err();
    assert_eq!(waited.expect("refused").waited_ms, 30);
    assert!(io.process_exists(7));
    assert!(!io.process_exists(8));
    assert_eq!(io.pid(), 4242);
    assert_eq!(io.euid(), 99);

    assert_eq!(
        *recording.calls.lock().unwrap(),
        [
            "lstat /s/a",
            "mkdir /s/a 700",
            "read /s/a",
            "create_new /s/b 600",
            "rename /s/a /s/b",
            "sync_dir /s/a",
            "remove /s/b",
            "list_dir /s/a",
            "lock_exclusive /s/a 0 granted",
            "lock_exclusive /s/b 30 waiting",
            "process_exists 7",
            "process_exists 8",
            "pid",
            "euid",
        ]
    );
}
