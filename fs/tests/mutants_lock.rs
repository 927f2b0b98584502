//! Tests written for mutants `cargo mutants` found alive in `fs/src/lock.rs`
//! and `fs/src/single_flight.rs` (docs/mutants.md): the refresh lock
//! excludes and is handed on when released or dropped (G1, G8), a bounded
//! wait that the holder ends in time gets the lock (G8), and the holder line
//! that lock-timeout messages and `rotor status` show names the right host,
//! process and process start (G10: "held by whom", and whether it still
//! runs).

use std::process::Command;
use std::time::Duration;

use rotor_fs::lock::{host_name, lock_exclusive, process_start_ticks, HolderMeta};
use rotor_fs::{FsRefreshLock, SingleFlight};
use rotor_kernel::driver::RefreshLock;
use rotor_kernel::LockKey;

fn key() -> LockKey {
    LockKey::new("acme", "p")
}

#[test]
fn a_held_refresh_lock_excludes_another_process_and_names_its_holder_g1_g8_g10() {
    let temp = tempfile::tempdir().unwrap();
    let layout = rotor_fs::Rotor::open(temp.path().join("state"))
        .unwrap()
        .layout()
        .clone();
    // Two single-flights: two processes, as far as the lock file knows.
    let mut first = FsRefreshLock::new(layout.clone(), SingleFlight::new(), "alpha");
    let mut second = FsRefreshLock::new(layout.clone(), SingleFlight::new(), "beta");
    first.acquire(&key(), 0).unwrap();
    let failure = second.acquire(&key(), 50).unwrap_err();
    let holder = failure.holder.expect("the holder is named");
    assert!(holder.contains("agent alpha"), "{holder}");
    // Released: the other process gets it at once.
    first.release(&key());
    second.acquire(&key(), 0).unwrap();
    second.release(&key());
}

#[test]
fn a_dropped_refresh_lock_frees_its_slot_and_file_g8() {
    let temp = tempfile::tempdir().unwrap();
    let layout = rotor_fs::Rotor::open(temp.path().join("state"))
        .unwrap()
        .layout()
        .clone();
    let flight = SingleFlight::new();
    let mut first = FsRefreshLock::new(layout.clone(), flight.clone(), "alpha");
    first.acquire(&key(), 0).unwrap();
    // A resolve that ends without releasing (a panic, an early return)
    // must not wedge the key for the rest of the process.
    drop(first);
    let mut second = FsRefreshLock::new(layout, flight.clone(), "beta");
    second.acquire(&key(), 0).unwrap();
    second.release(&key());
    assert!(format!("{flight:?}").contains("held: 0"), "{flight:?}");
}

#[test]
fn a_bounded_wait_gets_the_lock_its_holder_releases_in_time_g8() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("k.lock");
    let held = lock_exclusive(&path, 0, &HolderMeta::current("alpha")).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
    });
    let got = lock_exclusive(&path, 5_000, &HolderMeta::current("beta"));
    releaser.join().unwrap();
    assert!(got.is_ok(), "the wait ended before its deadline");
}

#[test]
fn a_waiter_that_gave_up_is_no_longer_counted_g8() {
    let flight = SingleFlight::new();
    flight.acquire(&key(), 0).unwrap();
    flight.acquire(&key(), 20).unwrap_err();
    assert!(format!("{flight:?}").contains("waiters: 0"), "{flight:?}");
    flight.release(&key());
    assert!(format!("{flight:?}").contains("held: 0"), "{flight:?}");
}

#[test]
fn the_holder_line_names_this_host_g10() {
    let expected = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    assert!(!expected.is_empty());
    assert_eq!(host_name(), expected);
    assert_eq!(HolderMeta::current("a").host, expected);
}

#[test]
fn the_holder_line_records_this_process_start_g10() {
    let own = process_start_ticks(std::process::id()).expect("own start ticks");
    // A process started later has a later start; pid 1 started first.
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let child_ticks = process_start_ticks(child.id()).expect("child start ticks");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(own > 1, "start ticks {own}");
    assert!(child_ticks >= own, "{child_ticks} < {own}");
    if let Some(init) = process_start_ticks(1) {
        assert!(init <= own, "{init} > {own}");
    }
    assert_eq!(HolderMeta::current("a").start_ticks, Some(own));
    assert_eq!(process_start_ticks(u32::MAX), None);
}

#[test]
fn a_dead_or_reused_holder_is_reported_not_alive_g10() {
    let me = HolderMeta::current("a");
    assert_eq!(me.is_alive(), Some(true));
    // The pid now belongs to another process (a different start).
    let reused = HolderMeta {
        start_ticks: me.start_ticks.map(|t| t + 1),
        ..me.clone()
    };
    assert_eq!(reused.is_alive(), Some(false));
    // A process that exited.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let dead = HolderMeta {
        pid,
        start_ticks: None,
        ..me.clone()
    };
    assert_eq!(dead.is_alive(), Some(false));
    // Another host cannot be checked.
    let remote = HolderMeta {
        host: format!("{}-elsewhere", me.host),
        ..me
    };
    assert_eq!(remote.is_alive(), None);
}
