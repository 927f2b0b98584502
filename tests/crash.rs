//! kill -9 of the refreshing `rotor token` process at each protocol step
//! (test-only failpoints freeze it there; the test then SIGKILLs it). After
//! each crash: every store parses and still holds the credential, old or new
//! (G6); a token whose presentation may have happened is fenced, and the
//! next caller sees the fence instead of presenting it again (G7, G1).
mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PROFILE: &str = "acme:default";

/// Starts `rotor token` armed to pause at `step`, waits (bounded) until it
/// is there, and kills it with SIGKILL.
fn kill_at(state: &Path, agent: &str, step: &str, server: Option<&TokenServer>) {
    let marker = state
        .parent()
        .unwrap()
        .join(format!("marker-{}", step.replace(':', "-")));
    let child: Child = rotor()
        .args(["token", "--state-dir"])
        .arg(state)
        .args(["--agent", agent, "--profile", PROFILE])
        .env("ROTOR_FAILPOINT", format!("{step}:pause"))
        .env("ROTOR_FAILPOINT_MARKER", &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_when(child, || match (step, server) {
        ("during-call", Some(server)) => server.received() >= 1,
        _ => marker.exists(),
    });
}

fn kill_when(mut child: Child, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rotor token ended ({status}) before reaching its failpoint");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "failpoint never reached"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// What the next caller must see after the crash.
#[derive(Debug, Clone, Copy)]
enum After {
    /// Nothing was presented: the next caller refreshes normally.
    Refreshes,
    /// The presentation may have happened: fenced, the next caller reports
    /// NeedsReauth (exit 4) without presenting.
    Fenced,
    /// The rotation was stored: the next caller gets the new token.
    HasNewToken,
}

fn crash_case(step: &str, after: After) {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    if step == "during-call" {
        server.set_mode(Mode::HoldAfterRotate);
        kill_at(&state, "main", step, Some(&server));
        server.release_held();
        server.set_mode(Mode::Normal);
    } else {
        kill_at(&state, "main", step, None);
    }
    // G6: the store parses and holds the credential (old or new).
    let doc = read_store(&state, "main");
    let credential = doc
        .profiles
        .get(PROFILE)
        .expect("G6: the credential survived");
    let refresh = credential.refresh.as_ref().unwrap().expose().to_owned();
    assert!(
        refresh == "rt-0" || refresh == "rt-1",
        "G6: neither old nor new: {refresh}"
    );
    let presented_before = server.received();

    let run = token(&state, "main", PROFILE);
    match after {
        After::Refreshes => {
            assert_eq!(run.code, Some(0), "{step}: {run:?}");
            assert_eq!(run.json["outcome"], "refreshed", "{step}");
            assert_eq!(server.exchanges().len(), 1);
            // The dead writer's temp file is gone after the next write.
            let store = store(&state, "main");
            let dir = store.path().parent().unwrap();
            let leftovers: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(".tmp-"))
                .collect();
            assert!(
                leftovers.is_empty(),
                "{step}: temp files left: {leftovers:?}"
            );
        }
        After::Fenced => {
            assert_eq!(
                run.code,
                Some(4),
                "G7 ({step}): the next caller must see the fence: {run:?}"
            );
            assert!(
                run.stderr.contains("unknown outcome"),
                "{step}: {}",
                run.stderr
            );
            assert_eq!(
                server.received(),
                presented_before,
                "G7 ({step}): the fenced token was presented again"
            );
            // The fence is durable and visible to `rotor status`.
            let doc = read_store(&state, "main");
            assert!(
                doc.fences.contains_key(PROFILE),
                "G7 ({step}): fence missing"
            );
            let status = status_json(&state);
            let fence = &status["stores"][0]["profiles"][PROFILE]["in_doubt_fences"][0];
            assert_eq!(fence["generation"], 1, "status shows the fence: {status}");
        }
        After::HasNewToken => {
            assert_eq!(run.code, Some(0), "{step}: {run:?}");
            assert_eq!(run.access(), "at-1", "{step}: the stored rotation was lost");
            assert_eq!(run.json["outcome"], "cached");
            assert_eq!(server.exchanges().len(), 1);
            assert!(read_store(&state, "main").fences.is_empty());
        }
    }
    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0, "G1 ({step})");
}

#[test]
fn kill_after_the_refresh_lock_g6() {
    crash_case("after-lock", After::Refreshes);
}

#[test]
fn kill_before_the_fence_is_written_g6() {
    crash_case("before-write:put-fence", After::Refreshes);
}

#[test]
fn kill_with_the_fence_written_but_not_renamed_g6() {
    crash_case("before-rename:put-fence", After::Refreshes);
}

#[test]
fn kill_after_the_fence_before_the_call_g6_g7() {
    crash_case("after-write:put-fence", After::Fenced);
}

#[test]
fn kill_during_the_call_after_the_provider_rotated_g6_g7() {
    crash_case("during-call", After::Fenced);
}

#[test]
fn kill_after_the_reply_before_the_commit_g6_g7() {
    crash_case("after-call", After::Fenced);
}

#[test]
fn kill_with_the_commit_written_but_not_renamed_g6_g7() {
    crash_case("before-rename:commit", After::Fenced);
}

#[test]
fn kill_after_the_commit_g6() {
    crash_case("after-write:commit", After::HasNewToken);
}

#[test]
fn kill_before_the_release_g6() {
    crash_case("before-release", After::HasNewToken);
}

/// A sub-agent killed between its commit and the mirror into main: its own
/// store has the rotation; main keeps the old token fenced, so main's agent
/// reports NeedsReauth instead of presenting a consumed token (G7, G1).
#[test]
fn sub_agent_killed_between_commit_and_mirror_g6_g7() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    kill_at(&state, "worker", "before-write:mirror", None);
    let own = read_store(&state, "worker");
    assert_eq!(
        own.profiles[PROFILE].refresh.as_ref().unwrap().expose(),
        "rt-1"
    );
    let main = read_store(&state, "main");
    assert!(
        main.fences.contains_key(PROFILE),
        "G7: main's copy of the token is fenced"
    );
    let worker = token(&state, "worker", PROFILE);
    assert_eq!(worker.access(), "at-1");
    let main_run = token(&state, "main", PROFILE);
    assert_eq!(main_run.code, Some(4), "G7: {main_run:?}");
    server.assert_each_token_presented_once();
    assert_eq!(server.exchanges().len(), 1);
}
