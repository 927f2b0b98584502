//! The outcome oracle (`sim/src/world/oracle.rs`): a failed resolve the
//! world gives no reason for is a violation naming its guarantee, with the
//! command that replays it; the shipped host gives no such failure.
//!
//! The broken hosts live in `common`: one reports a read of main as empty
//! (the kernel fails `NoCredential` while the file holds the credential),
//! one refuses every adoption with a compare-and-swap it did not lose (the
//! kernel fails `Superseded`). Neither breaks a safety guarantee: before the
//! oracle both passed every seed.

mod common;

use std::sync::Arc;

use common::{
    DropsResponses, FollowsAnyNewerFamily, ForgetsStoreLockWaiters, ForgetsWaiters,
    HidesMainMovedPastTheOwnLogin, MarksMainOfAnotherFamily, ReadsMainAsEmpty, RefusesAdoption,
};
use rotor_sim::config::IdentityShape;
use rotor_sim::{
    run_config, run_seed, ActorSet, Backend, Config, FaultSet, Guarantee, HostHooks, Overrides,
    RunOptions, Shipped, StopOn,
};

/// No faults, no actors: a failure is the host's alone.
fn quiet(processes: u8, agents: u8) -> Overrides {
    Overrides {
        processes: Some(processes),
        agents: Some(agents),
        faults: Some(FaultSet::none()),
        actors: Some(ActorSet::none()),
        ..Overrides::default()
    }
}

/// The overrides of a replayed fresh seed (advisory backend), as its
/// `rotor replay` line gives them.
fn replayed(processes: u8, agents: u8, faults: &str, actors: &str, requests: u8) -> Overrides {
    Overrides {
        processes: Some(processes),
        agents: Some(agents),
        backend: Some(Backend::Advisory),
        faults: Some(FaultSet::parse_list(faults).expect("fault kinds")),
        actors: Some(ActorSet::parse_list(actors).expect("actor kinds")),
        requests: Some(requests),
        ..Overrides::default()
    }
}

/// The shipped host passes `seed` under `overrides` (the excused seed).
fn assert_the_shipped_host_passes(seed: u64, overrides: &Overrides) {
    let shipped = RunOptions {
        stop: StopOn::Never,
        ..RunOptions::default()
    };
    let outcome = run_seed(seed, overrides, &shipped);
    assert!(
        outcome.violations.is_empty(),
        "the excused seed: {:?}",
        outcome.violations
    );
}

/// The first seed of `0..seeds_max` whose run violates `guarantee` through
/// the oracle (a failed resolve judged unjustified); asserts it replays from
/// the printed configuration and returns the replay command.
fn oracle_finds(
    hooks: Arc<dyn HostHooks>,
    overrides: &Overrides,
    guarantee: Guarantee,
    failure: &str,
    seeds_max: u64,
) -> String {
    let options = RunOptions {
        hooks: hooks.clone(),
        stop: StopOn::Guarantee(guarantee),
        ..RunOptions::default()
    };
    for seed in 0..seeds_max {
        let outcome = run_seed(seed, overrides, &options);
        let Some(violation) = outcome.violations.iter().find(|v| v.guarantee == guarantee) else {
            continue;
        };
        assert!(
            violation.detail.contains(failure),
            "{}: {guarantee} for another reason than the oracle's: {violation}",
            hooks.name()
        );
        // What the report prints is enough to run it again.
        let config: &Config = &outcome.config;
        let again = run_seed(config.seed, &config.as_overrides(), &options);
        assert_eq!(
            again.first().map(|v| (v.guarantee, v.step)),
            Some((guarantee, violation.step)),
            "the replay of seed {seed:#x} differs"
        );
        let replay = config.replay_command();
        eprintln!(
            "{}: {violation}\nreplay: {replay} (with this host)",
            hooks.name()
        );
        return replay;
    }
    panic!(
        "{}: no {guarantee} within {seeds_max} seeds: the oracle is blind to it",
        hooks.name()
    );
}

#[test]
fn a_host_that_reads_main_as_empty_is_reported_as_g2() {
    let replay = oracle_finds(
        Arc::new(ReadsMainAsEmpty),
        &quiet(2, 1),
        Guarantee::G2,
        "failed no credential",
        200,
    );
    assert!(replay.starts_with("rotor replay --seed "), "{replay}");
}

#[test]
fn a_host_that_refuses_adoption_is_reported_as_g2() {
    let replay = oracle_finds(
        Arc::new(RefusesAdoption),
        &quiet(2, 2),
        Guarantee::G2,
        "lost its compare-and-swap although the entry was as this resolve read it",
        200,
    );
    assert!(replay.contains("--agents 2"), "{replay}");
}

#[test]
fn a_host_that_forgets_lock_waiters_is_reported_as_g8() {
    oracle_finds(
        Arc::new(ForgetsWaiters),
        &quiet(2, 2),
        Guarantee::G8,
        "with no stall, slow call or dead lease in the world",
        200,
    );
}

#[test]
fn a_host_that_drops_responses_is_reported_as_g7() {
    oracle_finds(
        Arc::new(DropsResponses),
        &quiet(2, 1),
        Guarantee::G7,
        "but its request's outcome was known",
        200,
    );
}

/// The oracle excuses a sub-agent's `NeedsReauth` beside main's token of a
/// family older than the login its own store holds at a higher generation
/// (main lost that login to a crash; copying would break G5 and G11; fresh
/// seed 0x85ce410e4e7a6160). The excuse is that narrow: a host that hides
/// every token of another family in main from a sub-agent is still
/// reported, after a plain re-login in main (the own family is the older
/// one) ...
#[test]
fn a_host_that_withholds_main_of_another_family_is_reported_as_g2() {
    let overrides = Overrides {
        actors: Some(ActorSet::parse_list("relogin").expect("an actor")),
        ..quiet(2, 2)
    };
    oracle_finds(
        Arc::new(MarksMainOfAnotherFamily),
        &overrides,
        Guarantee::G2,
        "a lost convergence",
        300,
    );
}

/// ... and in the excused seed itself, once main's older family is moved
/// past the own store's generation (`HidesMainMovedPastTheOwnLogin`): main's
/// token is then newer, the kernel must adopt it, and a sub-agent failing
/// `NeedsReauth` beside it is a lost convergence, the excuse
/// notwithstanding. The shipped host passes the seed.
#[test]
fn a_host_that_hides_main_moved_past_the_own_login_is_reported_as_g2() {
    let seed = 0x85ce_410e_4e7a_6160;
    let overrides = replayed(
        2,
        3,
        "crash,lost-fsync,torn-write,not-sent,server-error,lost-response",
        "relogin,logout",
        3,
    );
    assert_the_shipped_host_passes(seed, &overrides);
    let broken = RunOptions {
        hooks: Arc::new(HidesMainMovedPastTheOwnLogin),
        stop: StopOn::Guarantee(Guarantee::G2),
        ..RunOptions::default()
    };
    let outcome = run_seed(seed, &overrides, &broken);
    let found = outcome
        .violations
        .iter()
        .find(|v| v.guarantee == Guarantee::G2)
        .unwrap_or_else(|| {
            panic!(
                "the oracle's excuse hides a lost convergence: {:?}",
                outcome.violations
            )
        });
    assert!(
        found
            .detail
            .contains("the credential is marked needs_reauth, but main held r0.")
            && found.detail.contains("a lost convergence"),
        "{found}"
    );
    eprintln!(
        "{found}\nreplay: {} (with this host)",
        outcome.config.replay_command()
    );
}

/// A store-lock wait that ran out is excused by a holder that stalled, also
/// one that crashed during the wait and left the lock to another writer in
/// that instant (fresh seed 0x5e653d7de5f934, which the shipped host
/// passes). Not by the crash alone: a host that frees store locks without
/// waking their waiters, in worlds whose holders crash but never pause, is
/// reported (G2), also where a crash freed the lock during the wait.
#[test]
fn a_host_that_forgets_store_lock_waiters_is_reported_as_g2_even_after_a_crash_freed_the_lock() {
    let seed = 0x5e_653d_7de5_f934;
    let overrides = replayed(
        3,
        2,
        "crash,pause,disk-full,clock-jump,not-sent,server-error",
        "usage,edit",
        3,
    );
    assert_the_shipped_host_passes(seed, &overrides);
    let crashes_only = Overrides {
        faults: Some(FaultSet::parse_list("crash").expect("a fault kind")),
        actors: Some(ActorSet::parse_list("usage,edit").expect("actor kinds")),
        ..Overrides::default()
    };
    oracle_finds(
        Arc::new(ForgetsStoreLockWaiters {
            after_a_crash_only: false,
        }),
        &crashes_only,
        Guarantee::G2,
        "ran out with no stalled holder",
        500,
    );
    // A crash of a holder that did not stall, during the wait, is no
    // excuse: this host wakes nobody when a crash frees a store lock, and a
    // waiter sitting out its budget behind the freed lock is reported. (The
    // first such seed of 20,000 of this shape; the shipped host passes it.)
    let seed = 0x3037;
    let crash_freed = Overrides {
        processes: Some(4),
        agents: Some(3),
        requests: Some(6),
        faults: Some(FaultSet::parse_list("crash,clock-jump").expect("fault kinds")),
        ..crashes_only
    };
    assert_the_shipped_host_passes(seed, &crash_freed);
    let broken = RunOptions {
        hooks: Arc::new(ForgetsStoreLockWaiters {
            after_a_crash_only: true,
        }),
        stop: StopOn::Guarantee(Guarantee::G2),
        ..RunOptions::default()
    };
    let outcome = run_seed(seed, &crash_freed, &broken);
    let violation = outcome
        .violations
        .iter()
        .find(|v| v.guarantee == Guarantee::G2)
        .expect("a wait a crash of its holder cut short, with no stall, is excused: the oracle is blind");
    assert!(
        violation.detail.contains("no stalled holder")
            && violation.detail.contains("freed it during the wait"),
        "{violation}"
    );
    eprintln!(
        "{violation}\nreplay: {} (with this host)",
        outcome.config.replay_command()
    );
}

/// The liveness check excuses an agent that ended on a family the provider
/// revoked for a reuse whose double presentation a fault excused (fresh seed
/// 0xfd8d11c648409522: a crash dropped main's lost-fsync fence while the
/// call was on the wire, a main agent presented the token again, the first
/// call arrived late and the provider revoked the family). The shipped host
/// passes the seed.
#[test]
fn the_liveness_check_excuses_a_family_revoked_for_an_excused_reuse() {
    let overrides = replayed(
        2,
        3,
        "crash,pause,write-error,lost-fsync,torn-write,clock-jump,timeout",
        "usage,logout",
        1,
    );
    assert_the_shipped_host_passes(0xfd8d_11c6_4840_9522, &overrides);
}

/// A torn main takes the binding (G3) of a sub-agent whose own store holds
/// no entry: the token it was handed lived in main alone (its commit failed
/// after the mirror landed), and with nothing stored naming its account it
/// follows main, refilled with the other account's family (fresh seed
/// 0xfd8d11c64859b5db, which the shipped host passes). Not the binding of a
/// sub-agent whose own store still names its account: a host that makes
/// account 0's sub-agents adopt any newer family in main, identity unseen
/// (`FollowsAnyNewerFamily`), is reported once such a sub-agent takes
/// account 1's token from the refilled main. With email identities the copy
/// drops no account id, so the binding is the only check that sees it; with
/// the excuse widened to every sub-agent at a torn main this test fails.
#[test]
fn a_sub_agent_whose_own_store_names_its_account_stays_bound_after_main_is_torn() {
    let seed = 0xfd8d_11c6_4859_b5db;
    let overrides = replayed(
        2,
        2,
        "pause,write-error,disk-full,lost-fsync,torn-write,not-sent,server-error,timeout",
        "usage",
        2,
    );
    assert_the_shipped_host_passes(seed, &overrides);
    let torn_main = Overrides {
        faults: Some(FaultSet::parse_list("torn-write").expect("a fault kind")),
        actors: Some(ActorSet::parse_list("usage").expect("an actor")),
        requests: Some(6),
        ..Overrides::default()
    };
    let shape = |seed: u64| {
        let mut config = Config::derive(seed, &torn_main);
        config.agents = config.agents.max(2);
        config.knobs.other_account_store = true;
        config.knobs.in_place_writer = true;
        config.knobs.identity = IdentityShape::Email;
        config
    };
    // The first seed of 20,000 of this shape where the host is reported:
    // p1.a1's own store holds account 0's family at generation 8 when the
    // usage writer tears main, p0.a1 refills main with account 1's family,
    // and p1.a1, granted nothing in between, adopts it (shown to it past its
    // own generation).
    // The shipped host passes it.
    let seed = 0xe4a;
    let shipped = RunOptions {
        stop: StopOn::Never,
        ..RunOptions::default()
    };
    let control = run_config(shape(seed), &shipped);
    assert!(
        control.violations.is_empty(),
        "the shipped host: {:?}",
        control.violations
    );
    let broken = RunOptions {
        hooks: Arc::new(FollowsAnyNewerFamily),
        stop: StopOn::Guarantee(Guarantee::G3),
        ..RunOptions::default()
    };
    let outcome = run_config(shape(seed), &broken);
    let violation = outcome
        .violations
        .iter()
        .find(|v| v.guarantee == Guarantee::G3)
        .expect(
            "a torn main excuses a sub-agent whose own store names its account: the check is blind",
        );
    assert!(
        violation
            .detail
            .contains("p1.a1, bound to account 0, received a token of account 1"),
        "{violation}"
    );
    eprintln!("{violation}\n(seed {seed:#x} of this shape, with this host)");
}

/// The control: the shipped host over the same shapes fails no resolve
/// without a reason (and breaks nothing else).
#[test]
fn the_shipped_host_gives_the_oracle_nothing_on_the_same_shapes() {
    let options = RunOptions {
        hooks: Arc::new(Shipped),
        stop: StopOn::Never,
        ..RunOptions::default()
    };
    for overrides in [quiet(2, 1), quiet(2, 2)] {
        for seed in 0..200 {
            let outcome = run_seed(seed, &overrides, &options);
            assert!(
                outcome.violations.is_empty(),
                "seed {seed}: {:?}\nreplay: {}",
                outcome.violations,
                outcome.config.replay_command()
            );
        }
    }
}

/// The explorer judges what its state records: an adoption refused for no
/// reason ends `Superseded` with no re-login in the world (G2), found as a
/// shortest path; the shipped host in the same world is clean.
#[test]
fn the_explorer_reports_a_host_that_refuses_adoption_as_g2() {
    use rotor_sim::explore::{explore, ExploreConfig};
    let world = ExploreConfig {
        agents_per_process: vec![2],
        time_steps_max: 0,
        ..ExploreConfig::default()
    };
    let broken = explore(&world, Arc::new(RefusesAdoption));
    let found = broken
        .violations
        .iter()
        .find(|v| v.found.guarantee == Guarantee::G2)
        .unwrap_or_else(|| {
            panic!(
                "the explorer's oracle misses an unjustified Superseded: {} states, {:?}",
                broken.distinct_states,
                broken.guarantees()
            )
        });
    assert!(
        found.found.detail.contains("no login replaced the entry"),
        "{found}"
    );
    eprintln!("{found}");
    let shipped = explore(&world, Arc::new(Shipped));
    assert!(shipped.violations.is_empty(), "{}", shipped.violations[0]);
}
