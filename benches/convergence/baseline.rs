//! The baseline: the seed system's lock discipline (docs/lineage.md §3.4
//! and §6), rebuilt in bench code only, doing the same work as rotor (read
//! the store, check freshness, call the same endpoint, write atomically).
//!
//! - Lock = a file created with `O_CREAT|O_EXCL`, holding
//!   `{"pid": …, "createdAt": "<ISO-8601>"}`, deleted on release (§6.1, §6.4).
//! - Up to `retries + 1` attempts; after a failed attempt `k` (not the last)
//!   sleep `delay(k) = min(max, round(base · j))`,
//!   `base = min(max, max(min, min · factor^k))`, `j` uniform in `[1, 2)`.
//!   Retries 10, factor 2, min 100 ms, max 10 s (§7).
//! - Stale (§6.2) when the holder pid is dead, or `createdAt` is older than
//!   `stale` (refresh lock 180 s, store lock 30 s) or unparseable, else by the
//!   file's mtime; a stale lock is removed and the attempt retried at once.
//! - Order (§3.4): refresh lock, then the store lock, both held across the
//!   body: re-read the store; usable: done (a peer refreshed); else call the
//!   endpoint and write the rotated credential atomically.
//!
//! Two liberties, neither changing the cost: the refresh lock is named by
//! rotor's injective `LockKey` instead of the seed's NUL-joined hash, and
//! both lock files end in `.excl.lock` so that they never meet the `flock`
//! sidecars rotor's `login` leaves in the same state directory.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngExt;
use rotor_fs::{safe_fs, AgentId, FsEndpoint, Layout};
use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{LockKey, Secret, StoreDoc};

/// `retries`, `factor`, `minTimeout`, `maxTimeout`, `stale` of §6/§7.
#[derive(Clone, Copy, Debug)]
pub struct LockOptions {
    pub retries: u32,
    pub factor: f64,
    pub min_timeout_ms: u64,
    pub max_timeout_ms: u64,
    pub stale_ms: u64,
}

/// `OAUTH_REFRESH_LOCK_OPTIONS` at merge.
pub const REFRESH_LOCK: LockOptions = LockOptions {
    retries: 10,
    factor: 2.0,
    min_timeout_ms: 100,
    max_timeout_ms: 10_000,
    stale_ms: 180_000,
};

/// `AUTH_STORE_LOCK_OPTIONS` at merge.
pub const STORE_LOCK: LockOptions = LockOptions {
    stale_ms: 30_000,
    ..REFRESH_LOCK
};

/// The refresh margin rotor uses by default, applied to the baseline too so
/// both refresh the same tokens.
pub const REFRESH_MARGIN_MS: i64 = 300_000;

/// `delay(k)` of §6.1 with jitter `j` in `[1, 2)`.
pub fn delay_ms(options: &LockOptions, attempt: u32, jitter: f64) -> u64 {
    let min = options.min_timeout_ms as f64;
    let max = options.max_timeout_ms as f64;
    let base = (min * options.factor.powi(attempt as i32))
        .max(min)
        .min(max);
    (base * jitter).round().min(max) as u64
}

/// A held exclusive lock file; dropping it closes and deletes it (§6.4).
pub struct ExclusiveLock {
    path: PathBuf,
    _file: File,
}

impl Drop for ExclusiveLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// §6.1: exclusive create, stale check, backoff with jitter. `Err` is the
/// seed's `file lock timeout for <path>`.
pub fn acquire(
    lock_path: &Path,
    options: &LockOptions,
    rng: &mut impl RngExt,
) -> Result<ExclusiveLock, String> {
    if let Some(parent) = lock_path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
    }
    for attempt in 0..=options.retries {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(lock_path)
        {
            Ok(mut file) => {
                let payload = format!(
                    "{{\n  \"pid\": {},\n  \"createdAt\": \"{}\"\n}}\n",
                    std::process::id(),
                    iso8601(epoch_ms())
                );
                file.write_all(payload.as_bytes())
                    .map_err(|e| format!("write {}: {e}", lock_path.display()))?;
                return Ok(ExclusiveLock {
                    path: lock_path.to_owned(),
                    _file: file,
                });
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                if is_stale(lock_path, options.stale_ms) {
                    let _ = fs::remove_file(lock_path);
                    continue;
                }
                if attempt == options.retries {
                    break;
                }
                let jitter = rng.random_range(1.0..2.0);
                std::thread::sleep(Duration::from_millis(delay_ms(options, attempt, jitter)));
            }
            Err(error) => return Err(format!("open {}: {error}", lock_path.display())),
        }
    }
    Err(format!("file lock timeout for {}", lock_path.display()))
}

/// §6.2: dead pid, old or unparseable `createdAt`, else the mtime.
fn is_stale(lock_path: &Path, stale_ms: u64) -> bool {
    let now = epoch_ms();
    let payload = fs::read(lock_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let pid = payload.as_ref().and_then(|v| v.get("pid")?.as_u64());
    let created = payload
        .as_ref()
        .and_then(|v| v.get("createdAt")?.as_str().map(str::to_owned));
    if let (Some(pid), Some(created)) = (pid, created) {
        if !pid_alive(pid) {
            return true;
        }
        return match parse_iso8601(&created) {
            Some(at) => now - at > stale_ms as i64,
            None => true,
        };
    }
    match fs::metadata(lock_path).and_then(|m| m.modified()) {
        Ok(modified) => {
            let age = SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default();
            age.as_millis() > u128::from(stale_ms)
        }
        Err(_) => true,
    }
}

fn pid_alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only probes for existence and permission.
    let probed = unsafe { libc::kill(pid, 0) };
    probed == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, like JavaScript's `toISOString`.
pub fn iso8601(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1_000 % 60,
        ms_of_day % 1_000
    )
}

/// Parses what [`iso8601`] writes.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[23] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second, milli) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1_000 + milli)
}

/// One agent's view for the baseline: the main store of a state directory.
pub struct BaselineHost {
    store_path: PathBuf,
    store_lock_path: PathBuf,
    refresh_lock_path: PathBuf,
    profile: String,
}

/// What a baseline resolve returns: the access token and how it got it.
pub struct Held {
    pub access: String,
    pub outcome: &'static str,
}

impl BaselineHost {
    /// The main agent of `state_dir`, for `profile` of `provider`.
    pub fn new(state_dir: &Path, provider: &str, profile: &str) -> BaselineHost {
        let layout = Layout::new(state_dir);
        let store_path = layout.store_path(&AgentId::main());
        let key = LockKey::new(provider, profile);
        BaselineHost {
            store_lock_path: PathBuf::from(format!("{}.excl.lock", store_path.display())),
            store_path,
            refresh_lock_path: layout
                .lock_dir()
                .join(format!("{}.excl.lock", key.as_str())),
            profile: profile.to_owned(),
        }
    }

    fn read(&self) -> Result<StoreDoc, String> {
        let bytes = safe_fs::read_file(&self.store_path)
            .map_err(|fault| fault.detail)?
            .ok_or("no store")?;
        StoreDoc::from_json(&bytes).map_err(|e| e.to_string())
    }

    fn usable(&self, doc: &StoreDoc) -> Option<String> {
        let credential = doc.profiles.get(&self.profile)?;
        credential
            .is_usable(epoch_ms(), REFRESH_MARGIN_MS as u64)
            .then(|| credential.access.as_ref().map(|a| a.expose().to_owned()))?
    }

    /// §3.1 step 6, then §3.4 under both locks.
    pub fn resolve(&self, rng: &mut impl RngExt) -> Result<Held, String> {
        let doc = self.read()?;
        if let Some(access) = self.usable(&doc) {
            return Ok(Held {
                access,
                outcome: "cached",
            });
        }
        let _refresh = acquire(&self.refresh_lock_path, &REFRESH_LOCK, rng)?;
        let _store = acquire(&self.store_lock_path, &STORE_LOCK, rng)?;
        let mut doc = self.read()?;
        if let Some(access) = self.usable(&doc) {
            return Ok(Held {
                access,
                outcome: "adopted-peer",
            });
        }
        let credential = doc.profiles.get_mut(&self.profile).ok_or("no credential")?;
        let grant = FsEndpoint
            .refresh(credential, 30_000)
            .map_err(|e| format!("endpoint: {e}"))?;
        let access = grant.access.expose().to_owned();
        credential.access = Some(Secret::new(access.clone()));
        if let Some(refresh) = grant.refresh {
            credential.refresh = Some(refresh);
        }
        credential.expires_at_ms =
            Some(epoch_ms() + grant.expires_in_ms.unwrap_or(3_600_000) as i64);
        credential.generation += 1;
        safe_fs::write_atomic(&self.store_path, &doc.to_json(), "baseline")
            .map_err(|fault| fault.detail)?;
        Ok(Held {
            access,
            outcome: "refreshed",
        })
    }
}

/// Checks the arithmetic above against the seed's numbers; the bench runs
/// it first (a harness-less bench has no `#[test]`s).
pub fn self_check() {
    // §6.3: jitter-free floor 42.7 s, ceiling with jitter 52.6 s.
    let floor: u64 = (0..10).map(|k| delay_ms(&REFRESH_LOCK, k, 1.0)).sum();
    let ceiling: u64 = (0..10).map(|k| delay_ms(&REFRESH_LOCK, k, 1.999_9)).sum();
    assert_eq!(floor, 42_700, "baseline delay floor differs from seed §6.3");
    assert_eq!(
        ceiling, 52_600,
        "baseline delay ceiling differs from seed §6.3"
    );
    for ms in [0, 1_700_000_000_123, 951_782_400_000, 4_102_444_799_999] {
        assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms), "{}", iso8601(ms));
    }
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
}
