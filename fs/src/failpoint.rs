//! Test-only failpoints: crash or freeze the process at a named protocol step.
//!
//! **For tests only.** Compiled in so that the end-to-end tests can kill the
//! real `rotor` binary at each step, but inert unless the environment
//! variable `ROTOR_FAILPOINT` is set, and nothing sets it but a test.
//!
//! `ROTOR_FAILPOINT=<step>:<action>[,<step>:<action>…]` where `<action>` is
//! - `abort`: `std::process::abort()` on the spot (no destructors run, like a
//!   crash; the OS drops the process's `flock`s);
//! - `pause`: create the file named by `ROTOR_FAILPOINT_MARKER` (if set),
//!   then sleep forever, so the test can `kill -9` the process at that step;
//! - `hold`: create the marker file, then wait until the test deletes it and
//!   go on, so the test can act on the world at that step (kill the holder's
//!   database session, start another process) and then let it continue.
//!
//! Steps (see `lib.rs` and `store.rs` for where each is hit):
//! `after-lock`, `before-write:<mutation>`, `after-write:<mutation>`,
//! `before-rename:<mutation>`, `before-call`, `after-call`, `before-release`,
//! where `<mutation>` is one of `adopt`, `put-fence`, `commit`, `mirror`,
//! `clear-fence`, `mark-needs-reauth`, `login`, `logout`, `update`.
//! The PostgreSQL host (`rotor-pg`) hits the same steps (a write's
//! `before-write` is just before its commit) and `before-fence`, before the
//! conditional fence write touches its session.

use std::sync::OnceLock;

/// The environment variable that arms failpoints.
pub const ENV: &str = "ROTOR_FAILPOINT";
/// The environment variable naming the marker file `pause` creates.
pub const MARKER_ENV: &str = "ROTOR_FAILPOINT_MARKER";

fn armed() -> &'static [(String, String)] {
    static ARMED: OnceLock<Vec<(String, String)>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var(ENV)
            .unwrap_or_default()
            .split(',')
            .filter_map(|item| {
                let (step, action) = item.trim().rsplit_once(':')?;
                Some((step.to_owned(), action.to_owned()))
            })
            .collect()
    })
}

/// Hits the failpoint `step`: does nothing unless `ROTOR_FAILPOINT` arms it.
pub fn hit(step: &str) {
    let Some((_, action)) = armed().iter().find(|(armed, _)| armed == step) else {
        return;
    };
    eprintln!(
        "rotor: test failpoint {step} reached in pid {} ({action})",
        std::process::id()
    );
    match action.as_str() {
        "abort" => std::process::abort(),
        "pause" => {
            if let Ok(marker) = std::env::var(MARKER_ENV) {
                let _ = std::fs::write(marker, step);
            }
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        "hold" => {
            let Ok(marker) = std::env::var(MARKER_ENV) else {
                return;
            };
            let _ = std::fs::write(&marker, step);
            // Test-only: a short poll is fine here, nothing ships with it.
            while std::path::Path::new(&marker).exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        other => eprintln!("rotor: unknown failpoint action {other:?} ignored"),
    }
}

/// The failpoint label of a mutation (`put-fence`, `commit`, …).
pub fn mutation_label(mutation: &rotor_kernel::Mutation) -> &'static str {
    use rotor_kernel::Mutation::*;
    match mutation {
        Adopt { .. } => "adopt",
        PutFence { .. } => "put-fence",
        Commit { .. } => "commit",
        Mirror { .. } => "mirror",
        SettleFence { .. } => "settle-fence",
        ClearFence { .. } => "clear-fence",
        MarkNeedsReauth { .. } => "mark-needs-reauth",
        Login { .. } => "login",
        Logout { .. } => "logout",
    }
}
