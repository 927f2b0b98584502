//! A test written for mutants `cargo mutants` found alive in
//! `fs/src/lock.rs`'s `own_start_ticks` (docs/mutants.md): the process
//! start time a lock's holder line records is cached per process, keyed by
//! pid, so that a forked child records its own start and not its parent's.
//! Otherwise `rotor status` and the lock-timeout messages would call a live
//! child holder dead (a "reused pid") (G10). Alone in its file: it forks.

use std::time::{Duration, Instant};

use rotor_fs::lock::{process_start_ticks, HolderMeta};

#[test]
fn a_forked_child_records_its_own_process_start_g10() {
    // The parent fills the cache first.
    let parent = HolderMeta::current("parent");
    assert_eq!(parent.start_ticks, process_start_ticks(std::process::id()));
    // Let the child start on a later clock tick than the parent.
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: the child only reads /proc, checks and calls _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let meta = HolderMeta::current("child");
        let own = process_start_ticks(std::process::id());
        let code = if meta.pid == std::process::id()
            && meta.start_ticks.is_some()
            && meta.start_ticks == own
            && meta.is_alive() == Some(true)
        {
            0
        } else {
            1
        };
        // SAFETY: ends the forked child without running the harness.
        unsafe { libc::_exit(code) };
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let done = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        if done == child {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kills our own child.
            unsafe { libc::kill(child, libc::SIGKILL) };
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child recorded another process's start (status {status})"
    );
}
