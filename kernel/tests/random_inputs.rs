//! The machine under at least 100,000 arbitrary inputs and completions
//! (seeded `ChaCha8Rng`): it never panics, every `handle` returns `Ok` or
//! `ApiMisuse`, malformed completions (wrong id, wrong kind, after `Done`)
//! are refused and change nothing, and well-formed ones reach `Done` within a
//! step bound. Every finished run is checked for:
//!
//! - G7: each `CallEndpoint` follows a fence write for that token, acknowledged
//!   as written, in the same run; and (coherent runs) a token whose earlier
//!   fence was in a store when the kernel read it (or failed to read it)
//!   under the lock is presented only as the one grace-window retry;
//! - G8: no call, fence, commit, mirror, clear or mark without the refresh
//!   lock held; the lock taken at most once and released exactly once if
//!   taken, before `Done`;
//! - G2/G1: a second call only right after a not-sent failure, within the
//!   policy's attempts, presenting the same token;
//! - G5: a commit is the presented credential's generation + 1;
//! - G6: `Refreshed` only after the commit was acknowledged, before release.
//!
//! Half the runs answer coherently (reads show in-memory stores, writes are
//! applied with `StoreDoc::apply`, with faults and concurrent writers mixed
//! in); half answer at random (any result of the right kind).
//!
//! Replay one run: `ROTOR_FUZZ_SEED=<seed> ROTOR_FUZZ_RUNS=1 cargo test -p
//! rotor-kernel --test random_inputs` (a failure prints this line).

mod common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::arbitrary;
use common::fixtures::{NOW_MS, PROFILE, PROVIDER};
use common::transcript::describe;
use rotor_kernel::{
    classify, ApiMisuse, Effect, EffectId, ErrorClass, Fingerprint, Holder, Input, Mutation,
    Outcome, Policy, PolicyConfig, Request, Resolver, Role, StoreDoc, StoreRef, WriteOutcome,
};

/// Well-formed completions fed over a full run of this test, at least (the
/// malformed ones come on top).
const INPUTS_MIN: u64 = 100_000;
/// More effects than any resolve needs.
const EFFECTS_MAX: usize = 64;
/// Where the default campaign starts.
const SEED_DEFAULT: u64 = 0x5EED_0000;

struct Stats {
    inputs: u64,
    well_formed: u64,
    misuses: u64,
    outcomes: BTreeMap<String, u64>,
}

#[test]
fn arbitrary_inputs_never_panic_and_keep_g2_g5_g6_g7_g8() {
    let base_seed = std::env::var("ROTOR_FUZZ_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("ROTOR_FUZZ_SEED is a u64"))
        .unwrap_or(SEED_DEFAULT);
    let runs_max = std::env::var("ROTOR_FUZZ_RUNS")
        .ok()
        .map(|s| s.parse::<u64>().expect("ROTOR_FUZZ_RUNS is a u64"));
    let mut stats = Stats {
        inputs: 0,
        well_formed: 0,
        misuses: 0,
        outcomes: BTreeMap::new(),
    };
    let mut run = 0u64;
    while runs_max.map_or(stats.well_formed < INPUTS_MIN, |max| run < max) {
        let seed = base_seed.wrapping_add(run);
        let result = catch_unwind(AssertUnwindSafe(|| run_one(seed, &mut stats)));
        if let Err(panic) = result {
            eprintln!(
                "random_inputs failed at seed {seed}; replay:\n  ROTOR_FUZZ_SEED={seed} ROTOR_FUZZ_RUNS=1 cargo test -p rotor-kernel --test random_inputs"
            );
            std::panic::resume_unwind(panic);
        }
        run += 1;
    }
    eprintln!(
        "{run} runs, {} inputs: {} well-formed completions, {} refused as misuse; outcomes: {:?}",
        stats.inputs, stats.well_formed, stats.misuses, stats.outcomes
    );
    if runs_max.is_none() {
        assert!(stats.well_formed >= INPUTS_MIN && stats.misuses >= INPUTS_MIN / 2);
        // Not vacuous: the campaign reaches every kind of ending.
        for outcome in [
            "Cached",
            "Adopted(Main)",
            "Adopted(Peer)",
            "Refreshed",
            "NeedsReauth(InDoubt)",
            "NeedsReauth(TokenRefused)",
            "NeedsReauth(Marked)",
            "InDoubt",
            "Transient",
            "Rejected",
            "LockTimeout",
            "Superseded(own)",
            "Superseded(main)",
            "RotationNotStored",
            "Store(own)",
            "Store(main)",
            "NeedsReauth(NoRefreshToken)",
            "LoggedOut",
            "NoCredential",
            "ProviderMismatch(q)",
            "NotRefreshable(api_key)",
        ] {
            assert!(
                stats.outcomes.keys().any(|seen| seen.starts_with(outcome)),
                "no run ended in {outcome}: {:?}",
                stats.outcomes
            );
        }
    }
}

/// What one run did, for the end-of-run properties.
#[derive(Default)]
struct Trace {
    acquired: bool,
    held: bool,
    releases: u32,
    /// Fences whose write was acknowledged as done (not a conflict, not a fault).
    fenced: Vec<Fingerprint>,
    /// (fingerprint, generation) of each presented credential.
    calls: Vec<(Option<Fingerprint>, u64)>,
    last_reply_not_sent: bool,
    /// The last reply said the presented token was already spent (SPEC §3
    /// step 9): a newer successor may be fenced and presented next.
    last_reply_reuse: bool,
    commit_acked: bool,
    /// A mirror of the rotation into main was applied (a sub-agent mirrors
    /// before it commits: the rotation is stored even if the commit fails).
    mirror_applied: bool,
    writes: u32,
    /// Fences left by earlier presentations, present in a store at the
    /// moment the kernel read it (successfully or not) under the lock.
    fences_under_lock: Vec<rotor_kernel::Fence>,
    /// Attempt numbers of the fences this run wrote.
    fence_attempts: Vec<u32>,
}

fn run_one(seed: u64, stats: &mut Stats) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let coherent = rng.random_bool(0.5);
    let role = if rng.random_bool(0.7) {
        Role::Sub
    } else {
        Role::Main
    };
    let policy = Policy::new(PolicyConfig {
        grace_window_ms: rng.random_bool(0.3).then_some(10 * 60_000),
        transient_retries_max: rng.random_range(0..=1),
        ..PolicyConfig::default()
    })
    .unwrap_or_default();
    let request = Request {
        role,
        provider: PROVIDER.into(),
        profile: PROFILE.into(),
        holder: Holder {
            pid: 1,
            host: "fuzz".into(),
            agent: "sub-a".into(),
        },
    };
    let mut own = arbitrary::store(&mut rng);
    let mut main = arbitrary::store(&mut rng);
    let mut now_ms = NOW_MS + rng.random_range(-60_000..60_000);
    let mut resolver = Resolver::new(request, policy.clone(), now_ms);
    let mut trace = Trace::default();
    let mut last_id = EffectId(0);
    for _ in 0..EFFECTS_MAX {
        let effect = resolver.poll_effect().expect("an effect until Done");
        if let Effect::Done(resolution) = &effect {
            assert!(!trace.held, "G8: Done with the lock held");
            assert_eq!(
                trace.releases,
                u32::from(trace.acquired),
                "G8: released exactly once iff taken"
            );
            if let Ok(granted) = resolution {
                if granted.outcome == Outcome::Refreshed {
                    assert!(
                        trace.commit_acked || trace.mirror_applied,
                        "G6: Refreshed without the rotation stored (own commit or main mirror)"
                    );
                }
                if granted.outcome == Outcome::Cached {
                    assert!(
                        !trace.acquired && trace.writes == 0,
                        "Cached touches nothing"
                    );
                }
            }
            let ending = describe(resolution);
            let kind = ending.split(' ').next().unwrap_or_default().to_string();
            *stats.outcomes.entry(kind).or_default() += 1;
            // After Done, every input is refused.
            for _ in 0..rng.random_range(1..3) {
                let late_id = EffectId(rng.random_range(0..last_id.0 + 2));
                let late = any_input(&mut rng, late_id);
                assert_eq!(resolver.handle(late, now_ms), Err(ApiMisuse::AlreadyDone));
                stats.inputs += 1;
                stats.misuses += 1;
            }
            assert!(resolver.poll_effect().is_none());
            return;
        }
        let id = effect.id().expect("not Done");
        assert!(id > last_id, "ids increase");
        last_id = id;
        check_effect(&effect, &trace, &policy);
        if coherent {
            // A concurrent writer sometimes replaces a store before the effect runs.
            if rng.random_bool(0.05) {
                own = arbitrary::store(&mut rng);
            }
            if rng.random_bool(0.05) {
                main = arbitrary::store(&mut rng);
            }
            if let (Effect::ReadStore { store, .. }, true) = (&effect, trace.held) {
                let doc = if *store == StoreRef::Own { &own } else { &main };
                trace
                    .fences_under_lock
                    .extend(doc.fences.get(PROFILE).cloned().unwrap_or_default());
            }
        }
        // Malformed completions first: each is refused and changes nothing.
        while rng.random_bool(0.3) {
            feed_malformed(&mut resolver, &effect, &mut rng, now_ms);
            stats.inputs += 1;
            stats.misuses += 1;
        }
        let input = if coherent {
            coherent_input(&effect, &mut own, &mut main, &mut rng)
        } else {
            chaos_input(&effect, &mut rng)
        };
        record(&effect, &input, &mut trace);
        now_ms = now_ms.saturating_add(arbitrary::clock_step_ms(&mut rng));
        if let Err(misuse) = resolver.handle(input, now_ms) {
            panic!("a well-formed completion was refused: {misuse}");
        }
        stats.inputs += 1;
        stats.well_formed += 1;
    }
    panic!("no Done within {EFFECTS_MAX} effects");
}

/// G7, G8, G2, G5 at the moment an effect is asked for.
fn check_effect(effect: &Effect, trace: &Trace, policy: &Policy) {
    match effect {
        Effect::AcquireLock { .. } => assert!(!trace.acquired, "G8: the lock is taken once"),
        Effect::ReleaseLock { .. } => assert!(trace.held, "G8: release without the lock"),
        Effect::CallEndpoint { credential, .. } => {
            assert!(trace.held, "G8: endpoint called without the refresh lock");
            let fp = credential.refresh_fingerprint();
            assert!(
                fp.is_some_and(|fp| trace.fenced.contains(&fp)),
                "G7: called without an acknowledged fence for the token"
            );
            if let Some(&(previous, previous_generation)) = trace.calls.last() {
                if trace.last_reply_reuse {
                    // Step 9: the successor a peer stored, never a token this
                    // resolve presented already, never an older one (G1).
                    assert!(
                        trace.calls.iter().all(|(presented, _)| *presented != fp),
                        "G1: a token presented again after a reuse"
                    );
                    assert!(
                        credential.generation > previous_generation,
                        "G1: a successor older than the spent token"
                    );
                } else {
                    assert!(
                        trace.last_reply_not_sent,
                        "G2: a second call without a not-sent or reuse failure"
                    );
                    assert_eq!(previous, fp, "G1: a retry presents the same token");
                }
            }
            let same_token = trace.calls.iter().filter(|(presented, _)| *presented == fp);
            assert!(
                (same_token.count() as u64) < policy.call_attempts_max(),
                "G2: more calls of one token than the policy's attempts"
            );
            for earlier in &trace.fences_under_lock {
                if Some(earlier.refresh_fp) == fp {
                    assert!(
                        policy.grace_window_ms().is_some()
                            && earlier.attempt == 0
                            && trace.fence_attempts.contains(&1),
                        "G7: presented a token with an in-doubt fence ({earlier:?}) outside the grace retry"
                    );
                }
            }
        }
        Effect::WriteStore { mutation, .. } => {
            if !matches!(mutation, Mutation::Adopt { .. }) {
                assert!(trace.held, "G8: {mutation:?} without the refresh lock");
            } else if !trace.held {
                assert!(
                    !trace.acquired,
                    "a lock-free adopt only happens before the lock"
                );
            }
            match mutation {
                Mutation::PutFence { fence, .. } => {
                    assert!(fence.attempt <= 1, "G7: at most one retry");
                    if fence.attempt == 1 {
                        assert!(
                            policy.grace_window_ms().is_some(),
                            "G7: retry only with a grace window"
                        );
                    }
                    assert!(
                        trace.calls.is_empty() || trace.last_reply_reuse,
                        "G7: fences are written before any call (or for a successor after a reuse)"
                    );
                    assert!(
                        trace
                            .calls
                            .iter()
                            .all(|(presented, _)| *presented != Some(fence.refresh_fp)),
                        "G7: a fence for a token already presented in this resolve"
                    );
                }
                Mutation::Commit {
                    credential,
                    presented_fp,
                    ..
                } => {
                    let (called_fp, called_generation) =
                        *trace.calls.last().expect("a commit follows a call");
                    assert_eq!(
                        Some(*presented_fp),
                        called_fp,
                        "commit names the presented token"
                    );
                    assert_eq!(
                        credential.generation,
                        called_generation.saturating_add(1),
                        "G5: generation + 1"
                    );
                }
                Mutation::Login { .. } | Mutation::Logout { .. } => {
                    panic!("a resolve never logs in or out")
                }
                _ => {}
            }
        }
        Effect::ReadStore { .. } | Effect::Done(_) => {}
    }
}

fn record(effect: &Effect, input: &Input, trace: &mut Trace) {
    match (effect, input) {
        (Effect::AcquireLock { .. }, Input::LockAcquired { .. }) => {
            trace.acquired = true;
            trace.held = true;
        }
        (Effect::ReleaseLock { .. }, Input::LockReleased { .. }) => {
            trace.held = false;
            trace.releases += 1;
        }
        (Effect::CallEndpoint { credential, .. }, Input::EndpointReplied { result, .. }) => {
            trace
                .calls
                .push((credential.refresh_fingerprint(), credential.generation));
            trace.last_reply_not_sent =
                matches!(result, Err(error) if classify(error) == ErrorClass::NotSent);
            trace.last_reply_reuse =
                matches!(result, Err(error) if classify(error) == ErrorClass::Reuse);
        }
        (Effect::WriteStore { mutation, .. }, Input::StoreWritten { result, .. }) => {
            trace.writes += 1;
            let done =
                matches!(result, Ok(outcome) if !matches!(outcome, WriteOutcome::Conflict(_)));
            match mutation {
                Mutation::PutFence { fence, .. } if done => {
                    trace.fenced.push(fence.refresh_fp);
                    trace.fence_attempts.push(fence.attempt);
                }
                Mutation::Commit { .. } => trace.commit_acked = done,
                Mutation::Mirror { .. } => {
                    trace.mirror_applied |= matches!(result, Ok(WriteOutcome::Applied));
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// A truthful host, with faults and concurrent writers mixed in.
fn coherent_input(
    effect: &Effect,
    own: &mut StoreDoc,
    main: &mut StoreDoc,
    rng: &mut ChaCha8Rng,
) -> Input {
    let doc = |store: &StoreRef| -> usize { usize::from(*store == StoreRef::Main) };
    let docs = [own, main];
    match effect {
        Effect::ReadStore { id, store } => Input::StoreRead {
            id: *id,
            result: if rng.random_bool(0.05) {
                Err(arbitrary::store_fault(rng))
            } else {
                Ok(docs[doc(store)].view(PROFILE))
            },
        },
        Effect::WriteStore {
            id,
            store,
            mutation,
        } => Input::StoreWritten {
            id: *id,
            result: if rng.random_bool(0.05) {
                Err(arbitrary::store_fault(rng))
            } else {
                Ok(docs[doc(store)].apply(PROFILE, mutation))
            },
        },
        Effect::AcquireLock { id, .. } => {
            if rng.random_bool(0.9) {
                Input::LockAcquired { id: *id }
            } else {
                Input::LockFailed {
                    id: *id,
                    failure: arbitrary::lock_failure(rng),
                }
            }
        }
        Effect::CallEndpoint { id, .. } => Input::EndpointReplied {
            id: *id,
            result: if rng.random_bool(0.5) {
                Ok(arbitrary::grant(rng))
            } else {
                Err(arbitrary::endpoint_error(rng))
            },
        },
        Effect::ReleaseLock { id, .. } => Input::LockReleased { id: *id },
        Effect::Done(_) => unreachable!("Done has no completion"),
    }
}

/// Any result of the right kind for the effect.
fn chaos_input(effect: &Effect, rng: &mut ChaCha8Rng) -> Input {
    let id = effect.id().expect("not Done");
    let kinds = accepted_kinds(effect);
    loop {
        let input = any_input(rng, id);
        if kinds.contains(&input.kind_name()) {
            return input;
        }
    }
}

fn accepted_kinds(effect: &Effect) -> &'static [&'static str] {
    match effect {
        Effect::ReadStore { .. } => &["StoreRead"],
        Effect::WriteStore { .. } => &["StoreWritten"],
        Effect::AcquireLock { .. } => &["LockAcquired", "LockFailed"],
        Effect::CallEndpoint { .. } => &["EndpointReplied"],
        Effect::ReleaseLock { .. } => &["LockReleased"],
        Effect::Done(_) => &[],
    }
}

/// An input of any kind with random payload, echoing `id`.
fn any_input(rng: &mut ChaCha8Rng, id: EffectId) -> Input {
    match rng.random_range(0..6) {
        0 => Input::StoreRead {
            id,
            result: if rng.random_bool(0.85) {
                Ok(arbitrary::view(rng))
            } else {
                Err(arbitrary::store_fault(rng))
            },
        },
        1 => Input::StoreWritten {
            id,
            result: if rng.random_bool(0.85) {
                Ok(arbitrary::write_outcome(rng))
            } else {
                Err(arbitrary::store_fault(rng))
            },
        },
        2 => Input::LockAcquired { id },
        3 => Input::LockFailed {
            id,
            failure: arbitrary::lock_failure(rng),
        },
        4 => Input::EndpointReplied {
            id,
            result: if rng.random_bool(0.5) {
                Ok(arbitrary::grant(rng))
            } else {
                Err(arbitrary::endpoint_error(rng))
            },
        },
        _ => Input::LockReleased { id },
    }
}

/// Feeds one wrong-id or wrong-kind completion and checks it was refused
/// without changing anything.
fn feed_malformed(resolver: &mut Resolver, effect: &Effect, rng: &mut ChaCha8Rng, now_ms: i64) {
    let id = effect.id().expect("not Done");
    let wrong_id = rng.random_bool(0.5);
    let input = if wrong_id {
        let other = match rng.random_range(0..3) {
            0 => EffectId(id.0 - 1), // the previous effect, answered twice
            1 => EffectId(id.0 + 1),
            _ => EffectId(rng.random()),
        };
        let other = if other == id {
            EffectId(id.0 + 7)
        } else {
            other
        };
        // Right kind, wrong id.
        let mut input = chaos_input(effect, rng);
        set_id(&mut input, other);
        input
    } else {
        let kinds = accepted_kinds(effect);
        loop {
            let input = any_input(rng, id);
            if !kinds.contains(&input.kind_name()) {
                break input;
            }
        }
    };
    let got = input.id();
    let kind = input.kind_name();
    let result = resolver.handle(input, now_ms);
    match result {
        Err(ApiMisuse::WrongId {
            expected,
            got: echoed,
        }) if wrong_id => {
            assert_eq!((expected, echoed), (Some(id), got));
        }
        Err(ApiMisuse::WrongKind { got: refused, .. }) if !wrong_id => assert_eq!(refused, kind),
        other => panic!("malformed completion ({kind} {got}) for {id} answered {other:?}"),
    }
    assert_eq!(
        resolver.outstanding(),
        Some(id),
        "a refused input changes nothing"
    );
    assert!(
        resolver.poll_effect().is_none(),
        "a refused input emits nothing"
    );
}

fn set_id(input: &mut Input, new: EffectId) {
    match input {
        Input::StoreRead { id, .. }
        | Input::StoreWritten { id, .. }
        | Input::LockAcquired { id }
        | Input::LockFailed { id, .. }
        | Input::EndpointReplied { id, .. }
        | Input::LockReleased { id } => *id = new,
    }
}
