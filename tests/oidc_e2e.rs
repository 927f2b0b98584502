//! End to end against a real OAuth server: npm `oidc-provider` 8.8.1 with
//! refresh-token rotation on (a consumed refresh token presented again gets
//! 400 invalid_grant and the whole grant is revoked; no grace window).
//! Sixteen `rotor token` processes at each of five forced expiries: every
//! process gets the round's token, the server sees exactly five successful
//! refresh grants and no invalid_grant, and the family is alive at the end
//! (G1, G2).
//!
//! The same storm through PostgreSQL, every process with a state directory
//! of its own (as if on separate machines): one grant per expiry at the real
//! provider, no invalid_grant, the family alive.
//!
//! Needs `node` and the fixture's packages: `npm ci --prefix tests/oidc`
//! (`.ci/run` does it), and a PostgreSQL server for the last test (see
//! tests/pg_support).
mod common;
mod pg_support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PROFILE: &str = "oidc:default";

struct OidcServer {
    child: Child,
    info: serde_json::Value,
}

impl OidcServer {
    fn start() -> OidcServer {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider/package.json").exists(),
            "the oidc-provider fixture is not installed: run `npm ci --prefix tests/oidc` \
             (node 20 and npm needed; .ci/run does this)"
        );
        let (child, info) = spawn_node_fixture(&dir.join("server.mjs"), &[], &dir);
        OidcServer { child, info }
    }

    fn field(&self, key: &str) -> String {
        self.info[key].as_str().unwrap().to_owned()
    }

    fn state(&self) -> serde_json::Value {
        let port = self.info["port"].as_u64().unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
        write!(
            stream,
            "GET /test/state HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("bad /test/state {text:?}: {e}"))
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rotor login` of the fixture's client and refresh token into main.
fn login_oidc(server: &OidcServer, state: &Path) {
    let tokens = serde_json::json!({
        "access_token": "initial-access",
        "refresh_token": server.field("refresh_token"),
        "expires_in": 3600,
        "client_secret": server.field("client_secret"),
    });
    let output = run_with_stdin(
        rotor().args(["login", "--state-dir"]).arg(state).args([
            "--profile",
            PROFILE,
            "--provider",
            "oidc",
            "--token-url",
            &server.field("token_url"),
            "--client-id",
            &server.field("client_id"),
            "--auth-method",
            "client_secret_basic",
        ]),
        &tokens.to_string(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn oidc_provider_sixteen_processes_five_expiries_g1_g2() {
    let server = OidcServer::start();
    let (_temp, state) = state_dir();
    login_oidc(&server, &state);

    let mut round_tokens = BTreeSet::new();
    for round in 1..=5 {
        force_expiry(&state, "main", PROFILE);
        let children: Vec<_> = (0..16)
            .map(|_| spawn_token(&state, "main", PROFILE, &[]))
            .collect();
        let runs: Vec<TokenRun> = children.into_iter().map(finish).collect();
        let first = runs[0].access().to_owned();
        for run in &runs {
            assert_eq!(
                run.code,
                Some(0),
                "round {round}: a process failed: {run:?}"
            );
            assert_eq!(
                run.access(),
                first,
                "G2: round {round}: processes got different tokens"
            );
        }
        let refreshed = runs
            .iter()
            .filter(|r| r.json["outcome"] == "refreshed")
            .count();
        assert_eq!(
            refreshed, 1,
            "G2: round {round}: {refreshed} processes refreshed"
        );
        round_tokens.insert(first);
        let seen = server.state();
        assert_eq!(seen["refresh_success"], round, "G2: round {round}: {seen}");
        assert_eq!(seen["invalid_grant"], 0, "G1: round {round}: {seen}");
    }
    assert_eq!(
        round_tokens.len(),
        5,
        "each forced expiry produced a new token"
    );
    let seen = server.state();
    assert_eq!(
        seen["refresh_success"], 5,
        "G2: exactly five refresh grants: {seen}"
    );
    assert_eq!(
        seen["invalid_grant"], 0,
        "G1: no consumed token presented: {seen}"
    );
    assert_eq!(
        seen["family_alive"], true,
        "G1: the grant (token family) was revoked: {seen}"
    );
    let doc = read_store(&state, "main");
    assert_eq!(
        doc.profiles[PROFILE].generation, 6,
        "login + five rotations"
    );
}

/// A logout in the middle of a storm of sixteen `rotor token` processes
/// against the real provider (G11). The processes ask with a refresh margin
/// longer than the provider's token lifetime, so every token wants a refresh
/// and they refresh one after another under the refresh lock. After the
/// logout's tombstone is visible the provider sees no further refresh grant,
/// every storm process ended with a token or "logged out", the tombstone
/// stays, and later calls stop at it. (The logout is local: the grant stays
/// alive at the provider and no refresh token was presented twice.)
#[test]
fn oidc_provider_logout_during_a_storm_sticks_g11() {
    let server = OidcServer::start();
    let (_temp, state) = state_dir();
    login_oidc(&server, &state);
    let margin = ["--refresh-margin-ms", "7200000"];
    let grants = |seen: &serde_json::Value| {
        seen["refresh_success"].as_u64().unwrap() + seen["invalid_grant"].as_u64().unwrap()
    };
    let tombstone = |state: &Path| {
        store(state, "main")
            .read_doc()
            .ok()
            .flatten()
            .and_then(|doc| doc.profiles.get(PROFILE).cloned())
            .is_some_and(|c| c.is_logged_out())
    };

    let mut children: Vec<_> = (0..8)
        .map(|_| spawn_token(&state, "main", PROFILE, &margin))
        .collect();
    let start = Instant::now();
    while server.state()["refresh_success"].as_u64().unwrap() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the storm never refreshed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut logout = rotor()
        .args(["logout", "--state-dir"])
        .arg(&state)
        .args(["--profile", PROFILE])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    children.extend((0..8).map(|_| spawn_token(&state, "main", PROFILE, &margin)));
    // The grants the provider had made when the tombstone became visible.
    let start = Instant::now();
    while !tombstone(&state) {
        assert!(start.elapsed() < Duration::from_secs(120), "no tombstone");
        std::thread::sleep(Duration::from_millis(1));
    }
    let at_commit = grants(&server.state());
    assert!(logout.wait().unwrap().success(), "rotor logout failed");
    let _ = logout.stderr.take();

    let runs: Vec<TokenRun> = children.into_iter().map(finish).collect();
    for run in &runs {
        match run.code {
            Some(0) => {}
            Some(3) => assert_eq!(run.json["error"]["kind"], "logged_out", "{run:?}"),
            _ => panic!("G11: a storm process ended otherwise: {run:?}"),
        }
    }
    let logged_out = runs.iter().filter(|run| run.code == Some(3)).count();
    eprintln!(
        "storm: {} served, {logged_out} logged out",
        runs.len() - logged_out
    );
    let seen = server.state();
    assert_eq!(
        grants(&seen),
        at_commit,
        "G11: a refresh reached the provider after the logout: {seen}"
    );
    assert_eq!(seen["invalid_grant"], 0, "G1: {seen}");
    assert_eq!(seen["family_alive"], true, "G1: {seen}");
    assert!(tombstone(&state), "G11: the tombstone was overwritten");
    for run in (0..4).map(|_| token(&state, "main", PROFILE)) {
        assert_eq!(run.code, Some(3), "G11: {run:?}");
    }
    assert_eq!(
        grants(&server.state()),
        at_commit,
        "G11: nothing sent after"
    );
}

/// Sixteen `rotor token --store postgres://…` processes, each on a machine
/// of its own, at each of three forced expiries, against the real provider:
/// one refresh grant per expiry, no invalid_grant, the family alive, every
/// process holds the round's token (G1, G2 across machines).
#[test]
fn oidc_provider_through_postgresql_sixteen_machines_three_expiries_g1_g2() {
    let _turn = pg_support::serial();
    let server = OidcServer::start();
    let world = pg_support::World::new("oidc_pg");
    let tokens = serde_json::json!({
        "access_token": "initial-access",
        "refresh_token": server.field("refresh_token"),
        "expires_in": 3600,
        "client_secret": server.field("client_secret"),
    });
    let output = run_with_stdin(
        rotor()
            .env("ROTOR_STATE_DIR", world.machine())
            .args(["login", "--store", &world.url(), "--profile"])
            .args([pg_support::PROFILE, "--provider", "oidc", "--token-url"])
            .arg(server.field("token_url"))
            .args(["--client-id", &server.field("client_id")])
            .args(["--auth-method", "client_secret_basic"]),
        &tokens.to_string(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut round_tokens = BTreeSet::new();
    for round in 1..=3 {
        world.force_expiry();
        let children: Vec<_> = (0..16).map(|_| world.spawn_token()).collect();
        let runs: Vec<TokenRun> = children.into_iter().map(finish).collect();
        let first = runs[0].access().to_owned();
        for run in &runs {
            assert_eq!(
                run.code,
                Some(0),
                "round {round}: a process failed: {run:?}"
            );
            assert_eq!(run.access(), first, "G2: round {round}: different tokens");
        }
        round_tokens.insert(first);
        let seen = server.state();
        assert_eq!(seen["refresh_success"], round, "G2: round {round}: {seen}");
        assert_eq!(seen["invalid_grant"], 0, "G1: round {round}: {seen}");
    }
    assert_eq!(round_tokens.len(), 3, "each expiry gave a new token");
    let seen = server.state();
    assert_eq!(
        seen["family_alive"], true,
        "G1: the family was revoked: {seen}"
    );
}
