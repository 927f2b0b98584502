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

/// A sub-agent killed between the mirror into main and its own commit (it
/// mirrors first, SPEC §3 step 8): the rotation is in main, where every
/// participant reads, and main's fence went with the mirror. Main's agent
/// gets the new token without a call, and so does the sub-agent itself,
/// adopting it back from main; no one needs a re-login (G2, G6, G1). With
/// the order the other way round (commit, then mirror) main would keep the
/// spent token fenced and main's agent would need a re-login.
#[test]
fn sub_agent_killed_between_mirror_and_commit_g2_g6() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    kill_at(&state, "worker", "before-write:commit", None);
    let main = read_store(&state, "main");
    assert_eq!(
        main.profiles[PROFILE].refresh.as_ref().unwrap().expose(),
        "rt-1",
        "G6: the rotation is in main"
    );
    assert!(
        !main.fences.contains_key(PROFILE),
        "G7: main's fence went with the mirror"
    );
    let main_run = token(&state, "main", PROFILE);
    assert_eq!(main_run.access(), "at-1", "G2: {main_run:?}");
    let worker = token(&state, "worker", PROFILE);
    assert_eq!(worker.access(), "at-1", "G2: {worker:?}");
    server.assert_each_token_presented_once();
    assert_eq!(server.exchanges().len(), 1);
}

/// A sub-agent killed after the provider rotated but before its mirror:
/// the rotation is stored nowhere, so main's copy of the spent token stays
/// fenced and every participant reports NeedsReauth instead of presenting
/// a consumed token (G7, G1).
#[test]
fn sub_agent_killed_before_its_mirror_g6_g7() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    kill_at(&state, "worker", "before-write:mirror", None);
    let main = read_store(&state, "main");
    assert!(
        main.fences.contains_key(PROFILE),
        "G7: main's copy of the token is fenced"
    );
    let main_run = token(&state, "main", PROFILE);
    assert_eq!(main_run.code, Some(4), "G7: {main_run:?}");
    let worker = token(&state, "worker", PROFILE);
    assert_eq!(worker.code, Some(4), "G7: {worker:?}");
    server.assert_each_token_presented_once();
    assert_eq!(server.exchanges().len(), 1);
}
