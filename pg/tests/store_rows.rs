//! Stores as rows: every write a read-modify-write under the row lock (G4),
//! the kernel's compare-and-swap deciding (G5, G11).
mod support;

use rotor_kernel::Credential;
use rotor_pg::PgRotor;
use support::TestSchema;

#[test]
fn concurrent_writers_lose_no_update_g4() {
    let schema = TestSchema::new("no_lost_update");
    let rotor = PgRotor::open(&schema.url()).unwrap();
    rotor
        .login(
            "main",
            "acme:default",
            Credential::oauth("acme", "at", "rt", i64::MAX / 2),
        )
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let rotor = rotor.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    rotor
                        .update_store("main", |doc| {
                            let state = doc.state.get_or_insert_with(|| serde_json::json!({}));
                            let key = format!("w{writer}");
                            let n = state[&key].as_u64().unwrap_or(0);
                            state[&key] = serde_json::json!(n + 1);
                            ((), true)
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let doc = rotor.read_store("main").unwrap().unwrap();
    let state = doc.state.unwrap();
    for writer in 0..8 {
        assert_eq!(
            state[format!("w{writer}")],
            25,
            "G4: an update was lost: {state}"
        );
    }
    // The credential written before survived every other writer (G4).
    assert_eq!(doc.profiles["acme:default"].generation, 1);
}

#[test]
fn login_moves_past_every_generation_and_logout_leaves_a_tombstone_g5_g11() {
    let schema = TestSchema::new("login_logout");
    let rotor = PgRotor::open(&schema.url()).unwrap();
    let first = rotor
        .login(
            "main",
            "acme:default",
            Credential::oauth("acme", "at", "rt", 1),
        )
        .unwrap();
    let second = rotor
        .login(
            "main",
            "acme:default",
            Credential::oauth("acme", "at2", "rt2", 1),
        )
        .unwrap();
    assert!(
        second > first,
        "G5: login generation {second} after {first}"
    );
    let tomb = rotor.logout("main", "acme", "acme:default").unwrap();
    assert!(tomb > second, "G11: the tombstone moves past the login");
    match rotor.token("main", "acme", "acme:default") {
        Err(rotor_pg::Error::Failed(rotor_kernel::Failure::LoggedOut { .. })) => {}
        other => panic!("G11: expected LoggedOut, got {other:?}"),
    }
}
