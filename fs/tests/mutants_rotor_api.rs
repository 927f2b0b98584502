//! Tests written for mutants `cargo mutants` found alive in `fs/src/lib.rs`
//! (docs/mutants.md): what the embedding API returns to its caller. A login
//! or logout reports the generation it stored (G5), `provider_of` names the
//! provider a store holds (G3), `policy` is the policy in force (G8), and
//! the system clock reads epoch milliseconds (G7: expiry and the grace
//! window are judged by it).

use std::time::{SystemTime, UNIX_EPOCH};

use rotor_fs::{Rotor, SystemClock};
use rotor_kernel::driver::Clock;
use rotor_kernel::{Credential, CredentialKind, Policy, PolicyConfig};

fn far_future_ms() -> i64 {
    rotor_fs::lock::now_ms() + 3_600_000
}

fn stored_generation(rotor: &Rotor, agent: &str, profile: &str) -> u64 {
    rotor
        .store(agent)
        .unwrap()
        .read_view(profile)
        .unwrap()
        .credential
        .expect("a stored entry")
        .generation
}

#[test]
fn login_and_logout_return_the_generation_they_stored_g5() {
    let temp = tempfile::tempdir().unwrap();
    let rotor = Rotor::open(temp.path().join("state")).unwrap();
    let first = rotor
        .login(
            "main",
            "p",
            Credential::oauth("acme", "at-1", "rt-1", far_future_ms()),
        )
        .unwrap();
    assert_eq!(first, stored_generation(&rotor, "main", "p"));
    let second = rotor
        .login(
            "main",
            "p",
            Credential::oauth("acme", "at-2", "rt-2", far_future_ms()),
        )
        .unwrap();
    assert!(
        second > first,
        "G5: a re-login moved back: {first} -> {second}"
    );
    assert_eq!(second, stored_generation(&rotor, "main", "p"));
    // The token handed out belongs to the generation login reported.
    let granted = rotor.token("main", "acme", "p").unwrap();
    assert_eq!(granted.generation, second);
    assert_eq!(granted.access.expose(), "at-2");
    let logged_out = rotor.logout("main", "acme", "p").unwrap();
    assert!(logged_out > second, "G5: {second} -> {logged_out}");
    assert_eq!(logged_out, stored_generation(&rotor, "main", "p"));
    let tombstone = rotor
        .store("main")
        .unwrap()
        .read_view("p")
        .unwrap()
        .credential
        .unwrap();
    assert_eq!(tombstone.kind, CredentialKind::LoggedOut);
}

#[test]
fn provider_of_names_the_stored_provider_own_store_first_g3() {
    let temp = tempfile::tempdir().unwrap();
    let rotor = Rotor::open(temp.path().join("state")).unwrap();
    assert_eq!(rotor.provider_of("worker", "p").unwrap(), None);
    rotor
        .login(
            "main",
            "p",
            Credential::oauth("acme", "at-1", "rt-1", far_future_ms()),
        )
        .unwrap();
    // Nothing in the worker's own store: main's entry names the provider.
    assert_eq!(
        rotor.provider_of("worker", "p").unwrap().as_deref(),
        Some("acme")
    );
    rotor
        .login(
            "worker",
            "p",
            Credential::oauth("beta", "at-9", "rt-9", far_future_ms()),
        )
        .unwrap();
    assert_eq!(
        rotor.provider_of("worker", "p").unwrap().as_deref(),
        Some("beta")
    );
    assert_eq!(rotor.provider_of("worker", "other").unwrap(), None);
}

#[test]
fn policy_reports_the_policy_in_force_g8() {
    let temp = tempfile::tempdir().unwrap();
    let config = PolicyConfig {
        refresh_lock_wait_ms_max: 150_000,
        store_lock_wait_ms_max: 5_000,
        ..PolicyConfig::default()
    };
    let policy = Policy::new(config).unwrap();
    assert_ne!(policy, Policy::default());
    let rotor = Rotor::open(temp.path().join("state"))
        .unwrap()
        .with_policy(policy.clone());
    assert_eq!(rotor.policy(), &policy);
    assert_eq!(rotor.policy().refresh_lock_wait_ms_max(), 150_000);
}

#[test]
fn the_system_clock_reads_epoch_milliseconds_g7() {
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let clock = SystemClock.now_ms();
    let lock_clock = rotor_fs::lock::now_ms();
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        before <= clock && clock <= after,
        "{before} {clock} {after}"
    );
    assert!(
        before <= lock_clock && lock_clock <= after,
        "{before} {lock_clock} {after}"
    );
}
