//! In-process coalescing through the embedding API (B3: a lock held per
//! process must not let a second thread of the same process walk through).
mod common;

use common::*;
use rotor_fs::Rotor;

const PROFILE: &str = "acme:default";

fn threads_share_one_exchange(shared_rotor: bool) {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    server.set_delay_ms(100);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    let rotor = Rotor::open(&state).unwrap();
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                // Either clones of one Rotor (shared single-flight) or
                // separate instances (flock alone excludes them).
                let rotor = if shared_rotor {
                    rotor.clone()
                } else {
                    Rotor::open(&state).unwrap()
                };
                let agent = if i % 2 == 0 { "main" } else { "worker" };
                scope.spawn(move || {
                    rotor
                        .token(agent, "acme", PROFILE)
                        .unwrap()
                        .access
                        .expose()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        server.exchanges().len(),
        1,
        "G2/B3: threads of one process made several exchanges"
    );
    assert!(tokens.iter().all(|t| t == "at-1"), "G2: {tokens:?}");
    server.assert_each_token_presented_once();
}

#[test]
fn threads_sharing_a_rotor_coalesce_g1_g2_b3() {
    threads_share_one_exchange(true);
}

#[test]
fn separate_rotor_instances_in_one_process_coalesce_g1_g2_b3() {
    threads_share_one_exchange(false);
}
