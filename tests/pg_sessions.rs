//! The holder's PostgreSQL session ended (`pg_terminate_backend`) or its
//! process killed (-9) at each step of a refresh, with real `rotor token`
//! processes, each on a state directory of its own: no refresh token is ever
//! presented twice (G1), and the outcomes are the typed ones the theorem
//! names (ARCHITECTURE.md, "The PostgreSQL backend"): a holder that lost its
//! session before its fence fails without presenting; a fence written before
//! the loss stops the next holder with NeedsReauth (G7), and the old holder,
//! if alive, still stores the rotation through a new session (no lost
//! rotation).
mod common;
mod pg_support;

use std::time::Duration;

use common::*;
use pg_support::*;

struct Scene {
    world: World,
    server: TokenServer,
    marker: std::path::PathBuf,
}

fn scene(test: &str) -> Scene {
    let world = World::new(test);
    let server = TokenServer::start("rt-0", 3600);
    world.login(&server.url, "at-0", "rt-0");
    world.force_expiry();
    let marker = world.temp.path().join("failpoint-reached");
    Scene {
        world,
        server,
        marker,
    }
}

fn kind(run: &TokenRun) -> &str {
    run.json["error"]["kind"].as_str().unwrap_or("")
}

#[test]
fn a_waiter_whose_session_is_killed_waits_again_and_adopts_g1_g2() {
    let _turn = serial();
    let Scene {
        world,
        server,
        marker,
    } = scene("killed_waiter");
    let holder = world.spawn_token_at("after-lock:hold", &marker);
    wait_for(&marker);
    let waiter = world.spawn_token();
    world.wait_until_waiting(waiter.id());
    assert_eq!(
        world.terminate_sessions_of(waiter.id()),
        1,
        "the waiter's session"
    );
    // It reconnects and waits again (not an error, not a steal).
    world.wait_until_waiting(waiter.id());
    release(&marker);
    let (holder, waiter) = (finish(holder), finish(waiter));
    assert_eq!(holder.code, Some(0), "{holder:?}");
    assert_eq!(waiter.code, Some(0), "G2: the waiter converges: {waiter:?}");
    assert_eq!(
        waiter.access(),
        holder.access(),
        "G2: one rotation for both"
    );
    assert_eq!(server.exchanges().len(), 1, "G2: one grant");
    server.assert_each_token_presented_once();
}

#[test]
fn a_holder_killed_before_its_fence_never_presents_g1() {
    let _turn = serial();
    let Scene {
        world,
        server,
        marker,
    } = scene("killed_before_fence");
    let holder = world.spawn_token_at("before-fence:hold", &marker);
    wait_for(&marker);
    assert_eq!(
        world.terminate_sessions_of(holder.id()),
        1,
        "the holder's session"
    );
    // The lock died with the session: the next process refreshes.
    let next = world.token();
    assert_eq!(next.code, Some(0), "{next:?}");
    assert_eq!(next.json["outcome"], "refreshed");
    release(&marker);
    let holder = finish(holder);
    assert_eq!(
        holder.code,
        Some(9),
        "G1: the stale holder fails typed: {holder:?}"
    );
    assert!(
        holder.stderr.contains("refresh lock was lost"),
        "G10: {}",
        holder.stderr
    );
    assert_eq!(
        server.exchanges().len(),
        1,
        "G1: the stale holder sent nothing"
    );
    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0);
    assert_eq!(
        world.token().access(),
        next.access(),
        "G2: everyone holds the rotation"
    );
}

/// The holder's fence is committed and then its session ends while it is
/// held (at a failpoint, or inside its call while the server takes its time
/// to answer): the next process must not present rt-0 (NeedsReauth, G7);
/// the old holder goes on, presents once, and stores the rotation through a
/// new session (no lost rotation).
fn fence_outlives_the_session(test: &str, in_call: bool) {
    let _turn = serial();
    let Scene {
        world,
        server,
        marker,
    } = scene(test);
    let holder = if in_call {
        // Rotates at once, answers 5 s later: ample for the next process.
        server.set_delay_ms(5_000);
        let holder = world.spawn_token();
        server.wait_received(1, Duration::from_secs(30));
        holder
    } else {
        let holder = world.spawn_token_at("after-write:put-fence:hold", &marker);
        wait_for(&marker);
        holder
    };
    assert_eq!(
        world.terminate_sessions_of(holder.id()),
        1,
        "the holder's session"
    );
    let next = world.token();
    assert_eq!(
        next.code,
        Some(4),
        "G7: the fence stops the next holder: {next:?}"
    );
    assert_eq!(kind(&next), "needs_reauth");
    assert!(
        next.stderr.contains("unknown outcome"),
        "G10: {}",
        next.stderr
    );
    if !in_call {
        release(&marker);
    }
    let holder = finish(holder);
    assert_eq!(holder.code, Some(0), "no lost rotation: {holder:?}");
    assert_eq!(holder.json["outcome"], "refreshed");
    let after = world.token();
    assert_eq!(after.code, Some(0), "{after:?}");
    assert_eq!(
        after.access(),
        holder.access(),
        "G2: the rotation is everyone's"
    );
    assert_eq!(server.exchanges().len(), 1);
    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
}

#[test]
fn a_holder_killed_after_its_fence_leaves_it_to_the_next_holder_g1_g7() {
    fence_outlives_the_session("killed_after_fence", false);
}

#[test]
fn a_holder_killed_in_the_call_leaves_its_fence_and_still_stores_the_rotation_g1_g7() {
    fence_outlives_the_session("killed_in_call", true);
}

/// The session ends during the call and the answer never arrives: the
/// holder reports InDoubt, its fence stays, everyone after it NeedsReauth;
/// nobody presents rt-0 again (G1, G7).
#[test]
fn a_holder_killed_in_the_call_whose_answer_is_lost_is_in_doubt_g1_g7() {
    let _turn = serial();
    let Scene { world, server, .. } = scene("killed_answer_lost");
    server.set_mode(Mode::HoldAfterRotate);
    let holder = world.spawn_token();
    server.wait_received(1, Duration::from_secs(30));
    assert_eq!(
        world.terminate_sessions_of(holder.id()),
        1,
        "the holder's session"
    );
    let next = world.token();
    assert_eq!(next.code, Some(4), "G7: {next:?}");
    server.release_held();
    let holder = finish(holder);
    assert_eq!(holder.code, Some(5), "G7: {holder:?}");
    assert_eq!(kind(&holder), "in_doubt");
    let later = world.token();
    assert_eq!(later.code, Some(4), "G7: the fence stays: {later:?}");
    assert_eq!(server.received(), 1, "G1: rt-0 was presented once");
    server.assert_each_token_presented_once();
}

/// kill -9 of the holder at a step: the server ends its session and frees
/// the lock; what the next process does is the theorem's typed outcome.
fn kill_nine_at(test: &str, failpoint: &str, next_exit: i32) {
    let _turn = serial();
    let Scene {
        world,
        server,
        marker,
    } = scene(test);
    let mut holder = world.spawn_token_at(failpoint, &marker);
    wait_for(&marker);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let next = world.token();
    assert_eq!(next.code, Some(next_exit), "{failpoint}: {next:?}");
    if next_exit == 4 {
        assert_eq!(kind(&next), "needs_reauth", "G7: {next:?}");
        assert_eq!(
            server.received(),
            0,
            "G1: the fenced token was not presented"
        );
    } else {
        assert_eq!(next.json["outcome"], "refreshed");
    }
    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
}

#[test]
fn kill_nine_of_the_holder_after_the_lock_frees_it_g1_g8() {
    kill_nine_at("kill9_after_lock", "after-lock:pause", 0);
}

#[test]
fn kill_nine_of_the_holder_before_the_fence_commits_leaves_no_fence_g1_g7() {
    kill_nine_at(
        "kill9_before_fence_commit",
        "before-write:put-fence:pause",
        0,
    );
}

#[test]
fn kill_nine_of_the_holder_after_its_fence_is_needs_reauth_g1_g7() {
    kill_nine_at("kill9_after_fence", "after-write:put-fence:pause", 4);
}

#[test]
fn kill_nine_of_the_holder_in_the_call_is_needs_reauth_g1_g7() {
    let _turn = serial();
    let Scene { world, server, .. } = scene("kill9_in_call");
    server.set_mode(Mode::HoldAfterRotate);
    let mut holder = world.spawn_token();
    server.wait_received(1, Duration::from_secs(30));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let next = world.token();
    assert_eq!(next.code, Some(4), "G7: {next:?}");
    assert_eq!(kind(&next), "needs_reauth");
    server.release_held();
    assert_eq!(server.received(), 1, "G1: rt-0 was presented once");
    server.assert_each_token_presented_once();
}

/// The lease backend's failure (ARCHITECTURE.md, "The lease backend's
/// limit"), replayed on PostgreSQL: the holder has read the store and is
/// about to fence when it stalls (SIGSTOP) past the server's
/// `idle_session_timeout`; the server ends its session, another process
/// takes the lock and refreshes; the holder resumes (SIGCONT). Its fence is
/// refused, so it never presents the spent token (G1).
#[test]
fn a_holder_stopped_past_the_session_timeout_never_presents_when_it_resumes_g1() {
    let _turn = serial();
    let Scene {
        world,
        server,
        marker,
    } = scene("sigstop");
    // The holder's sessions end after 1.5 s idle (server side).
    let url = format!("{}&options=-c%20idle_session_timeout%3D1500", world.url());
    let mut command = world.token_command_on(&url);
    command
        .env("ROTOR_FAILPOINT", "before-fence:hold")
        .env("ROTOR_FAILPOINT_MARKER", &marker);
    let holder = command.spawn().unwrap();
    wait_for(&marker);
    let pid = holder.id().to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    // The server ends the stopped holder's session by its own timeout.
    let start = std::time::Instant::now();
    while world.sessions_of(holder.id()) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the idle session never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let next = world.token();
    assert_eq!(
        next.code,
        Some(0),
        "the lock died with the session: {next:?}"
    );
    assert_eq!(next.json["outcome"], "refreshed");
    signal("-CONT");
    release(&marker);
    let holder = finish(holder);
    assert_eq!(
        holder.code,
        Some(9),
        "G1: the resumed holder fails typed: {holder:?}"
    );
    assert!(
        holder.stderr.contains("refresh lock was lost"),
        "G10: {}",
        holder.stderr
    );
    assert_eq!(
        server.exchanges().len(),
        1,
        "G1: the resumed holder sent nothing"
    );
    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
}

/// Every session ends at once while the leader is in its call (what a
/// server restart does to sessions): waiters reconnect and wait again; the
/// leader's fence stops those that take the lock before its commit
/// (NeedsReauth), the leader stores its rotation through a new session, and
/// nobody presents a token twice (G1, G7).
#[test]
fn every_session_ended_mid_storm_presents_no_token_twice_g1_g7() {
    let _turn = serial();
    let Scene { world, server, .. } = scene("all_sessions_ended");
    server.set_delay_ms(1_000);
    let children: Vec<_> = (0..8).map(|_| world.spawn_token()).collect();
    server.wait_received(1, Duration::from_secs(30));
    let pids: Vec<String> = children
        .iter()
        .map(|c| format!("rotor pid={}", c.id()))
        .collect();
    let ended: i64 = world
        .admin()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = ANY($1)",
            &[&pids],
        )
        .unwrap()
        .get(0);
    assert!(ended >= 1, "sessions were ended");
    let runs: Vec<TokenRun> = children.into_iter().map(finish).collect();
    let refreshed = runs
        .iter()
        .filter(|r| r.json["outcome"] == "refreshed")
        .count();
    assert_eq!(refreshed, 1, "the leader stored its rotation: {runs:?}");
    for run in &runs {
        assert!(
            run.code == Some(0) || (run.code == Some(4) && kind(run) == "needs_reauth"),
            "G7: a typed outcome: {run:?}"
        );
    }
    let after = world.token();
    assert_eq!(after.code, Some(0), "no lost rotation: {after:?}");
    assert_eq!(after.access(), server.exchanges()[0].1, "G2");
    assert_eq!(server.exchanges().len(), 1);
    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
}
