//! Tests added for mutants that survived `cargo mutants` in the grace-window
//! rule and the resolver's lifecycle (kernel/src/machine, docs/mutants.md).

mod common;

use common::fixtures::*;
use common::transcript::Transcript;
use rotor_kernel::{Policy, Resolver, Role};

/// The grace window is half-open: at exactly `started_at + grace` it is
/// closed, and the in-doubt token is not presented again (G7, G1).
#[test]
fn g7_the_grace_window_is_closed_at_its_end_instant() {
    let grace_ms = 10 * MINUTE_MS;
    let own = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - grace_ms));
    let run = Transcript::sub(own, store(expired(5)))
        .policy(grace_policy(grace_ms as u64))
        .run();
    run.assert_done_without_call("done NeedsReauth(InDoubt)", "G7: window closed");
    // One millisecond earlier it is still open: one retry.
    let own = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - grace_ms + 1));
    let run = Transcript::sub(own, store(expired(5)))
        .policy(grace_policy(grace_ms as u64))
        .reply(Ok(grant("6")))
        .run();
    run.assert_done("done Refreshed gen=6");
    assert_eq!(run.calls.len(), 1);
}

/// A new resolver has not finished; it finishes only when it emits `Done`.
#[test]
fn a_new_resolver_is_not_finished() {
    let resolver = Resolver::new(request(Role::Sub), Policy::default(), NOW_MS);
    assert!(!resolver.is_finished());
}
