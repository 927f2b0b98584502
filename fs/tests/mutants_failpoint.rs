//! A test written for mutants `cargo mutants` found alive in
//! `fs/src/failpoint.rs` (docs/mutants.md): `ROTOR_FAILPOINT` stops the
//! process at exactly the named step, and the step names are the ones the
//! crash tests (`tests/crash.rs`) arm, such as `before-write:login`. If a
//! failpoint did not fire, the crash tests would pass without ever crashing
//! at the step they claim to test (G6, G7). Alone in its file: it sets the
//! process-wide environment, which `failpoint` reads once.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rotor_fs::failpoint;
use rotor_fs::Rotor;
use rotor_kernel::Credential;

const CHILD: &str = "ROTOR_MUTANTS_FAILPOINT_CHILD";

fn wait_for(marker: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the failpoint never fired");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn failpoints_stop_at_exactly_the_named_step_g6_g7() {
    if std::env::var_os(CHILD).is_some() {
        // The child run below: this step is armed to abort.
        failpoint::hit("after-lock");
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let marker = temp.path().join("marker");
    std::env::set_var(failpoint::ENV, "before-call:hold,before-write:login:hold");
    std::env::set_var(failpoint::MARKER_ENV, &marker);

    // A step that is not armed passes through.
    failpoint::hit("after-call");
    failpoint::hit("before-write:logout");
    assert!(!marker.exists());

    // `hold` stops at its step until the test lets it go.
    let held = std::thread::spawn(|| failpoint::hit("before-call"));
    wait_for(&marker);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "before-call");
    std::thread::sleep(Duration::from_millis(20));
    assert!(!held.is_finished(), "hold went on before it was released");
    std::fs::remove_file(&marker).unwrap();
    held.join().unwrap();

    // A login's store write is the step `before-write:login`.
    let state = temp.path().join("state");
    let login = std::thread::spawn(move || {
        let rotor = Rotor::open(state).unwrap();
        let expires = rotor_fs::lock::now_ms() + 3_600_000;
        rotor
            .login("main", "p", Credential::oauth("acme", "at", "rt", expires))
            .unwrap()
    });
    wait_for(&marker);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "before-write:login"
    );
    std::fs::remove_file(&marker).unwrap();
    assert!(login.join().unwrap() > 0);

    // `abort` kills the process at its step, as a crash would.
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "failpoints_stop_at_exactly_the_named_step_g6_g7",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env(failpoint::ENV, "after-lock:abort")
        .env_remove(failpoint::MARKER_ENV)
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}");
}
