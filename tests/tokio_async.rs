//! The tokio API of rotor-fs (`AsyncRotor`, feature `tokio`) against a
//! local token endpoint that rotates strictly and counts every presentation:
//!
//! - a thousand concurrent tasks (main and sub-agents) make one grant and
//!   all get its token (G1, G2);
//! - a `token` future dropped at every point of a refresh (before its first
//!   poll, after 1..5 polls, at timeouts from 0 to 280 ms while the server
//!   holds its answer, the moment the server has the refresh token, by
//!   aborting its task, while waiting for another holder's lock) never
//!   frees the refresh lock while the call is in flight (G8, so nobody
//!   presents the token meanwhile: G1), never loses the granted rotation
//!   (the next caller adopts it: G2), and leaves the store consistent and
//!   the lock free (G6, G8);
//! - a call waiting for the lock never blocks the executor: a ticker on the
//!   same single-threaded runtime keeps ticking.
mod common;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::*;
use rotor_fs::lock::{self, LockState};
use rotor_fs::{AsyncRotor, Error, Layout, Rotor};
use rotor_kernel::{Failure, Granted, LockKey, Outcome, Policy, PolicyConfig, Source};

const PROFILE: &str = "acme:default";

fn lock_state(state: &Path) -> LockState {
    let path = Layout::new(state).lock_path(&LockKey::new("acme", PROFILE));
    lock::inspect(&path).unwrap()
}

/// Waits (bounded) for the refresh lock to be free; a call that outlives
/// its caller must still end and release it (G8).
fn assert_lock_comes_free(state: &Path, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match lock_state(state) {
            LockState::Free { .. } | LockState::Absent => return,
            LockState::Held { holder } => assert!(
                Instant::now() < deadline,
                "G8: {why}: the refresh lock is still held 10 s later by {holder:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// A server answering after `delay_ms`, and a state directory logged in to it.
fn setup(delay_ms: u64) -> (tempfile::TempDir, std::path::PathBuf, TokenServer) {
    let (temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    server.set_delay_ms(delay_ms);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    (temp, state, server)
}

#[test]
fn a_thousand_tasks_make_one_grant_and_all_get_its_token_g1_g2() {
    let (_temp, state, server) = setup(150);
    force_expiry(&state, "main", PROFILE);
    let agents = ["main", "worker-1", "worker-2", "worker-3"];
    let results: Vec<Result<Granted, Error>> = runtime(2).block_on(async {
        let rotor = AsyncRotor::open(&state).await.unwrap();
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let rotor = rotor.clone();
                let agent = agents[i % agents.len()];
                tokio::spawn(async move { rotor.token(agent, "acme", PROFILE).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    let exchanges = server.exchanges();
    assert_eq!(
        exchanges.len(),
        1,
        "G2: 1,000 tasks made {} grants",
        exchanges.len()
    );
    let issued = &exchanges[0].1;
    let mut refreshed = 0;
    for (i, result) in results.iter().enumerate() {
        let granted = result
            .as_ref()
            .unwrap_or_else(|error| panic!("task {i} failed: {error}"));
        assert_eq!(
            granted.access.expose(),
            issued,
            "G2: task {i} got another token"
        );
        refreshed += usize::from(granted.outcome == Outcome::Refreshed);
    }
    assert_eq!(refreshed, 1, "G2: exactly one task refreshes");
    assert_eq!(server.invalid_grants(), 0, "G1: no invalid_grant");
    server.assert_each_token_presented_once();
    assert_lock_comes_free(&state, "after 1,000 tasks");
    assert!(
        read_store(&state, "main").fences.is_empty(),
        "G7: no fence left"
    );
}

/// Where a `token` future is dropped.
#[derive(Clone, Copy, Debug)]
enum Cancel {
    /// After this many polls (0: never polled, so nothing starts).
    Polls(usize),
    /// By `tokio::time::timeout` after this many ms.
    After(u64),
    /// As soon as the server has received the refresh token (the call is in
    /// flight; the server holds its answer).
    WhenPresented,
    /// While it waits for the refresh lock another holder has (a blocking
    /// `Rotor` of its own, so only `flock` excludes it, as another process).
    WhileWaitingForLock,
    /// `JoinHandle::abort` of the task running the call, once the server
    /// has the refresh token.
    AbortTask,
}

/// Polls `future` once and returns, whatever it says.
async fn poll_once<F: Future + ?Sized>(mut future: Pin<&mut F>) {
    std::future::poll_fn(|cx| {
        let _ = future.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

#[test]
fn a_dropped_token_future_never_frees_the_lock_mid_call_nor_loses_the_rotation_g1_g2_g8() {
    // The server holds each answer 300 ms after rotating, so every cancel
    // point below falls somewhere inside a refresh: before it starts, while
    // taking the lock and writing the fence, while the call is in flight.
    let (_temp, state, server) = setup(300);
    let rotor = runtime(2).block_on(AsyncRotor::open(&state)).unwrap();
    // Another participant with its own single-flight (as another process
    // would be) and a short lock wait: it must never get through while a
    // cancelled call is in flight.
    let config = PolicyConfig {
        call_deadline_ms: 100,
        store_lock_wait_ms_max: 50,
        refresh_lock_wait_ms_max: 1_000,
        ..PolicyConfig::default()
    };
    let other = Rotor::open(&state)
        .unwrap()
        .with_policy(Policy::new(config).unwrap());
    let mut cancels: Vec<Cancel> = vec![
        Cancel::Polls(0),
        Cancel::Polls(1),
        Cancel::Polls(2),
        Cancel::Polls(5),
    ];
    cancels.extend([0, 1, 2, 5, 10, 20, 50, 100, 200, 280].map(Cancel::After));
    cancels.extend([
        Cancel::WhenPresented,
        Cancel::WhileWaitingForLock,
        Cancel::AbortTask,
    ]);
    let rt = runtime(2);
    for (round, cancel) in cancels.into_iter().enumerate() {
        // The rounds that act while the server holds an answer get a long
        // hold, so that a loaded machine cannot outrun it.
        let long_hold = matches!(
            cancel,
            Cancel::WhenPresented | Cancel::WhileWaitingForLock | Cancel::AbortTask
        );
        server.set_delay_ms(if long_hold { 1_500 } else { 300 });
        let before = server.exchanges().len();
        let received_before = server.received();
        force_expiry(&state, "main", PROFILE);
        let (next, presented_before_next): (Granted, bool) = rt
            .block_on(async {
                match cancel {
                    Cancel::Polls(polls) => {
                        let mut future = Box::pin(rotor.token("main", "acme", PROFILE));
                        for _ in 0..polls {
                            poll_once(future.as_mut()).await;
                            tokio::task::yield_now().await;
                        }
                    }
                    Cancel::After(ms) => {
                        let call = rotor.token("main", "acme", PROFILE);
                        let result = tokio::time::timeout(Duration::from_millis(ms), call).await;
                        assert!(
                            result.is_err(),
                            "{cancel:?}: the call ended before its cancel"
                        );
                    }
                    Cancel::WhenPresented => {
                        let mut future = Box::pin(rotor.token("main", "acme", PROFILE));
                        let limit = Instant::now() + Duration::from_secs(10);
                        while server.received() == received_before {
                            assert!(
                                Instant::now() < limit,
                                "the refresh never reached the server"
                            );
                            poll_once(future.as_mut()).await;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        drop(future);
                        // The refresh token is at the provider and its answer is
                        // held: the lock must still be held, by this process.
                        match lock_state(&state) {
                            LockState::Held {
                                holder: Some(holder),
                            } => {
                                assert_eq!(holder.pid, std::process::id(), "G8: wrong holder")
                            }
                            other => {
                                panic!("G8: a dropped call freed the lock mid-call: {other:?}")
                            }
                        }
                        // Another participant waits, times out, and presents nothing.
                        let probe = tokio::task::spawn_blocking({
                            let other = other.clone();
                            move || other.token("main", "acme", PROFILE)
                        });
                        match probe.await.unwrap() {
                            Err(Error::Failed(Failure::LockTimeout { .. })) => {}
                            Ok(granted) => assert_ne!(
                            granted.outcome,
                            Outcome::Refreshed,
                            "G1: another participant refreshed while a dropped call was in flight"
                        ),
                            Err(error) => panic!("the other participant failed: {error}"),
                        }
                    }
                    Cancel::AbortTask => {
                        let task = tokio::spawn({
                            let rotor = rotor.clone();
                            async move { rotor.token("main", "acme", PROFILE).await }
                        });
                        let limit = Instant::now() + Duration::from_secs(10);
                        while server.received() == received_before {
                            assert!(
                                Instant::now() < limit,
                                "the refresh never reached the server"
                            );
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        task.abort();
                        assert!(task.await.unwrap_err().is_cancelled());
                        assert!(
                            matches!(lock_state(&state), LockState::Held { .. }),
                            "G8: an aborted task freed the lock mid-call"
                        );
                    }
                    Cancel::WhileWaitingForLock => {
                        // A blocking holder takes the lock and presents first.
                        let holder = tokio::task::spawn_blocking({
                            let other = Rotor::open(&state).unwrap();
                            move || other.token("main", "acme", PROFILE)
                        });
                        let limit = Instant::now() + Duration::from_secs(10);
                        while server.received() == received_before {
                            assert!(
                                Instant::now() < limit,
                                "the holder never reached the server"
                            );
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        let call = rotor.token("main", "acme", PROFILE);
                        let result = tokio::time::timeout(Duration::from_millis(50), call).await;
                        assert!(result.is_err(), "the waiter got through a held lock");
                        let held = holder.await.unwrap().expect("the holder's refresh");
                        assert_eq!(held.outcome, Outcome::Refreshed);
                    }
                }
                // Whether the refresh token was at the server before the next
                // caller started (only the dropped call, or the other holder,
                // can have sent it).
                let presented_before_next = server.received() > received_before;
                // The next caller: it adopts the rotation the dropped call
                // granted, or (the dropped call had not reached the lock yet)
                // refreshes while the dropped call adopts; either way one grant.
                let next = rotor.token("main", "acme", PROFILE).await;
                next.map(|granted| (granted, presented_before_next))
            })
            .unwrap_or_else(|error| {
                panic!("round {round} ({cancel:?}): next call failed: {error}")
            });
        let exchanges = server.exchanges();
        assert_eq!(
            exchanges.len(),
            before + 1,
            "G1/G2: round {round} ({cancel:?}) made {} grants for one expiry",
            exchanges.len() - before
        );
        let issued = &exchanges.last().unwrap().1;
        assert_eq!(
            next.access.expose(),
            issued,
            "G2: round {round} ({cancel:?}): the rotation granted to a dropped call was lost"
        );
        match cancel {
            // Never polled: nothing started, the next caller refreshes.
            Cancel::Polls(0) => assert_eq!(next.outcome, Outcome::Refreshed, "{cancel:?}"),
            // The refresh token was at the server before the next caller
            // began: the dropped call (or the other holder) refreshed, and
            // the next caller adopted it (waiting on the lock) or found it
            // stored; it must not have refreshed again.
            _ if presented_before_next => assert!(
                matches!(
                    next.outcome,
                    Outcome::Adopted { from: Source::Peer } | Outcome::Cached
                ),
                "G2: round {round} ({cancel:?}): the next caller {:?} instead of adopting",
                next.outcome
            ),
            // The dropped call had not sent yet: it and the next caller
            // raced for the lock; one refreshed and the other adopted (the
            // one-grant check above).
            _ => {}
        }
        if matches!(
            cancel,
            Cancel::WhenPresented | Cancel::WhileWaitingForLock | Cancel::AbortTask
        ) {
            assert!(
                presented_before_next,
                "{cancel:?}: cancelled before the call was in flight"
            );
        }
        assert_lock_comes_free(&state, &format!("round {round} ({cancel:?})"));
        let doc = read_store(&state, "main");
        assert_eq!(
            doc.profiles[PROFILE].generation,
            before as u64 + 2,
            "G5: round {round} ({cancel:?}): one generation per rotation"
        );
        assert!(
            doc.fences.is_empty(),
            "G7: round {round}: a fence was left behind"
        );
        server.assert_each_token_presented_once();
        assert_eq!(server.invalid_grants(), 0, "G1: round {round} ({cancel:?})");
    }
}

#[test]
fn a_call_waiting_for_the_lock_never_blocks_the_executor() {
    let (_temp, state, server) = setup(600);
    force_expiry(&state, "main", PROFILE);
    // Another participant (a blocking Rotor of its own) holds the lock for
    // the server's 600 ms.
    let holder = std::thread::spawn({
        let state = state.clone();
        move || Rotor::open(&state).unwrap().token("main", "acme", PROFILE)
    });
    server.wait_received(1, Duration::from_secs(10));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let started = Instant::now();
    let granted = rt.block_on(async {
        let rotor = AsyncRotor::open(&state).await.unwrap();
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                let mut interval = tokio::time::interval(Duration::from_millis(10));
                loop {
                    interval.tick().await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        let granted = rotor.token("main", "acme", PROFILE).await;
        ticker.abort();
        granted
    });
    let waited = started.elapsed();
    let ticks = ticks.load(std::sync::atomic::Ordering::SeqCst);
    // The wait lasted about the rest of the holder's 600 ms; a blocked
    // executor would have let the ticker tick once or not at all.
    assert!(
        waited >= Duration::from_millis(200),
        "the call did not wait for the holder ({waited:?})"
    );
    assert!(
        u128::from(ticks) * 10 * 2 >= waited.as_millis(),
        "the executor was blocked: {ticks} ticks of 10 ms in {waited:?}"
    );
    let held = holder.join().unwrap().unwrap();
    let granted = granted.unwrap();
    assert_eq!(granted.outcome, Outcome::Adopted { from: Source::Peer });
    assert_eq!(granted.access.expose(), held.access.expose(), "G2");
    assert_eq!(server.exchanges().len(), 1, "G2: one grant");
}
