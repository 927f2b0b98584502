//! Tests written for `cargo mutants` over the tokio API (`fs/src/async_rotor.rs`,
//! feature `tokio`; docs/mutants.md, fs campaign 3): each future of
//! [`AsyncRotor`] answers what the blocking [`Rotor`] call it wraps answers,
//! over the same state directory. The root package's `tests/tokio_async.rs`
//! checks the hard part (a thousand tasks, futures dropped mid-refresh, an
//! executor that never blocks) against a real endpoint; these run in the fs
//! host's own fast mutants command.
#![cfg(feature = "tokio")]

use rotor_fs::{AsyncRotor, Error, Rotor};
use rotor_kernel::{Credential, CredentialKind, Outcome, Policy, PolicyConfig};

fn far_future_ms() -> i64 {
    rotor_fs::lock::now_ms() + 3_600_000
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap()
}

/// Login, token, provider lookup, logout and status, each through its
/// future, give the blocking host's answers and act on the same stores:
/// the generations are the ones stored (G5), the provider is the stored
/// one (G3), the token is the logged-in one (G2).
#[test]
fn g2_g5_every_future_answers_what_the_blocking_call_answers() {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    runtime().block_on(async {
        let rotor = AsyncRotor::open(&state).await.unwrap();
        assert_eq!(rotor.blocking().layout().root(), state.as_path());
        assert_eq!(rotor.provider_of("main", "p").await.unwrap(), None);

        let credential = Credential::oauth("acme", "at-1", "rt-1", far_future_ms());
        let first = rotor.login("main", "p", credential).await.unwrap();
        assert!(first > 0, "G5: a login stores a generation");
        let second = rotor
            .login(
                "main",
                "p",
                Credential::oauth("acme", "at-2", "rt-2", far_future_ms()),
            )
            .await
            .unwrap();
        assert!(second > first, "G5: {first} -> {second}");
        assert_eq!(
            rotor.provider_of("main", "p").await.unwrap().as_deref(),
            Some("acme")
        );

        let granted = rotor.token("main", "acme", "p").await.unwrap();
        assert_eq!(granted.access.expose(), "at-2");
        assert_eq!(granted.generation, second);
        assert_eq!(granted.outcome, Outcome::Cached);
        // A sub-agent finds main's token (adopt, G2).
        let adopted = rotor.token("worker", "acme", "p").await.unwrap();
        assert_eq!(adopted.access.expose(), "at-2");

        let report = rotor.status().await.unwrap();
        assert_eq!(report.state_dir, state);
        let agents: Vec<_> = report.stores.iter().map(|s| s.agent.as_str()).collect();
        assert!(agents.contains(&"main"), "{agents:?}");

        let logged_out = rotor.logout("main", "acme", "p").await.unwrap();
        assert!(logged_out > second, "G5: {second} -> {logged_out}");
        let entry = rotor
            .run(|blocking| {
                Ok(blocking
                    .store("main")?
                    .read_view("p")
                    .map_err(Error::Store)?
                    .credential)
            })
            .await
            .unwrap()
            .expect("a tombstone");
        assert_eq!(entry.kind, CredentialKind::LoggedOut);
        assert_eq!(entry.generation, logged_out);
    });
}

/// A host built from a blocking `Rotor` keeps its state directory, and
/// `with_policy` keeps the directory and sets the policy (G8: the lock
/// waits are the policy's).
#[test]
fn an_async_rotor_keeps_its_rotor_and_policy() {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    let blocking = Rotor::open(&state).unwrap();
    let policy = Policy::new(PolicyConfig {
        refresh_lock_wait_ms_max: 123_456,
        ..PolicyConfig::default()
    })
    .unwrap();
    let rotor = AsyncRotor::from(blocking).with_policy(policy.clone());
    assert_eq!(rotor.blocking().layout().root(), state.as_path());
    assert_eq!(rotor.blocking().policy(), &policy);
    let answer = runtime().block_on(rotor.run(|_| Ok(42))).unwrap();
    assert_eq!(answer, 42);
}

/// A panic in the work comes back to the caller as the panic, not as an
/// error that looks like a failed call.
#[test]
fn a_panic_off_the_executor_reaches_the_caller() {
    let temp = tempfile::tempdir().unwrap();
    let rotor = AsyncRotor::from(Rotor::open(temp.path().join("state")).unwrap());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime().block_on(rotor.run(|_| -> Result<(), Error> { panic!("work panicked") }))
    }));
    let payload = caught.expect_err("the panic was resumed");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"work panicked"));
}

/// A call whose runtime shut down before its work could start reads and
/// sends nothing, and says so as a transient failure (try again), never a
/// panic or a made-up answer.
#[test]
fn a_call_made_after_its_runtime_shut_down_is_transient() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let temp = tempfile::tempdir().unwrap();
    let rotor = AsyncRotor::from(Rotor::open(temp.path().join("state")).unwrap());
    let pool = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let handle = pool.handle().clone();
    pool.shutdown_background();
    // The call is first polled in the shut-down runtime's context: its work
    // is handed to a blocking pool that will never run it.
    let mut call = Box::pin(rotor.run(|_| Ok("ran")));
    {
        let _inside = handle.enter();
        let mut context = Context::from_waker(Waker::noop());
        if let Poll::Ready(answer) = call.as_mut().poll(&mut context) {
            assert_transient(answer);
            return;
        }
    }
    let answer = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(call);
    assert_transient(answer);
}

fn assert_transient(answer: Result<&str, Error>) {
    match answer {
        Err(Error::Failed(rotor_kernel::Failure::Transient { detail })) => {
            assert!(detail.contains("nothing was read or sent"), "{detail}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}
