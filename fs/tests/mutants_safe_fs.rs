//! Tests written for mutants `cargo mutants` found alive in
//! `fs/src/safe_fs.rs` and `fs/src/paths.rs` (docs/mutants.md): the error
//! paths of the state directory's creation (another process racing a
//! `mkdir`, an `lstat` that fails for another reason than a missing path),
//! the open flags that keep a planted FIFO from hanging rotor, and the
//! housekeeping that must never delete a live writer's temp file. Each
//! names the guarantee it protects (G9 path and file safety, G10 typed
//! failures, G6 durability, G4 no lost update).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use rotor_fs::io::{ForwardIo, Io, Meta, OsIo};
use rotor_fs::paths::check_id;
use rotor_fs::safe_fs::{check_root_on, dir_chain_on, open_read, remove_stale_temps, sync_dir};
use rotor_fs::AgentId;
use rotor_kernel::StoreFaultKind;

/// The real file system with chosen calls failing.
#[derive(Debug, Default)]
struct Faulty {
    /// `lstat` of this path fails with this error kind.
    lstat_fails: Option<(PathBuf, io::ErrorKind)>,
    /// `mkdir` of this path fails with this error kind; for
    /// `AlreadyExists` it first makes the directory, as a process racing
    /// this one would.
    mkdir_fails: Option<(PathBuf, io::ErrorKind)>,
    /// Every path `mkdir` was called for.
    mkdirs: Mutex<Vec<PathBuf>>,
}

impl ForwardIo for Faulty {
    fn inner(&self) -> &dyn Io {
        &OsIo
    }

    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        match &self.lstat_fails {
            Some((failing, kind)) if failing == path => Err(io::Error::from(*kind)),
            _ => OsIo.lstat(path),
        }
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.mkdirs.lock().unwrap().push(path.to_path_buf());
        match &self.mkdir_fails {
            Some((failing, kind)) if failing == path => {
                if *kind == io::ErrorKind::AlreadyExists {
                    OsIo.mkdir(path, mode)?;
                }
                Err(io::Error::from(*kind))
            }
            _ => OsIo.mkdir(path, mode),
        }
    }
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_state_root_that_cannot_be_looked_at_is_an_error_not_created_g10() {
    let dir = temp();
    let root = dir.path().join("state");
    let io = Faulty {
        lstat_fails: Some((root.clone(), io::ErrorKind::PermissionDenied)),
        ..Faulty::default()
    };
    let fault = check_root_on(&io, &root, true).unwrap_err();
    assert!(
        fault.detail.contains("reading state directory"),
        "{}",
        fault.detail
    );
    assert!(io.mkdirs.lock().unwrap().is_empty(), "nothing created");
}

#[test]
fn a_missing_state_root_is_created_only_when_asked_g10() {
    let dir = temp();
    let root = dir.path().join("state");
    let fault = check_root_on(&OsIo, &root, false).unwrap_err();
    assert_eq!(fault.kind, StoreFaultKind::Io);
    assert!(
        fault.detail.contains("reading state directory"),
        "{}",
        fault.detail
    );
    assert!(!root.exists(), "not created without `create`");
    check_root_on(&OsIo, &root, true).unwrap();
    assert!(root.is_dir());
}

#[test]
fn an_ancestor_that_cannot_be_looked_at_is_an_error_g10() {
    let dir = temp();
    let parent = dir.path().join("a");
    let root = parent.join("state");
    let io = Faulty {
        lstat_fails: Some((parent.clone(), io::ErrorKind::PermissionDenied)),
        ..Faulty::default()
    };
    let fault = check_root_on(&io, &root, true).unwrap_err();
    assert!(fault.detail.contains("reading"), "{}", fault.detail);
    assert!(io.mkdirs.lock().unwrap().is_empty(), "nothing created");
}

#[test]
fn an_ancestor_made_by_a_racing_process_is_fine_and_a_failed_one_is_an_error_g10() {
    let dir = temp();
    let parent = dir.path().join("a");
    let root = parent.join("state");
    let racing = Faulty {
        mkdir_fails: Some((parent.clone(), io::ErrorKind::AlreadyExists)),
        ..Faulty::default()
    };
    check_root_on(&racing, &root, true).unwrap();
    assert!(root.is_dir());

    let other = dir.path().join("b");
    let failing = Faulty {
        mkdir_fails: Some((other.clone(), io::ErrorKind::StorageFull)),
        ..Faulty::default()
    };
    let fault = check_root_on(&failing, &other.join("state"), true).unwrap_err();
    // The error names the ancestor and its cause, not a later, misleading
    // "no such file" about the state directory itself (G10).
    let expected = format!(
        "creating {}: {}",
        other.display(),
        io::Error::from(io::ErrorKind::StorageFull)
    );
    assert_eq!(fault.detail, expected);
    assert!(!other.exists());
}

#[test]
fn a_state_root_made_by_a_racing_process_is_fine_and_a_failed_one_is_an_error_g10() {
    let dir = temp();
    let root = dir.path().join("state");
    let racing = Faulty {
        mkdir_fails: Some((root.clone(), io::ErrorKind::AlreadyExists)),
        ..Faulty::default()
    };
    check_root_on(&racing, &root, true).unwrap();

    let other = dir.path().join("other");
    let failing = Faulty {
        mkdir_fails: Some((other.clone(), io::ErrorKind::StorageFull)),
        ..Faulty::default()
    };
    let fault = check_root_on(&failing, &other, true).unwrap_err();
    assert!(
        fault.detail.contains("creating state directory"),
        "{}",
        fault.detail
    );
}

#[test]
fn a_directory_in_the_chain_that_cannot_be_looked_at_is_an_error_not_missing_g9() {
    let dir = temp();
    let root = dir.path().join("state");
    check_root_on(&OsIo, &root, true).unwrap();
    let agents = root.join("agents");
    let io = Faulty {
        lstat_fails: Some((agents.clone(), io::ErrorKind::PermissionDenied)),
        ..Faulty::default()
    };
    // Without `create`, a directory that cannot be looked at is not "no
    // store yet": it is an error a person must see.
    let fault = dir_chain_on(&io, &root, &["agents"], false).unwrap_err();
    assert!(fault.detail.contains("reading"), "{}", fault.detail);
    dir_chain_on(&io, &root, &["agents"], true).unwrap_err();
    assert!(io.mkdirs.lock().unwrap().is_empty(), "nothing created");
}

fn mkfifo(path: &Path) {
    let name = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    assert_eq!(made, 0, "mkfifo {}", path.display());
}

#[test]
fn a_fifo_planted_as_a_file_is_refused_at_once_not_waited_on_g9() {
    let dir = temp();
    let fifo = dir.path().join("auth-profiles.json");
    mkfifo(&fifo);
    let (sent, received) = mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = sent.send(open_read(&path).map(|file| file.is_some()));
    });
    // Opening a FIFO for reading blocks until a writer comes unless the
    // open is non-blocking.
    let result = received
        .recv_timeout(Duration::from_secs(10))
        .expect("G9: opening a planted FIFO hangs (no O_NONBLOCK)");
    let fault = result.unwrap_err();
    assert!(
        fault.detail.contains("not a regular file"),
        "{}",
        fault.detail
    );
}

#[test]
fn a_directory_where_a_file_belongs_is_refused_and_a_missing_file_is_none_g9() {
    let dir = temp();
    let fault = open_read(dir.path()).unwrap_err();
    assert!(
        fault.detail.contains("not a regular file"),
        "{}",
        fault.detail
    );
    assert!(open_read(&dir.path().join("missing")).unwrap().is_none());
}

#[test]
fn stale_temps_of_a_dead_writer_go_and_a_live_writers_stay_g4() {
    let dir = temp();
    let target = dir.path().join("auth-profiles.json");
    let temp_of = |pid: u32| dir.path().join(format!(".auth-profiles.json.tmp-{pid}-0"));
    let mine = temp_of(std::process::id());
    // pid 1 is always alive; pids above the kernel's pid_max never are.
    let live = temp_of(1);
    let dead = temp_of(4_194_304 + 7);
    for path in [&mine, &live, &dead] {
        std::fs::write(path, b"{}").unwrap();
    }
    assert_eq!(remove_stale_temps(&target), 1);
    assert!(mine.exists(), "this process's own temp file stays");
    assert!(live.exists(), "a live writer's temp file stays");
    assert!(!dead.exists(), "a dead writer's temp file goes");
}

#[test]
fn syncing_a_missing_directory_is_an_error_g6() {
    let dir = temp();
    let fault = sync_dir(&dir.path().join("missing")).unwrap_err();
    assert!(
        fault.detail.contains("syncing directory"),
        "{}",
        fault.detail
    );
    sync_dir(dir.path()).unwrap();
}

#[test]
fn agent_ids_know_main_and_print_themselves_g9() {
    assert!(AgentId::main().is_main());
    let worker = AgentId::new("worker-1").unwrap();
    assert!(!worker.is_main());
    assert_eq!(worker.to_string(), "worker-1");
    assert_eq!(format!("{}", AgentId::main()), "main");
}

#[test]
fn a_provider_or_profile_id_may_be_exactly_256_bytes_g9() {
    assert!(check_id("profile", &"p".repeat(256)).is_ok());
    assert!(check_id("profile", &"p".repeat(257)).is_err());
}
