//! `rotor logout` end to end: real processes, real files, the local token
//! server of tests/common (G11).
//!
//! - A logout in the middle of a storm of sixteen `rotor token` processes
//!   that each refresh in turn: after the logout commits, no refresh request
//!   reaches the server, every storm process ends with a token or "logged
//!   out", the store still holds the tombstone when all are done, and every
//!   later `rotor token` reports "logged out" (exit 3).
//! - The exit codes and messages of the other paths: nothing to log out,
//!   logging out twice, a re-login after a logout, refused ids, a refresh
//!   lock held past the wait budget.
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const PROFILE: &str = "acme:default";

fn logout(state: &std::path::Path, extra: &[&str]) -> std::process::Output {
    rotor()
        .args(["logout", "--state-dir"])
        .arg(state)
        .args(["--profile", PROFILE])
        .args(extra)
        .output()
        .unwrap()
}

fn tombstone_generation(state: &std::path::Path) -> Option<u64> {
    let doc = store(state, "main").read_doc().ok().flatten()?;
    let credential = doc.profiles.get(PROFILE)?;
    credential.is_logged_out().then_some(credential.generation)
}

#[test]
fn logout_during_a_storm_of_sixteen_refreshes_sticks_g11() {
    let (_temp, state) = state_dir();
    // Tokens live 60 s, inside the default refresh margin (300 s): every
    // token the server issues already wants a refresh, so each process of
    // the storm refreshes in its turn under the refresh lock, one call in
    // flight at a time, each held 300 ms by the server.
    let server = TokenServer::start("rt-0", 60);
    server.set_delay_ms(300);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    // Half the storm first; log out while its second refresh is in flight,
    // then the other half, which queues for the refresh lock behind the
    // logout.
    let mut children: Vec<_> = (0..8)
        .map(|_| spawn_token(&state, "main", PROFILE, &[]))
        .collect();
    server.wait_received(2, Duration::from_secs(60));

    // Note how many requests the server had received when the tombstone
    // became visible (it was committed no later than that).
    let watcher = {
        let (state, server) = (state.clone(), server.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(120) {
                if tombstone_generation(&state).is_some() {
                    return Some(server.received());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            None
        })
    };
    let logout_child = rotor()
        .args(["logout", "--json", "--state-dir"])
        .arg(&state)
        .args(["--profile", PROFILE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Time for the logout to start and queue (the first half still has
    // about six 300 ms refreshes to go).
    std::thread::sleep(Duration::from_millis(500));
    children.extend((0..8).map(|_| spawn_token(&state, "main", PROFILE, &[])));
    let output = logout_child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "rotor logout failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let generation = printed["generation"].as_u64().expect("generation printed");
    assert_eq!(printed["provider"], "acme");
    let at_commit = watcher
        .join()
        .unwrap()
        .expect("G11: the tombstone never became visible");

    let runs: Vec<TokenRun> = children.into_iter().map(finish).collect();
    let (mut served, mut logged_out) = (0, 0);
    for run in &runs {
        // The logout waits for the refresh in flight (it takes the refresh
        // lock), so no refresh is ever superseded: a process either got its
        // token before the logout or sees the tombstone after it.
        match run.code {
            Some(0) => served += 1,
            Some(3) => {
                assert_eq!(run.json["error"]["kind"], "logged_out", "{run:?}");
                logged_out += 1;
            }
            _ => panic!("G11: a storm process ended otherwise: {run:?}"),
        }
    }
    assert_eq!(
        server.received(),
        at_commit,
        "G11: a refresh reached the server after the logout committed \
         ({served} served, {logged_out} logged out)"
    );
    assert_eq!(
        server.exchanges().len(),
        served,
        "every refresh the server made was handed out, none after the logout"
    );
    eprintln!("storm: {served} processes served before the logout, {logged_out} logged out");
    assert!(
        logged_out >= 1,
        "the second half queued behind the logout and must see its tombstone"
    );
    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
    assert_eq!(
        tombstone_generation(&state),
        Some(generation),
        "G11: the tombstone was overwritten"
    );

    // Every later `rotor token` stops at the tombstone, sending nothing.
    let received = server.received();
    for run in (0..4)
        .map(|_| spawn_token(&state, "main", PROFILE, &[]))
        .map(finish)
    {
        assert_eq!(run.code, Some(3), "G11: {run:?}");
        assert_eq!(run.json["error"]["kind"], "logged_out", "{run:?}");
        assert!(run.stderr.contains("logged out"), "{}", run.stderr);
    }
    assert_eq!(
        server.received(),
        received,
        "G11: nothing sent after logout"
    );
    let status = status_json(&state).to_string();
    assert!(status.contains("logged_out"), "status shows it: {status}");
}

#[test]
fn nothing_to_log_out_is_exit_3_and_a_provider_leaves_a_tombstone_anyway() {
    let (_temp, state) = state_dir();
    let output = logout(&state, &["--json"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["error"]["kind"], "no_credential");
    assert_eq!(printed["error"]["exit_code"], 3);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("nothing to log out"),
        "{output:?}"
    );

    let output = logout(&state, &["--provider", "acme"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(tombstone_generation(&state), Some(1));
}

#[test]
fn logout_twice_then_login_again_g11() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    assert_eq!(token(&state, "main", PROFILE).access(), "at-0");

    let first = logout(&state, &[]);
    assert!(first.status.success(), "{first:?}");
    assert!(first.stdout.is_empty(), "the human message goes to stderr");
    let message = String::from_utf8_lossy(&first.stderr);
    assert!(
        message.contains("logged out") && message.contains("generation 2"),
        "{message}"
    );
    // A second logout is fine and moves the generation on.
    assert!(logout(&state, &[]).status.success());
    assert_eq!(
        tombstone_generation(&state),
        Some(3),
        "G5: generation moves on"
    );

    // A new login replaces the tombstone; tokens flow again.
    login(&state, "main", PROFILE, &server.url, "at-9", "rt-0");
    let run = token(&state, "main", PROFILE);
    assert_eq!(run.access(), "at-9");
    assert_eq!(read_store(&state, "main").profiles[PROFILE].generation, 4);
    assert_eq!(server.received(), 0, "nothing needed a refresh");
}

#[test]
fn refused_ids_are_usage_errors() {
    let (_temp, state) = state_dir();
    for (flag, value) in [("--agent", "../evil"), ("--provider", "")] {
        let output = logout(&state, &["--json", flag, value]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{flag} {value:?}: {output:?}"
        );
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(printed["error"]["exit_code"], 2, "{printed}");
    }
}

#[test]
fn a_refresh_holding_the_lock_past_the_wait_budget_is_exit_8() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    server.set_mode(Mode::HoldAfterRotate);
    let holder = spawn_token(&state, "main", PROFILE, &[]);
    server.wait_received(1, Duration::from_secs(30));
    let policy = [
        "--call-deadline-ms",
        "100",
        "--store-lock-wait-ms",
        "100",
        "--lock-wait-ms",
        "1500",
    ];
    let output = logout(&state, &policy);
    assert_eq!(output.status.code(), Some(8), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("pid"),
        "G10: the message names the holder: {output:?}"
    );
    server.release_held();
    let run = finish(holder);
    // The held answer never came: in doubt, and the logout changed nothing.
    assert_eq!(run.code, Some(5), "{run:?}");
    assert_eq!(tombstone_generation(&state), None);
}
