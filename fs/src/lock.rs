//! Locks: the refresh lock (in-process single-flight, then `flock` on
//! `<state>/locks/oauth-refresh/<key>.lock`) and the store sidecar locks.
//!
//! Both are `std::fs::File::lock` (flock) on files that are never deleted, so
//! the OS releases them when their holder dies (kill -9 included) and never
//! while it lives: no steal, no expiry (G8). Waits are bounded: a contended
//! lock is waited for on a helper thread blocked in `flock`, until the
//! deadline (module `lock_wait`). While held, the lock file
//! carries the holder's pid, process start time, host, agent and since when,
//! as one JSON line: for diagnostics only (`rotor status`, lock-timeout
//! messages), never for deciding anything.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rotor_kernel::driver::RefreshLock;
use rotor_kernel::{LockFailure, LockKey, StoreFault};

use crate::failpoint;
use crate::io::{HeldFileLock, Io, OsIo};
use crate::lock_wait;
use crate::paths::Layout;
use crate::safe_fs;
use crate::single_flight::SingleFlight;

/// Epoch milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Who holds a lock, as written into the lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderMeta {
    /// Process id.
    pub pid: u32,
    /// Process start time (clock ticks after boot, from `/proc`), to tell a
    /// reused pid from the original holder.
    pub start_ticks: Option<u64>,
    /// Host name.
    pub host: String,
    /// Agent id.
    pub agent: String,
    /// When the lock was taken, epoch ms.
    pub since_ms: i64,
}

/// This machine's host name.
pub fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // on success (or truncates, which we tolerate by stopping at the length).
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return "unknown-host".into();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// Start time of process `pid` in clock ticks after boot (Linux `/proc`).
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22; the command name (field 2) may contain spaces, so count
    // from the closing parenthesis.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// Whether a process with id `pid` exists on this machine (it may be a
/// later process that reuses the id; see [`process_start_ticks`]).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let signalled = unsafe { libc::kill(pid, 0) } == 0;
    signalled || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This process's start time ([`process_start_ticks`]), read from `/proc`
/// once per process: it never changes, and every store write records it.
fn own_start_ticks(pid: u32) -> Option<u64> {
    static OWN: std::sync::Mutex<Option<(u32, Option<u64>)>> = std::sync::Mutex::new(None);
    let mut own = OWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match *own {
        // Keyed by pid: a forked child reads its own.
        Some((cached, ticks)) if cached == pid => ticks,
        _ => {
            let ticks = process_start_ticks(pid);
            *own = Some((pid, ticks));
            ticks
        }
    }
}

impl HolderMeta {
    /// This process, for `agent`, from now on.
    pub fn current(agent: &str) -> HolderMeta {
        let pid = std::process::id();
        HolderMeta {
            pid,
            start_ticks: own_start_ticks(pid),
            host: host_name(),
            agent: agent.to_owned(),
            since_ms: now_ms(),
        }
    }

    fn to_json(&self) -> String {
        let mut line = serde_json::json!({
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "host": self.host,
            "agent": self.agent,
            "since_ms": self.since_ms,
        })
        .to_string();
        line.push('\n');
        line
    }

    /// Parses a lock file's content; `None` when empty or garbled.
    pub fn parse(bytes: &[u8]) -> Option<HolderMeta> {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        Some(HolderMeta {
            pid: u32::try_from(value.get("pid")?.as_u64()?).ok()?,
            start_ticks: value.get("start_ticks").and_then(|v| v.as_u64()),
            host: value.get("host")?.as_str()?.to_owned(),
            agent: value.get("agent")?.as_str()?.to_owned(),
            since_ms: value.get("since_ms")?.as_i64()?,
        })
    }

    /// Whether the holder process still runs (`None` when it is on another
    /// host and cannot be checked).
    pub fn is_alive(&self) -> Option<bool> {
        if self.host != host_name() {
            return None;
        }
        if !process_exists(self.pid) {
            return Some(false);
        }
        Some(match (self.start_ticks, process_start_ticks(self.pid)) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        })
    }

    /// "pid 12 (agent a on host h), for 2.5 s".
    pub fn describe(&self, now_ms: i64) -> String {
        let held_ms = now_ms.saturating_sub(self.since_ms).max(0);
        format!(
            "pid {} (agent {} on {}), for {}.{} s",
            self.pid,
            self.agent,
            self.host,
            held_ms / 1000,
            (held_ms % 1000) / 100
        )
    }
}

/// A held `flock`; dropping it clears the holder line and unlocks.
#[derive(Debug)]
pub struct HeldLock {
    file: File,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // Diagnostics only: a crash leaves the line, and `rotor status` then
        // sees the lock free with a stale line.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Why a bounded wait for a `flock` ended without it.
#[derive(Debug)]
pub struct LockWait {
    /// How long it waited.
    pub waited_ms: u64,
    /// The holder, as its lock file says.
    pub holder: Option<HolderMeta>,
    /// Set when the lock failed with an error rather than a timeout.
    pub error: Option<StoreFault>,
}

/// Takes an exclusive `flock` on `path` (created 0600, no-follow), waiting
/// at most `wait_ms_max`, and writes `meta` into it.
pub fn lock_exclusive(
    path: &Path,
    wait_ms_max: u64,
    meta: &HolderMeta,
) -> Result<HeldLock, LockWait> {
    let start = Instant::now();
    let waited = |start: Instant| start.elapsed().as_millis() as u64;
    let file = safe_fs::open_lock_file(path).map_err(|fault| LockWait {
        waited_ms: waited(start),
        holder: None,
        error: Some(fault),
    })?;
    let file = match file.try_lock() {
        Ok(()) => file,
        Err(TryLockError::WouldBlock) => {
            let deadline = start + Duration::from_millis(wait_ms_max);
            lock_wait::wait_for_lock(path, file, deadline).map_err(|error| LockWait {
                waited_ms: waited(start),
                holder: if error.is_none() {
                    read_holder(path)
                } else {
                    None
                },
                error: error.map(|error| safe_fs::io_fault(path, "locking", &error)),
            })?
        }
        Err(TryLockError::Error(error)) => {
            return Err(LockWait {
                waited_ms: waited(start),
                holder: None,
                error: Some(safe_fs::io_fault(path, "locking", &error)),
            })
        }
    };
    let held = HeldLock { file };
    let mut meta = meta.clone();
    meta.since_ms = now_ms();
    let line = meta.to_json();
    let _ = held.file.set_len(0);
    let _ = held.file.write_at(line.as_bytes(), 0);
    let _ = (&held.file).flush();
    Ok(held)
}

/// The holder line of a lock file, if any.
pub fn read_holder(path: &Path) -> Option<HolderMeta> {
    let bytes = safe_fs::read_file(path).ok()??;
    HolderMeta::parse(&bytes)
}

/// What `rotor status` reports about one lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockState {
    /// No lock file.
    Absent,
    /// Nobody holds it; `last` is a stale holder line (a holder that crashed).
    Free {
        /// Stale holder line.
        last: Option<HolderMeta>,
    },
    /// Held, by the process its line names (if the line is readable yet).
    Held {
        /// The holder.
        holder: Option<HolderMeta>,
    },
}

/// Probes a lock file without blocking anyone for long (a shared `flock`
/// tried once and dropped at once).
pub fn inspect(path: &Path) -> Result<LockState, StoreFault> {
    let Some(file) = safe_fs::open_read(path)? else {
        return Ok(LockState::Absent);
    };
    let holder = read_holder(path);
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(LockState::Free { last: holder })
        }
        Err(TryLockError::WouldBlock) => Ok(LockState::Held { holder }),
        Err(TryLockError::Error(error)) => Err(safe_fs::io_fault(path, "probing lock", &error)),
    }
}

/// The fs host's refresh lock: the in-process [`SingleFlight`] slot for the
/// key, then an exclusive `flock` on the key's lock file (SPEC §4). The wait
/// budget covers both.
#[derive(Debug)]
pub struct FsRefreshLock {
    io: Arc<dyn Io>,
    layout: Layout,
    flight: SingleFlight,
    meta: HolderMeta,
    held: HashMap<LockKey, Box<dyn HeldFileLock>>,
}

impl FsRefreshLock {
    /// A refresh lock over `layout`'s lock directory, sharing `flight` with
    /// the other resolves of this process.
    pub fn new(layout: Layout, flight: SingleFlight, agent: &str) -> FsRefreshLock {
        FsRefreshLock::with_io(Arc::new(OsIo), layout, flight, agent)
    }

    /// The same lock over another [`Io`].
    pub fn with_io(
        io: Arc<dyn Io>,
        layout: Layout,
        flight: SingleFlight,
        agent: &str,
    ) -> FsRefreshLock {
        FsRefreshLock {
            io,
            layout,
            flight,
            meta: HolderMeta::current(agent),
            held: HashMap::new(),
        }
    }

    fn lock_path(&self, key: &LockKey) -> Result<PathBuf, StoreFault> {
        safe_fs::dir_chain_on(
            self.io.as_ref(),
            self.layout.root(),
            &Layout::LOCK_DIR_COMPONENTS,
            true,
        )?;
        Ok(self.layout.lock_path(key))
    }
}

impl RefreshLock for FsRefreshLock {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        let start = Instant::now();
        self.flight.acquire(key, wait_ms_max)?;
        let path = match self.lock_path(key) {
            Ok(path) => path,
            Err(fault) => {
                self.flight.release(key);
                return Err(LockFailure {
                    waited_ms: start.elapsed().as_millis() as u64,
                    holder: None,
                    error: Some(fault.detail),
                });
            }
        };
        let remaining_ms = wait_ms_max.saturating_sub(start.elapsed().as_millis() as u64);
        match self.io.lock_exclusive(&path, remaining_ms, &self.meta) {
            Ok(held) => {
                tracing::debug!(lock = %key, "refresh lock acquired");
                self.held.insert(key.clone(), held);
                failpoint::hit("after-lock");
                Ok(())
            }
            Err(wait) => {
                self.flight.release(key);
                let now = now_ms();
                tracing::warn!(lock = %key, waited_ms = wait.waited_ms, "refresh lock not acquired");
                Err(LockFailure {
                    waited_ms: start.elapsed().as_millis() as u64,
                    holder: wait.holder.map(|holder| {
                        format!("{} (lock file {})", holder.describe(now), path.display())
                    }),
                    error: wait.error.map(|fault| fault.detail),
                })
            }
        }
    }

    fn release(&mut self, key: &LockKey) {
        failpoint::hit("before-release");
        if self.held.remove(key).is_some() {
            self.flight.release(key);
            tracing::debug!(lock = %key, "refresh lock released");
        }
    }
}

impl Drop for FsRefreshLock {
    fn drop(&mut self) {
        for (key, held) in self.held.drain() {
            drop(held);
            self.flight.release(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_meta_round_trips_and_describes_itself() {
        let meta = HolderMeta::current("worker");
        let parsed = HolderMeta::parse(meta.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, meta);
        assert_eq!(parsed.is_alive(), Some(true));
        let text = meta.describe(meta.since_ms + 2_500);
        assert!(
            text.contains(&format!("pid {}", meta.pid)) && text.contains("2.5 s"),
            "{text}"
        );
        assert_eq!(HolderMeta::parse(b""), None);
    }

    #[test]
    fn a_held_lock_excludes_and_names_its_holder_g8_g10() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("k.lock");
        let meta = HolderMeta::current("a");
        let held = lock_exclusive(&path, 0, &meta).unwrap();
        // A second open file description in the same process is excluded too.
        let wait = lock_exclusive(&path, 30, &HolderMeta::current("b")).unwrap_err();
        assert_eq!(wait.holder.as_ref().map(|h| h.agent.as_str()), Some("a"));
        assert!(matches!(
            inspect(&path).unwrap(),
            LockState::Held { holder: Some(_) }
        ));
        drop(held);
        // The abandoned wait of "b" takes the lock for a moment and must
        // then release it and end (lock_wait's rule 1): the lock ends free,
        // its holder line cleared.
        let give_up = Instant::now() + Duration::from_secs(10);
        while lock_wait::blocked_helpers(&path) > 0 {
            assert!(Instant::now() < give_up, "an abandoned wait never ended");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(inspect(&path).unwrap(), LockState::Free { last: None });
        drop(lock_exclusive(&path, 0, &meta).unwrap());
    }
}
