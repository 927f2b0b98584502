//! Waiting for the refresh lock: bounded, blocking in the server (woken when
//! the holder releases, not polling), and a timeout that names the holder
//! (G8, G10).
mod support;

use std::time::{Duration, Instant};

use rotor_fs::SingleFlight;
use rotor_kernel::driver::RefreshLock;
use rotor_kernel::{Holder, LockKey};
use rotor_pg::{PgRefreshLock, PgRotor};
use support::TestSchema;

fn lock(rotor: &PgRotor, agent: &str) -> PgRefreshLock {
    let holder = Holder {
        pid: 4242,
        host: "machine-a".into(),
        agent: agent.into(),
    };
    PgRefreshLock::new(rotor.link(), SingleFlight::new(), holder)
}

#[test]
fn a_timed_out_wait_names_the_holder_and_its_lock_epoch_g8_g10() {
    let schema = TestSchema::new("lock_timeout");
    let rotor = PgRotor::open(&schema.url()).unwrap();
    let key = LockKey::new("acme", "acme:default");
    let mut holder = lock(&rotor, "worker-1");
    holder.acquire(&key, 1_000).unwrap();
    let start = Instant::now();
    let failure = lock(&rotor, "worker-2").acquire(&key, 300).unwrap_err();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "G8: gave up early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "G8: the wait is bounded: {waited:?}"
    );
    assert!(
        failure.error.is_none(),
        "a timeout, not an error: {failure:?}"
    );
    let named = failure.holder.unwrap_or_default();
    assert!(
        named.contains("pid 4242") && named.contains("worker-1") && named.contains("lock epoch 1"),
        "G10: {named}"
    );
    holder.release(&key);
}

#[test]
fn a_waiter_is_woken_by_the_release_not_by_a_poll_g8() {
    let schema = TestSchema::new("lock_wake");
    let rotor = PgRotor::open(&schema.url()).unwrap();
    let key = LockKey::new("acme", "acme:default");
    let mut holder = lock(&rotor, "a");
    holder.acquire(&key, 1_000).unwrap();
    let waiter = {
        let rotor = rotor.clone();
        let key = key.clone();
        std::thread::spawn(move || {
            let mut waiter = lock(&rotor, "b");
            waiter.acquire(&key, 60_000).unwrap();
            let got = Instant::now();
            waiter.release(&key);
            got
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let released = Instant::now();
    holder.release(&key);
    let got = waiter.join().unwrap();
    let latency = got.duration_since(released);
    assert!(
        latency < Duration::from_millis(250),
        "G8: woken {latency:?} after the release"
    );
}
