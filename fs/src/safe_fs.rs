//! File-system primitives that refuse to be redirected (G9) and never leave a
//! half-written file behind (G6).
//!
//! - Directories are created 0700 and files 0600.
//! - Every directory from the state root down is checked with `lstat`: a
//!   symlinked component, or one writable by group or others, is refused.
//! - Files are opened with `O_NOFOLLOW` (a symlink in the last component fails
//!   with `ELOOP`, reported as unsafe) and must be regular files.
//! - Writes go to a fresh temp file in the same directory, which is fsynced,
//!   renamed over the target, and then the directory is fsynced: a crash at
//!   any instant leaves either the old or the new file, never a torn one.
//!
//! Errors are [`StoreFault`]s whose detail names the path and what to do.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rotor_kernel::{StoreFault, StoreFaultKind};

use crate::failpoint;
use crate::io::{Io, Kind, Meta, Opened, OsIo};

/// Mode of every directory rotor creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file rotor creates.
pub const FILE_MODE: u32 = 0o600;

/// A fault of kind `Unsafe` naming `path`.
pub fn unsafe_path(path: &Path, reason: &str) -> StoreFault {
    StoreFault {
        kind: StoreFaultKind::Unsafe,
        detail: format!("refusing {}: {reason}", path.display()),
    }
}

/// A fault of kind `Io` naming `path` and the operation.
pub fn io_fault(path: &Path, operation: &str, error: &io::Error) -> StoreFault {
    StoreFault {
        kind: StoreFaultKind::Io,
        detail: format!("{operation} {}: {error}", path.display()),
    }
}

/// Checks (and with `create`, makes) the state root: a real directory (not a
/// symlink), owned by this user, not writable by group or others.
pub fn check_root(root: &Path, create: bool) -> Result<(), StoreFault> {
    check_root_on(&OsIo, root, create)
}

/// [`check_root`] over any [`Io`].
pub fn check_root_on(io: &dyn Io, root: &Path, create: bool) -> Result<(), StoreFault> {
    match io.lstat(root) {
        Err(error) if error.kind() == io::ErrorKind::NotFound && create => {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_dir_all_on(io, parent)?;
            }
            make_dir_on(io, root, "creating state directory")?;
            check_root_on(io, root, false)
        }
        Err(error) => Err(io_fault(root, "reading state directory", &error)),
        Ok(meta) => check_dir_meta(io, root, &meta, true),
    }
}

/// Creates the missing ancestors of the state root (outside rotor's own
/// tree: their modes are the user's business, like `mkdir -p`).
fn create_dir_all_on(io: &dyn Io, path: &Path) -> Result<(), StoreFault> {
    match io.lstat(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_dir_all_on(io, parent)?;
            }
            match io.mkdir(path, 0o777) {
                Ok(()) => sync_parent_on(io, path),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(error) => Err(io_fault(path, "creating", &error)),
            }
        }
        Err(error) => Err(io_fault(path, "reading", &error)),
    }
}

/// Makes one directory 0700 and fsyncs its parent, so the new directory
/// (and later the stores in it) survives power loss: a directory entry is
/// durable only once its directory is synced (G6; found by the simulated
/// disk's crash-point check, `rotor_sim::disk::check`). One that already
/// exists is left as it is.
fn make_dir_on(io: &dyn Io, path: &Path, operation: &str) -> Result<(), StoreFault> {
    match io.mkdir(path, DIR_MODE) {
        Ok(()) => sync_parent_on(io, path),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(io_fault(path, operation, &error)),
    }
}

/// Fsyncs the directory that holds `path`.
fn sync_parent_on(io: &dyn Io, path: &Path) -> Result<(), StoreFault> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir_on(io, parent)
}

fn check_dir_meta(io: &dyn Io, path: &Path, meta: &Meta, is_root: bool) -> Result<(), StoreFault> {
    if meta.kind == Kind::Symlink {
        return Err(unsafe_path(
            path,
            "it is a symbolic link; rotor never follows links inside its state directory (G9)",
        ));
    }
    if meta.kind != Kind::Dir {
        return Err(unsafe_path(path, "it is not a directory"));
    }
    let mode = meta.mode;
    if mode & 0o022 != 0 {
        return Err(unsafe_path(
            path,
            &format!(
                "it is writable by group or others (mode {mode:04o}); run `chmod 700 {}`",
                path.display()
            ),
        ));
    }
    let uid = io.euid();
    if is_root && meta.uid != uid {
        return Err(unsafe_path(
            path,
            &format!(
                "it is owned by uid {}, not by this user (uid {uid})",
                meta.uid
            ),
        ));
    }
    Ok(())
}

/// Walks `components` below `root`, refusing symlinks and unsafe modes;
/// with `create`, makes missing directories 0700. Returns the full path, or
/// `None` when a component is missing and `create` is false.
pub fn dir_chain(
    root: &Path,
    components: &[&str],
    create: bool,
) -> Result<Option<PathBuf>, StoreFault> {
    dir_chain_on(&OsIo, root, components, create)
}

/// [`dir_chain`] over any [`Io`].
pub fn dir_chain_on(
    io: &dyn Io,
    root: &Path,
    components: &[&str],
    create: bool,
) -> Result<Option<PathBuf>, StoreFault> {
    let mut path = root.to_path_buf();
    for component in components {
        path.push(component);
        match io.lstat(&path) {
            Ok(meta) => check_dir_meta(io, &path, &meta, false)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                make_dir_on(io, &path, "creating directory")?;
                let meta = io
                    .lstat(&path)
                    .map_err(|e| io_fault(&path, "reading", &e))?;
                check_dir_meta(io, &path, &meta, false)?;
            }
            Err(error) => return Err(io_fault(&path, "reading", &error)),
        }
    }
    Ok(Some(path))
}

fn nofollow(options: &mut OpenOptions) -> &mut OpenOptions {
    options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
}

fn open_error(path: &Path, operation: &str, error: io::Error) -> StoreFault {
    if error.raw_os_error() == Some(libc::ELOOP) {
        unsafe_path(
            path,
            "it is a symbolic link; rotor never follows links inside its state directory (G9)",
        )
    } else {
        io_fault(path, operation, &error)
    }
}

fn check_regular(path: &Path, file: &File) -> Result<(), StoreFault> {
    let meta = file.metadata().map_err(|e| io_fault(path, "reading", &e))?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    Ok(())
}

fn not_regular(path: &Path) -> StoreFault {
    unsafe_path(path, "it is not a regular file")
}

/// Opens `path` for reading without following a symlink. `None` when missing.
pub fn open_read(path: &Path) -> Result<Option<File>, StoreFault> {
    match nofollow(OpenOptions::new().read(true)).open(path) {
        Ok(file) => {
            check_regular(path, &file)?;
            Ok(Some(file))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(open_error(path, "opening", error)),
    }
}

/// Reads the whole file, or `None` when it is missing.
pub fn read_file(path: &Path) -> Result<Option<Vec<u8>>, StoreFault> {
    read_file_on(&OsIo, path)
}

/// [`read_file`] over any [`Io`].
pub fn read_file_on(io: &dyn Io, path: &Path) -> Result<Option<Vec<u8>>, StoreFault> {
    match io.read(path) {
        Ok(None) => Ok(None),
        Ok(Some(Opened::File(bytes))) => Ok(Some(bytes)),
        Ok(Some(Opened::NotRegular)) => Err(not_regular(path)),
        Err(error) => Err(open_error(path, "reading", error)),
    }
}

/// Opens (creating 0600) a lock file for reading and writing, without
/// following a symlink. Lock files are never deleted.
pub fn open_lock_file(path: &Path) -> Result<File, StoreFault> {
    let file = nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE),
    )
    .open(path)
    .map_err(|error| open_error(path, "opening lock file", error))?;
    check_regular(path, &file)?;
    Ok(file)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(io: &dyn Io, target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let count = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}.tmp-{}-{count}", io.pid()))
}

/// Removes the temp files of `target` that a writer left behind when it died
/// between creating and renaming them (kill -9 mid-write): those named
/// `.<name>.tmp-<pid>-<n>` whose process no longer exists. A live writer's
/// temp file is never touched (its process exists; a reused pid only means a
/// leftover stays a while longer). Returns how many were removed; errors
/// are ignored (it is housekeeping, and the next write tries again).
pub fn remove_stale_temps(target: &Path) -> usize {
    remove_stale_temps_on(&OsIo, target)
}

/// [`remove_stale_temps`] over any [`Io`].
pub fn remove_stale_temps_on(io: &dyn Io, target: &Path) -> usize {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return 0;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = io.list_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries {
        let Some(rest) = entry.name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == io.pid() || io.process_exists(pid) {
            continue;
        }
        // Only regular files, never through a symlink (G9).
        if entry.is_file && io.remove(&dir.join(&entry.name)).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Fsyncs a directory, so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreFault> {
    sync_dir_on(&OsIo, dir)
}

/// [`sync_dir`] over any [`Io`].
pub fn sync_dir_on(io: &dyn Io, dir: &Path) -> Result<(), StoreFault> {
    io.sync_dir(dir)
        .map_err(|error| open_error(dir, "syncing directory", error))
}

/// Replaces `target` with `bytes` atomically and durably: temp file in the
/// same directory (0600, `O_EXCL`, no-follow), write, fsync, rename, fsync
/// the directory. `label` names the write for failpoints
/// (`before-rename:<label>`).
pub fn write_atomic(target: &Path, bytes: &[u8], label: &str) -> Result<(), StoreFault> {
    write_atomic_on(&OsIo, target, bytes, label)
}

/// [`write_atomic`] over any [`Io`].
pub fn write_atomic_on(
    io: &dyn Io,
    target: &Path,
    bytes: &[u8],
    label: &str,
) -> Result<(), StoreFault> {
    let temp = temp_path(io, target);
    let result = (|| {
        let mut file = io
            .create_new(&temp, FILE_MODE)
            .map_err(|error| open_error(&temp, "creating temp file", error))?;
        file.write_all(bytes)
            .map_err(|e| io_fault(&temp, "writing", &e))?;
        file.sync().map_err(|e| io_fault(&temp, "syncing", &e))?;
        drop(file);
        failpoint::hit(&format!("before-rename:{label}"));
        io.rename(&temp, target)
            .map_err(|e| io_fault(target, "renaming temp file onto", &e))
    })();
    if result.is_err() {
        let _ = io.remove(&temp);
        return result;
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    sync_dir_on(io, dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_dead_writers_temp_files_are_removed_and_nothing_else_g6_g9() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("state");
        check_root(&root, true).unwrap();
        let target = root.join("auth.json");
        // A process that has ended: its pid names no process now.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let own = std::process::id();
        let plant = |name: &str| fs::write(root.join(name), b"{").unwrap();
        plant(&format!(".auth.json.tmp-{dead}-0"));
        plant(&format!(".auth.json.tmp-{dead}-1"));
        plant(&format!(".auth.json.tmp-{own}-7"));
        plant(".auth.json.tmp-garbage");
        plant(&format!(".other.json.tmp-{dead}-0"));
        plant("auth.json");
        symlink(
            "/etc/hostname",
            root.join(format!(".auth.json.tmp-{dead}-2")),
        )
        .unwrap();
        assert_eq!(remove_stale_temps(&target), 2);
        let mut left: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = vec![
            format!(".auth.json.tmp-{dead}-2"),
            format!(".auth.json.tmp-{own}-7"),
            ".auth.json.tmp-garbage".to_owned(),
            format!(".other.json.tmp-{dead}-0"),
            "auth.json".to_owned(),
        ];
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn created_dirs_are_0700_and_files_0600_g9() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("state");
        check_root(&root, true).unwrap();
        let dir = dir_chain(&root, &["a", "b"], true).unwrap().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f.json");
        write_atomic(&file, b"{}", "test").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read(&file).unwrap(), b"{}");
        drop(open_lock_file(&dir.join("x.lock")).unwrap());
        assert_eq!(mode(&dir.join("x.lock")), 0o600);
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn symlinked_components_and_files_are_refused_g9() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("state");
        check_root(&root, true).unwrap();
        let outside = temp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        symlink(&outside, root.join("locks")).unwrap();
        let fault = dir_chain(&root, &["locks", "oauth-refresh"], true).unwrap_err();
        assert_eq!(fault.kind, StoreFaultKind::Unsafe);
        assert!(fault.detail.contains("symbolic link"), "{}", fault.detail);
        assert!(!outside.join("oauth-refresh").exists());

        fs::write(outside.join("target"), b"x").unwrap();
        symlink(outside.join("target"), root.join("f.lock")).unwrap();
        let fault = open_lock_file(&root.join("f.lock")).unwrap_err();
        assert_eq!(fault.kind, StoreFaultKind::Unsafe, "{}", fault.detail);
        let fault = open_read(&root.join("f.lock")).unwrap_err();
        assert_eq!(fault.kind, StoreFaultKind::Unsafe, "{}", fault.detail);
    }

    #[test]
    fn a_root_writable_by_others_or_a_symlinked_root_is_refused_g9() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("state");
        check_root(&root, true).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let fault = check_root(&root, true).unwrap_err();
        assert!(
            fault.detail.contains("writable by group or others"),
            "{}",
            fault.detail
        );
        let link = temp.path().join("link");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        symlink(&root, &link).unwrap();
        assert_eq!(
            check_root(&link, true).unwrap_err().kind,
            StoreFaultKind::Unsafe
        );
    }
}
