//! Many OS processes of the real `rotor token` binary against a local token
//! endpoint that counts presentations per refresh token (G1, G2).
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;

const PROFILE: &str = "acme:default";

/// One round: force expiry, start `processes` at once, and check that the
/// server made exactly one exchange and every process printed its token.
fn round(state: &std::path::Path, server: &TokenServer, processes: usize, agents: &[&str]) {
    let before = server.exchanges().len();
    force_expiry(state, "main", PROFILE);
    for agent in agents.iter().filter(|a| **a != "main") {
        // Sub-agent stores (once they exist) expire too.
        if store(state, agent).read_doc().unwrap().is_some() {
            force_expiry(state, agent, PROFILE);
        }
    }
    let children: Vec<_> = (0..processes)
        .map(|i| spawn_token(state, agents[i % agents.len()], PROFILE, &[]))
        .collect();
    let runs: Vec<TokenRun> = children.into_iter().map(finish).collect();
    let exchanges = server.exchanges();
    assert_eq!(
        exchanges.len(),
        before + 1,
        "G2: {processes} processes made {} exchanges for one rotation",
        exchanges.len() - before
    );
    let issued = &exchanges.last().unwrap().1;
    for run in &runs {
        assert_eq!(run.code, Some(0), "a process failed: {run:?}");
        assert_eq!(
            run.access(),
            issued,
            "G2: a process got another token than the rotation's"
        );
    }
    let refreshed = runs
        .iter()
        .filter(|run| run.json["outcome"] == "refreshed")
        .count();
    assert_eq!(refreshed, 1, "G2: exactly one process refreshes");
    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
}

fn processes_share_one_exchange(processes: usize, agents: &[&str]) {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    // The leader holds the lock for a while, so that the others pile up on it.
    server.set_delay_ms(150);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    for _ in 0..3 {
        round(&state, &server, processes, agents);
    }
    let doc = read_store(&state, "main");
    assert_eq!(
        doc.profiles[PROFILE].generation, 4,
        "G5: one generation per rotation"
    );
    assert!(doc.fences.is_empty(), "no fence left behind");
}

#[test]
fn two_processes_one_exchange_per_rotation_g1_g2() {
    processes_share_one_exchange(2, &["main"]);
}

#[test]
fn eight_processes_one_exchange_per_rotation_g1_g2() {
    processes_share_one_exchange(8, &["main"]);
}

#[test]
fn thirty_two_processes_one_exchange_per_rotation_g1_g2() {
    processes_share_one_exchange(32, &["main"]);
}

#[test]
fn main_and_sub_agents_across_processes_share_one_exchange_g1_g2() {
    processes_share_one_exchange(8, &["main", "worker-1", "worker-2"]);
}

/// Twenty rotations in a row with a short TTL (1 s, refresh margin 0): each
/// round waits for the token to expire by itself, then four processes ask
/// at once. Timing decides who refreshes, never how often a token is spent.
#[test]
fn twenty_rotations_with_a_short_ttl_g1_g2() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 1);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    let margin = ["--refresh-margin-ms", "0"];
    let mut printed = BTreeSet::new();
    let mut rounds = 0;
    while server.exchanges().len() < 20 {
        rounds += 1;
        assert!(rounds <= 40, "G2: 20 rotations took more than 40 rounds");
        // Wait for the stored token to expire (not an assertion: the clock).
        let doc = read_store(&state, "main");
        let expires_at_ms = doc.profiles[PROFILE].expires_at_ms.unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while rotor_fs::lock::now_ms() <= expires_at_ms && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let children: Vec<_> = (0..4)
            .map(|_| spawn_token(&state, "main", PROFILE, &margin))
            .collect();
        for run in children.into_iter().map(finish) {
            assert_eq!(run.code, Some(0), "a process failed: {run:?}");
            printed.insert(run.access().to_owned());
        }
        server.assert_each_token_presented_once();
    }
    let exchanges = server.exchanges();
    assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
    // Every exchange's token was handed out: no rotation was wasted.
    let issued: BTreeSet<String> = exchanges.iter().map(|(_, access)| access.clone()).collect();
    assert!(
        issued.is_subset(&printed),
        "G2: a rotation's token was never used"
    );
    // Each exchange presented the previous exchange's refresh token: one chain.
    for (n, (presented, _)) in exchanges.iter().enumerate() {
        assert_eq!(
            presented,
            &format!("rt-{n}"),
            "G1: the rotation chain broke"
        );
    }
}
