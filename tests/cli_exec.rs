//! `rotor exec` end to end: the real binary runs a real program (`sh`) with
//! the token in its environment, passes its exit status through, and starts
//! nothing when no token can be had (the exit codes of `rotor token`).
mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

const PROFILE: &str = "acme:default";

/// `rotor exec --state-dir STATE --profile PROFILE EXTRA… -- PROGRAM…`.
fn exec(state: &Path, extra: &[&str], program: &[&str]) -> Output {
    exec_command(state, extra, program).output().unwrap()
}

fn exec_command(state: &Path, extra: &[&str], program: &[&str]) -> Command {
    let mut command = rotor();
    command
        .args(["exec", "--state-dir"])
        .arg(state)
        .args(["--profile", PROFILE])
        .args(extra)
        .arg("--")
        .args(program)
        .env_remove("ACCESS_TOKEN");
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A state directory logged in with at-0/rt-0 against a fresh server.
fn logged_in(refresh: &str) -> (tempfile::TempDir, std::path::PathBuf, TokenServer) {
    let (temp, state) = state_dir();
    let server = TokenServer::start(refresh, 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    (temp, state, server)
}

#[test]
fn the_token_is_in_access_token_and_a_refresh_happens_like_rotor_token() {
    let (_temp, state, server) = logged_in("rt-0");
    let output = exec(&state, &[], &["sh", "-c", r#"printf %s "$ACCESS_TOKEN""#]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "at-0");
    assert_eq!(server.received(), 0, "a cached token needs no refresh");

    force_expiry(&state, "main", PROFILE);
    let output = exec(&state, &[], &["sh", "-c", r#"printf %s "$ACCESS_TOKEN""#]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "at-1", "the refreshed token");
    assert_eq!(server.exchanges().len(), 1);
    // The rotation was stored: `rotor token` sees the same token.
    assert_eq!(token(&state, "main", PROFILE).access(), "at-1");
}

#[test]
fn env_names_the_variable_and_a_bad_name_is_a_usage_error() {
    let (_temp, state, server) = logged_in("rt-0");
    let script = r#"printf '%s|%s' "$GH_TOKEN" "${ACCESS_TOKEN-unset}""#;
    let output = exec(&state, &["--env", "GH_TOKEN"], &["sh", "-c", script]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "at-0|unset");

    force_expiry(&state, "main", PROFILE);
    let (_marker_dir, marker) = marker();
    for bad in ["1X", "A=B", "A-B", ""] {
        let output = exec(&state, &["--env", bad], &touch(&marker));
        assert_eq!(output.status.code(), Some(2), "--env {bad:?}: {output:?}");
        assert!(!marker.exists(), "--env {bad:?}: the program was started");
    }
    assert_eq!(
        server.received(),
        0,
        "a usage error spends no refresh token"
    );
}

#[test]
fn the_exit_status_passes_through() {
    let (_temp, state, _server) = logged_in("rt-0");
    let output = exec(&state, &[], &["sh", "-c", "exit 7"]);
    assert_eq!(output.status.code(), Some(7), "{output:?}");
    let output = exec(&state, &[], &["true"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    // Killed by signal 9: the caller sees the signal, a shell shows 128+9.
    let output = exec(&state, &[], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(output.status.signal(), Some(9), "{output:?}");
    let rotor_path = env!("CARGO_BIN_EXE_rotor");
    let output = Command::new("sh")
        .args([
            "-c",
            r#""$0" exec --state-dir "$1" --profile "$2" -- sh -c 'kill -9 $$'; echo "status=$?""#,
            rotor_path,
        ])
        .arg(&state)
        .arg(PROFILE)
        .output()
        .unwrap();
    assert_eq!(stdout(&output).trim(), "status=137", "{output:?}");

    // Not found, not executable: 127 and 126, like a shell.
    let output = exec(&state, &[], &["/nonexistent/program"]);
    assert_eq!(output.status.code(), Some(127), "{output:?}");
    let output = exec(&state, &[], &["/"]);
    assert_eq!(output.status.code(), Some(126), "{output:?}");
}

#[test]
fn the_token_is_never_in_the_programs_argv() {
    let (_temp, state, _server) = logged_in("rt-0");
    // The program's own argv, as the program and /proc see it.
    let script = r#"echo "$0 $@"; tr '\0' ' ' < /proc/$$/cmdline"#;
    let output = exec(&state, &[], &["sh", "-c", script, "argv0", "a", "b"]);
    assert!(output.status.success(), "{output:?}");
    let printed = stdout(&output);
    assert!(printed.contains("argv0 a b"), "{printed}");
    assert!(!printed.contains("at-0"), "the token is in argv: {printed}");
    // Nor in stderr or anywhere rotor prints.
    assert!(!String::from_utf8_lossy(&output.stderr).contains("at-0"));
}

/// A marker file path in a fresh temp dir, and the program that would
/// create it.
fn marker() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("started");
    (dir, path)
}

fn touch(marker: &Path) -> Vec<&str> {
    vec!["touch", marker.to_str().unwrap()]
}

/// Runs `rotor exec` with a program that would create a marker file;
/// asserts the exit code and that nothing was started.
fn refused(state: &Path, code: i32, kind: &str) -> String {
    let (_dir, marker) = marker();
    let output = exec(state, &[], &touch(&marker));
    assert_eq!(output.status.code(), Some(code), "{kind}: {output:?}");
    assert!(!marker.exists(), "{kind}: the program was started");
    assert!(output.stdout.is_empty(), "{kind}: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn no_credential_or_logged_out_is_exit_3_and_nothing_starts() {
    let (_temp, state) = state_dir();
    let message = refused(&state, 3, "no credential");
    assert!(message.contains("rotor exec: no credential"), "{message}");

    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    let output = rotor()
        .args(["logout", "--state-dir"])
        .arg(&state)
        .args(["--profile", PROFILE])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let message = refused(&state, 3, "logged out");
    assert!(message.contains("logged out"), "{message}");
    assert_eq!(server.received(), 0);
}

#[test]
fn needs_reauth_is_exit_4_and_nothing_starts() {
    // The server knows another refresh token: ours gets invalid_grant.
    let (_temp, state, server) = logged_in("rt-other");
    force_expiry(&state, "main", PROFILE);
    let message = refused(&state, 4, "needs reauth");
    assert!(message.contains("needs a new login"), "{message}");
    assert_eq!(server.received(), 1);
}

#[test]
fn in_doubt_is_exit_5_then_the_fence_is_exit_4_and_nothing_starts() {
    let (_temp, state, server) = logged_in("rt-0");
    force_expiry(&state, "main", PROFILE);
    server.set_mode(Mode::ServerErrorNoBody);
    refused(&state, 5, "in doubt");
    server.set_mode(Mode::Normal);
    refused(&state, 4, "fenced");
    assert_eq!(
        server.received(),
        1,
        "G7: the fenced token was not presented again"
    );
}

#[test]
fn an_unreachable_endpoint_is_exit_6_and_nothing_starts() {
    let (_temp, state) = state_dir();
    // A port nobody listens on: connection refused, provably not sent.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    login(&state, "main", PROFILE, &url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    refused(&state, 6, "transient");
    assert!(read_store(&state, "main").fences.is_empty(), "G7: no fence");
}
