//! G4: a separate writer process updates usage statistics in the main store
//! (through the store's read-modify-write door, as any tool sharing the
//! store must) while `rotor token` processes rotate the credential in the
//! same file. No update of either side may be lost.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const PROFILE: &str = "acme:default";
const WRITER_ENV: &str = "ROTOR_TEST_USAGE_WRITER_STATE";
const UPDATES: u64 = 1000;

/// The writer process: this test binary re-run with `--ignored --exact`
/// and the state directory in the environment. Inert in a normal run.
#[test]
#[ignore = "child process of concurrent_usage_writer_loses_no_update_g4"]
fn usage_writer_child() {
    let Ok(state) = std::env::var(WRITER_ENV) else {
        return;
    };
    let file = store(Path::new(&state), "main");
    for _ in 0..UPDATES {
        file.update("update", |doc| {
            let state = doc.state.get_or_insert_with(|| serde_json::json!({}));
            let count = state["usage"]["acme:default"]["count"]
                .as_u64()
                .unwrap_or(0);
            state["usage"]["acme:default"]["count"] = serde_json::json!(count + 1);
            ((), true)
        })
        .expect("writer update");
    }
}

#[test]
fn concurrent_usage_writer_loses_no_update_g4() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    server.set_delay_ms(20);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    let writer = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "usage_writer_child",
            "--test-threads",
            "1",
        ])
        .env(WRITER_ENV, &state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rounds = 0;
    let mut writer = Some(writer);
    // Rotate while the writer runs (at least 5 rounds, at most 40).
    while rounds < 40 {
        rounds += 1;
        force_expiry(&state, "main", PROFILE);
        let children: Vec<_> = (0..3)
            .map(|_| spawn_token(&state, "main", PROFILE, &[]))
            .collect();
        for run in children.into_iter().map(finish) {
            assert_eq!(run.code, Some(0), "{run:?}");
        }
        let done = writer.as_mut().unwrap().try_wait().unwrap().is_some();
        if done && rounds >= 5 {
            break;
        }
    }
    let output = writer.take().unwrap().wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "writer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let doc = read_store(&state, "main");
    let count = doc.state.as_ref().unwrap()["usage"][PROFILE]["count"].as_u64();
    assert_eq!(count, Some(UPDATES), "G4: usage updates were lost");
    // No rotation was reverted either: the stored refresh token is the one
    // the server issued last, and no consumed token was ever presented.
    let exchanges = server.exchanges();
    assert_eq!(exchanges.len(), rounds, "one exchange per round");
    let stored = doc.profiles[PROFILE]
        .refresh
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    assert_eq!(
        stored,
        format!("rt-{}", exchanges.len()),
        "G4: a rotation was reverted"
    );
    server.assert_each_token_presented_once();
    assert_eq!(
        server.invalid_grants(),
        0,
        "G1/B4: a reverted rotation was presented"
    );
}
