//! Negative tests for the checkers' fault excuses (`sim/src/world/check.rs`):
//! a checker that excuses an apparent violation when a fault explains it
//! must still report the violation in a world where no fault explains it.
//! Each test runs a broken host (`common`) in a world that has the excused
//! fault's ingredients, at a seed where the excuse does not apply, and
//! asserts the report names the guarantee with the checker's own message.
//! Each seed was found by running the shape's seeds from 0 once with the
//! checker as it is and once with the excuse's condition replaced by `true`
//! (a widened excuse), and taking the first seed the first run reports and
//! the second does not; the shipped host passes it.

mod common;

use std::sync::Arc;

use common::{LockPerAgentStore, MirrorAfterRelease, OwnExpiryMisread};
use rotor_sim::trace::{ActorStep, ServerResult, What, WriteKind, WriteResult};
use rotor_sim::{
    run_config, ActorKind, ActorSet, Backend, Config, Event, FaultKind, FaultSet, Guarantee,
    HostHooks, Overrides, RunOptions, RunOutcome, StopOn, TraceMode,
};

/// Runs `config` with `hooks` to the end, keeping the whole trace.
fn run_full(config: Config, hooks: Arc<dyn HostHooks>) -> RunOutcome {
    let options = RunOptions {
        hooks,
        stop: StopOn::Never,
        trace: TraceMode::Full,
    };
    run_config(config, &options)
}

/// The shipped host passes `config` (the world gives no violation by itself).
fn assert_the_shipped_host_passes(config: Config) {
    let outcome = run_full(config, Arc::new(rotor_sim::Shipped));
    assert!(
        outcome.violations.is_empty(),
        "the shipped host: {:?}",
        outcome.violations
    );
}

/// `outcome`'s violation of `guarantee`, which must say `message`.
fn reported<'a>(
    outcome: &'a RunOutcome,
    guarantee: Guarantee,
    message: &str,
) -> &'a rotor_sim::Violation {
    let violation = outcome
        .violations
        .iter()
        .find(|v| v.guarantee == guarantee)
        .unwrap_or_else(|| {
            panic!(
                "no {guarantee}: the excuse hides a real violation ({:?})",
                outcome.violations
            )
        });
    assert!(
        violation.detail.contains(message),
        "{guarantee} for another reason: {violation}"
    );
    violation
}

/// The index of the first event `what` matches.
fn position(events: &[Event], what: impl Fn(&What) -> bool) -> Option<usize> {
    events.iter().position(|e| what(&e.what))
}

fn fault_on(what: &What, kind: FaultKind) -> Option<u8> {
    match *what {
        What::Fault {
            fault,
            process,
            applied: true,
        } if fault == kind => Some(process),
        _ => None,
    }
}

/// G1 (SPEC §3 step 8: mirror, then release; bugs.md B6), guarding the
/// `mirror_reverted` excuse of `check_release`: a release before main holds
/// the holder's rotation is excused only when a crash reverted main's
/// lost-fsync write *after* the mirror landed (the mirror was made in order
/// and the fault undid it; fresh seed 0x81c2fd1e8c42cd56). A revert of main
/// *before* the mirror excuses nothing: B6's host (the mirror deferred past
/// the release) is reported. At seed 0x71 of a crash,lost-fsync world p1's
/// fence in main loses its fsync and p1 crashes at 0.155 s, reverting main;
/// then p0.a1 rotates, "mirrors" (deferred, 0.662 s) and releases with main
/// at generation 3. With the excuse's condition (`reverted_at >=
/// mirrored_at`) replaced by `true`, or the whole excuse by `true`, this run
/// reports nothing and this test fails. (Seeds 0..20,000 of this world: 10,647
/// report B6 this way, 86 of them, the shipped host passing, with no G1 at
/// all once the condition is `true`; this is the first.)
#[test]
fn a_release_before_the_mirror_is_g1_although_a_crash_reverted_main_earlier() {
    let seed = 0x71;
    let overrides = Overrides {
        faults: Some(FaultSet::parse_list("crash,lost-fsync").expect("fault kinds")),
        actors: Some(ActorSet::none()),
        ..Overrides::default()
    };
    let shape = |seed: u64| Config::derive(seed, &overrides);
    assert_the_shipped_host_passes(shape(seed));
    let outcome = run_full(shape(seed), Arc::new(MirrorAfterRelease));
    let violation = reported(
        &outcome,
        Guarantee::G1,
        "p0.a1 released the refresh lock before main held its rotation (generation 4); main holds Some(3)",
    );
    // The world is the one described: a lost fsync and a crash of the same
    // process (the revert) before the deferred mirror, and no crash between
    // the mirror and the release the violation is reported at.
    let events = outcome.trace.events();
    let mirror = position(events, |w| {
        matches!(
            w,
            What::Write {
                kind: WriteKind::Mirror,
                result: WriteResult::Deferred,
                ..
            }
        )
    })
    .expect("a deferred mirror");
    let lost = position(&events[..mirror], |w| {
        fault_on(w, FaultKind::LostFsync).is_some()
    })
    .expect("a lost fsync before the mirror");
    let process = fault_on(&events[lost].what, FaultKind::LostFsync);
    assert!(
        events[lost..mirror]
            .iter()
            .any(|e| fault_on(&e.what, FaultKind::Crash) == process),
        "no crash reverted the lost fsync before the mirror"
    );
    let release = position(
        events,
        |w| matches!(w, What::Violation { guarantee } if *guarantee == Guarantee::G1),
    )
    .expect("the violation in the trace");
    assert!(
        events[mirror..release]
            .iter()
            .all(|e| fault_on(&e.what, FaultKind::Crash).is_none()),
        "a crash between the mirror and the release"
    );
    eprintln!(
        "{violation}\nreplay: {} (with B6's host)",
        outcome.config.replay_command()
    );
}

/// G2 (liveness: each agent converged on the newest token), guarding the
/// `logged_out` flag (the kind of the last login or logout *stored*,
/// `actors.rs`): a family the provider revoked for a login or logout whose
/// write failed is excused only while the world is not logged out. Here
/// another program's logout fails its write (a write error, 378.173 s; the
/// provider revoked family 0 and nothing was stored), then rotor's logout
/// is stored (a tombstone in main, 1548.505 s). A host that misreads its
/// own store's expiry (`OwnExpiryMisread`) keeps handing sub-agent p0.a1
/// the revoked a0.1 `Cached` where it should end `LoggedOut`: a lost
/// convergence the stored logout leaves no excuse for. With `!self.logged_out`
/// replaced by `true` in `check_converged` (a flag that misses the stored
/// logout) this run reports nothing and this test fails. (Seeds 0..3000 of
/// this shape: 851 reported, 25 of them only because of the flag, 13 of
/// those clean with the flag ignored; this is the first of the 13.)
#[test]
fn a_revoked_family_after_a_stored_logout_is_a_lost_convergence_g2() {
    let seed = 0x3e1;
    let shape = |seed: u64| {
        let overrides = Overrides {
            faults: Some(FaultSet::parse_list("write-error,disk-full").expect("fault kinds")),
            actors: Some(ActorSet::parse_list("logout,foreign-logout").expect("actor kinds")),
            ..Overrides::default()
        };
        Config::derive(seed, &overrides)
    };
    assert_the_shipped_host_passes(shape(seed));
    let outcome = run_full(shape(seed), Arc::new(OwnExpiryMisread));
    let violation = reported(
        &outcome,
        Guarantee::G2,
        "p0.a1 with faults off did not converge: ended with a0.1, of a family the provider revoked",
    );
    // The world is the one described: a logout gave up, a later one was
    // stored, and no login followed (the shape has none).
    let logout = |step: ActorStep| {
        move |w: &What| {
            matches!(w, What::Actor { actor, action, .. }
                if matches!(actor, ActorKind::Logout | ActorKind::ForeignLogout) && *action == step)
        }
    };
    let events = outcome.trace.events();
    let failed = position(events, logout(ActorStep::GaveUp)).expect("a logout whose write failed");
    let stored = position(events, logout(ActorStep::Installed)).expect("a stored logout");
    assert!(failed < stored, "the stored logout came first");
    assert!(
        outcome.violations.len() == 1,
        "only the liveness check reports: {:?}",
        outcome.violations
    );
    eprintln!(
        "{violation}\nreplay: {} (with this host)",
        outcome.config.replay_command()
    );
}

/// G2 (liveness), guarding `revoked_by_excused_reuse` in `check_converged`:
/// a family the provider revoked for a reuse is not held against the agents
/// only when a fault excused the double presentation (fresh seed
/// 0xfd8d11c648409522). On the advisory backend a reuse no fault excuses is
/// reported G1 and G2 where the provider sees it, and a run keeps one
/// violation per guarantee, so the liveness check's own G2 can never be the
/// report there: widening this excuse to `true` changes no report in 20,000
/// seeds each of the shipped host, B1, B3, B9 and `OwnExpiryMisread`. On the
/// lease backend the liveness check is the only report: once a lease expired
/// under a live holder (`past_lease_limit`, which stays set for the rest of
/// the run) every later double presentation is recorded as the lease limit
/// (an expected finding), not as G1 and G2. At seed 0x95 of the lease
/// backend a lease expires under paused p0 (102 s); in the liveness phase,
/// faults off, B1's host (one refresh lock per agent store) lets p2.a0 and
/// p2.a1 present r1.1 at once, the provider revokes family 1 for the reuse,
/// and p0.a0 ends with a1.2 of the revoked family. No fault explains that
/// reuse, so the family is not excused: with `revoked_by_excused_reuse
/// .contains(&family)` replaced by `true` this run reports nothing and this
/// test fails. (The first of the 26 seeds of 20,000 on the lease backend
/// where this check reports B1; with the excuse widened none of them does.
/// Should the lease limit be narrowed to the presentations it explains,
/// B1's reuse here becomes G1 and G2 at the provider, and the G2 message
/// this test expects changes with it.)
#[test]
fn a_family_revoked_for_a_reuse_no_fault_excuses_is_a_lost_convergence_g2() {
    let seed = 0x95;
    let lease = Overrides {
        backend: Some(Backend::Lease),
        ..Overrides::default()
    };
    assert_the_shipped_host_passes(Config::derive(seed, &lease));
    let outcome = run_full(Config::derive(seed, &lease), Arc::new(LockPerAgentStore));
    let violation = reported(
        &outcome,
        Guarantee::G2,
        "p0.a0 with faults off did not converge: ended with a1.2, of a family the provider revoked",
    );
    assert_eq!(
        outcome.violations.len(),
        1,
        "only the liveness check reports: {:?}",
        outcome.violations
    );
    // The world is the one described: the double presentation was recorded
    // as the lease limit, and the provider revoked the family for it in the
    // liveness phase, with faults off.
    assert!(
        outcome.findings.iter().any(|f| f.guarantee == Guarantee::G1
            && f.detail
                .contains("refresh token r1.1 presented again by p2.a1")),
        "{:?}",
        outcome.findings
    );
    let events = outcome.trace.events();
    let liveness = position(events, |w| matches!(w, What::Liveness)).expect("a liveness phase");
    let reused = position(events, |w| {
        matches!(
            w,
            What::Server {
                family: 1,
                n: 1,
                result: ServerResult::Reused,
                ..
            }
        )
    })
    .expect("the provider revoked family 1 for a reuse");
    assert!(
        liveness < reused,
        "the reuse came before the liveness phase"
    );
    eprintln!(
        "{violation}\nreplay: {} (with B1's host)",
        outcome.config.replay_command()
    );
}
