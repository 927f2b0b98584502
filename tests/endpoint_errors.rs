//! How endpoint failures end, through the real binary: provably-not-sent
//! failures clear the fence and leave the token usable; unknown outcomes keep
//! the fence so the next caller reports NeedsReauth (SPEC §7, G7, G1); the
//! refresh command protocol; a lock timeout names its holder (G8, G10).
mod common;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const PROFILE: &str = "acme:default";

/// Points the stored credential's token URL somewhere else.
fn set_token_url(state: &std::path::Path, url: &str) {
    store(state, "main")
        .update("update", |doc| {
            let credential = doc.profiles.get_mut(PROFILE).unwrap();
            credential.extra.get_mut("endpoint").unwrap()["token_url"] = url.into();
            ((), true)
        })
        .unwrap();
}

fn token_with(state: &std::path::Path, extra: &[&str]) -> TokenRun {
    finish(spawn_token(state, "main", PROFILE, extra))
}

#[test]
fn connection_refused_is_transient_and_spends_nothing_g1() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    set_token_url(&state, &url);
    let run = token_with(&state, &[]);
    assert_eq!(run.code, Some(6), "{run:?}");
    assert!(
        read_store(&state, "main").fences.is_empty(),
        "not sent: no fence kept"
    );
    set_token_url(&state, &server.url);
    assert_eq!(
        token_with(&state, &[]).access(),
        "at-1",
        "the token was still good"
    );
    server.assert_each_token_presented_once();
}

#[test]
fn tls_handshake_failure_is_transient_and_spends_nothing_g1() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    // A plain-text server where the URL says https: the handshake fails.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/token", plain.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in plain.incoming().flatten() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    set_token_url(&state, &url);
    let run = token_with(&state, &["--call-deadline-ms", "5000"]);
    assert_eq!(run.code, Some(6), "TLS failure must be not-sent: {run:?}");
    assert!(read_store(&state, "main").fences.is_empty());
    set_token_url(&state, &server.url);
    assert_eq!(token_with(&state, &[]).access(), "at-1");
}

#[test]
fn a_500_without_body_is_in_doubt_and_fences_g7() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    server.set_mode(Mode::ServerErrorNoBody);
    let run = token_with(&state, &[]);
    assert_eq!(run.code, Some(5), "unknown outcome: {run:?}");
    assert_eq!(run.json["error"]["kind"], "in_doubt");
    server.set_mode(Mode::Normal);
    let received = server.received();
    let next = token_with(&state, &[]);
    assert_eq!(
        next.code,
        Some(4),
        "G7: the next caller sees the fence: {next:?}"
    );
    assert_eq!(
        server.received(),
        received,
        "G7: the fenced token was not presented again"
    );
}

#[test]
fn a_reused_token_marks_needs_reauth_and_login_clears_it_g7() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-other", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    let run = token_with(&state, &[]);
    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(read_store(&state, "main").profiles[PROFILE].needs_reauth);
    let status = rotor()
        .args(["status", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("NEEDS REAUTH"));
    // A new login installs a new family and clears the mark.
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    assert_eq!(token_with(&state, &[]).access(), "at-1");
}

#[test]
fn refresh_command_protocol() {
    let (temp, state) = state_dir();
    let script = temp.path().join("refresh.sh");
    // Reads the credential JSON on stdin, answers with a token response that
    // proves it saw the refresh token.
    std::fs::write(
        &script,
        "#!/bin/sh\ninput=$(cat)\ncase \"$input\" in\n  *'\"refresh\":\"rt-0\"'*) echo '{\"access_token\":\"cmd-at-1\",\"refresh_token\":\"cmd-rt-1\",\"expires_in\":600}' ;;\n  *) echo '{\"error\":\"invalid_grant\"}'; exit 1 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let tokens = r#"{"access_token":"at-0","refresh_token":"rt-0","expires_in":3600}"#;
    let output = run_with_stdin(
        rotor()
            .args(["login", "--state-dir"])
            .arg(&state)
            .args([
                "--profile",
                PROFILE,
                "--provider",
                "acme",
                "--refresh-command",
            ])
            .arg(&script),
        tokens,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    force_expiry(&state, "main", PROFILE);
    let run = token_with(&state, &[]);
    assert_eq!(run.access(), "cmd-at-1", "{run:?}");
    let stored = read_store(&state, "main");
    assert_eq!(
        stored.profiles[PROFILE].refresh.as_ref().unwrap().expose(),
        "cmd-rt-1"
    );
    // The next refresh presents cmd-rt-1, which the script refuses as reused.
    force_expiry(&state, "main", PROFILE);
    let run = token_with(&state, &[]);
    assert_eq!(
        run.code,
        Some(4),
        "invalid_grant from a command is a reuse: {run:?}"
    );
}

#[test]
fn lock_timeout_names_the_holder_and_status_shows_it_g8_g10() {
    let (temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    let marker = temp.path().join("marker");
    let mut holder = rotor()
        .args(["token", "--state-dir"])
        .arg(&state)
        .args(["--profile", PROFILE])
        .env("ROTOR_FAILPOINT", "after-lock:pause")
        .env("ROTOR_FAILPOINT_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "holder never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // A 300 ms wait is only a valid policy with a short call deadline and
    // store-lock wait (G8: the wait must outlast the longest legitimate hold).
    let short = [
        "--lock-wait-ms",
        "300",
        "--call-deadline-ms",
        "50",
        "--store-lock-wait-ms",
        "10",
    ];
    let run = token_with(&state, &short);
    assert_eq!(run.code, Some(8), "{run:?}");
    assert!(
        run.stderr.contains(&format!("pid {}", holder.id())),
        "G10: {}",
        run.stderr
    );
    let status = status_json(&state);
    let lock = &status["refresh_locks"][0];
    assert_eq!(lock["held"], true, "{status}");
    assert_eq!(lock["holder"]["pid"], holder.id(), "{status}");
    assert_eq!(lock["profile"], PROFILE);
    holder.kill().unwrap();
    holder.wait().unwrap();
    // G8: the OS released the dead holder's lock; nothing was presented.
    assert_eq!(server.received(), 0);
    assert_eq!(token_with(&state, &[]).access(), "at-1");
}
