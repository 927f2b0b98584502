//! A reader that goes away (`rotor check --json | head -0`) ends rotor
//! quietly by SIGPIPE, as it ends any command-line tool, instead of a panic
//! message.
mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use common::rotor;

#[test]
fn a_closed_stdout_ends_rotor_by_sigpipe_without_a_panic() {
    // The check simulates its seeds before it prints anything; the read end
    // is closed long before that.
    let mut child = rotor()
        .args(["check", "--seeds", "2000", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.signal(), Some(libc::SIGPIPE), "{output:?}");
}
