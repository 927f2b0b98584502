//! Many `rotor token --store postgres://…` processes, each with a state
//! directory of its own (no shared file: as if on separate machines), one
//! PostgreSQL, and a strict rotating token endpoint: at every expiry one
//! refresh grant, no refresh token presented twice, and every process holds
//! the round's token (G1, G2).
mod common;
mod pg_support;

use common::*;
use pg_support::*;

/// `rounds` expiries; at each, `processes` processes at once.
fn storm(test: &str, processes: usize, rounds: usize) {
    let _turn = serial();
    let world = World::new(test);
    let server = TokenServer::start("rt-0", 3600);
    // The leader holds the lock a while, so the others pile up on it.
    server.set_delay_ms(150);
    world.login(&server.url, "at-0", "rt-0");
    for round in 1..=rounds {
        world.force_expiry();
        let children: Vec<_> = (0..processes).map(|_| world.spawn_token()).collect();
        let runs: Vec<TokenRun> = children.into_iter().map(finish).collect();
        let exchanges = server.exchanges();
        assert_eq!(
            exchanges.len(),
            round,
            "G2: round {round} made {} exchanges in all",
            exchanges.len()
        );
        let issued = &exchanges.last().unwrap().1;
        for run in &runs {
            assert_eq!(run.code, Some(0), "a process failed: {run:?}");
            assert_eq!(
                run.access(),
                issued,
                "G2: a process holds another token than the round's"
            );
        }
        let refreshed = runs
            .iter()
            .filter(|run| run.json["outcome"] == "refreshed")
            .count();
        assert_eq!(refreshed, 1, "G2: exactly one process refreshes per round");
        server.assert_each_token_presented_once();
        assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
    }
    let doc = world.rotor().read_store("main").unwrap().unwrap();
    assert_eq!(
        doc.profiles[PROFILE].generation as usize,
        rounds + 1,
        "G5: one generation per rotation"
    );
    assert!(doc.fences.is_empty(), "G7: no fence left behind");
    // Every process's state directory stayed untouched: the store is the server.
    for entry in std::fs::read_dir(world.temp.path()).unwrap() {
        assert!(
            !entry.unwrap().path().join("agents").exists(),
            "a process wrote a state file"
        );
    }
}

#[test]
fn sixteen_machines_one_postgres_one_grant_per_expiry_g1_g2() {
    storm("sixteen", 16, 3);
}

#[test]
fn thirty_two_machines_one_postgres_one_grant_per_expiry_g1_g2() {
    storm("thirty_two", 32, 2);
}

#[test]
fn status_shows_holders_and_fingerprints_never_tokens_or_the_password_g10() {
    let _turn = serial();
    let world = World::new("status");
    let server = TokenServer::start("rt-secret-0", 3600);
    world.login(&server.url, "at-secret-0", "rt-secret-0");
    world.force_expiry();
    assert_eq!(world.token().code, Some(0));
    // A URL with a password (trust auth ignores it): redacted everywhere.
    let (scheme, rest) = world
        .url()
        .split_once("://")
        .map(|(s, r)| (s.to_owned(), r.to_owned()))
        .unwrap();
    let rest = rest
        .split_once('@')
        .map_or(rest.clone(), |(_, host)| host.to_owned());
    let with_password = format!("{scheme}://postgres:hunter2@{rest}");
    let output = rotor()
        .args(["status", "--json", "--store", &with_password])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        !text.contains("hunter2"),
        "G10: the password leaked into status: {text}"
    );
    assert!(
        !text.contains("rt-secret") && !text.contains("at-secret"),
        "a token leaked: {text}"
    );
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["backend"], "postgres");
    let locks = status["refresh_locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1, "{status}");
    assert_eq!(
        locks[0]["epoch"], 2,
        "two acquisitions: the login and one refresh"
    );
    assert_eq!(locks[0]["held"], false);
    assert_eq!(locks[0]["profile"], PROFILE);
    let profile = &status["stores"][0]["profiles"][PROFILE];
    assert_eq!(profile["generation"], 2);
    assert!(profile["refresh_fp"].is_string(), "{profile}");
}

#[test]
fn a_schema_from_a_newer_rotor_and_a_server_down_get_typed_exit_codes_g10() {
    let _turn = serial();
    let world = World::new("typed_exits");
    let server = TokenServer::start("rt-0", 3600);
    world.login(&server.url, "at-0", "rt-0");
    world
        .admin()
        .batch_execute(&format!(
            "UPDATE \"{}\".rotor_schema SET version = 999",
            world.schema
        ))
        .unwrap();
    let run = world.token();
    assert_eq!(run.code, Some(9), "{run:?}");
    assert_eq!(run.json["error"]["kind"], "store_schema_too_new", "{run:?}");
    let down = finish(
        rotor()
            .args(["token", "--json", "--profile", PROFILE, "--store"])
            .arg("postgres://rotor:hunter2@127.0.0.1:1/test?connect_timeout=2")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(
        down.code,
        Some(6),
        "G10: server down is transient: {down:?}"
    );
    assert_eq!(down.json["error"]["kind"], "store_unreachable");
    assert!(
        !format!("{down:?}").contains("hunter2"),
        "G10: the password leaked: {down:?}"
    );
    assert_eq!(server.received(), 0, "nothing reached the endpoint");
}

#[test]
fn git_credential_answers_from_the_postgres_store_g2() {
    let _turn = serial();
    let world = World::new("git_credential");
    let server = TokenServer::start("rt-0", 3600);
    world.login(&server.url, "at-0", "rt-0");
    world.force_expiry();
    let mut command = rotor();
    command
        .env("ROTOR_STATE_DIR", world.machine())
        .env("ROTOR_STORE", world.url())
        .args(["git-credential", "--profile", PROFILE, "get"]);
    let output = run_with_stdin(&mut command, "protocol=https\nhost=git.example.com\n\n");
    let answer = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let issued = &server.exchanges()[0].1;
    assert!(
        answer.contains(&format!("password={issued}\n")),
        "G2: {answer}"
    );
    server.assert_each_token_presented_once();
}
