//! Another program sharing the store logs in or out under the store lock
//! only (the `foreign-login` and `foreign-logout` actors). rotor's own login
//! takes the refresh lock, which masks the kernel's compare-and-swap of every
//! write against the entry as read; the foreign actors get past it, so the
//! compare-and-swap is what keeps G5 and G11, and it is checked on its own.

mod common;

use std::sync::Arc;

use common::CommitWithoutCas;
use rotor_sim::{
    run_seed, sweep, ActorKind, ActorSet, Branch, Guarantee, Overrides, RunOptions, StopOn,
};

fn foreign() -> Overrides {
    Overrides {
        actors: Some(
            ActorSet::none()
                .with(ActorKind::Usage)
                .with(ActorKind::ForeignLogin)
                .with(ActorKind::ForeignLogout),
        ),
        ..Overrides::default()
    }
}

/// Without the commit's compare-and-swap, a refresh in flight writes its old
/// family back over another program's login or logout: G11, found within a
/// few hundred seeds.
#[test]
fn a_commit_without_its_compare_and_swap_breaks_g11_against_a_foreign_login() {
    let options = RunOptions {
        hooks: Arc::new(CommitWithoutCas),
        stop: StopOn::Guarantee(Guarantee::G11),
        ..RunOptions::default()
    };
    let found = (0..2_000).find_map(|seed| {
        let outcome = run_seed(seed, &foreign(), &options);
        outcome
            .violations
            .iter()
            .find(|v| v.guarantee == Guarantee::G11)
            .map(|v| (v.clone(), outcome.config.replay_command()))
    });
    let (violation, replay) = found.expect("no G11 within 2,000 seeds: the CAS is unchecked");
    eprintln!("{violation}\nreplay: {replay} (with this host)");
}

/// The same broken host against rotor's own login and logout, which take
/// the refresh lock: nothing shows, because the lock masks the
/// compare-and-swap. That is why the foreign actors exist.
#[test]
fn the_refresh_lock_masks_a_commit_without_its_compare_and_swap() {
    let options = RunOptions {
        hooks: Arc::new(CommitWithoutCas),
        stop: StopOn::Guarantee(Guarantee::G11),
        ..RunOptions::default()
    };
    let own = Overrides {
        actors: Some(
            ActorSet::none()
                .with(ActorKind::Usage)
                .with(ActorKind::Relogin)
                .with(ActorKind::Logout),
        ),
        ..Overrides::default()
    };
    for seed in 0..2_000 {
        let outcome = run_seed(seed, &own, &options);
        assert!(
            !outcome.violated(Guarantee::G11),
            "seed {seed:#x}: rotor's own login no longer masks the commit's compare-and-swap: {:?}",
            outcome.violations
        );
    }
}

/// The shipped host against the same actors: nothing violated, and every
/// compare-and-swap branch reached (the rarest, `cas-mirror-logout`, about
/// once in 2,000 seeds: a logout in main between the provider's rotation
/// and the mirror right after it).
#[test]
fn the_shipped_host_keeps_foreign_logins_and_logouts_and_reaches_every_cas_branch() {
    let report = sweep(0..6_000, &foreign(), &RunOptions::default(), 8, |_| {});
    for failure in &report.failures {
        eprintln!(
            "{}\nreplay: {}",
            failure.first().map(|v| v.to_string()).unwrap_or_default(),
            failure.config.replay_command()
        );
    }
    assert!(report.failures.is_empty());
    for branch in [
        Branch::CasFenceLogin,
        Branch::CasFenceLogout,
        Branch::CasCommitLogin,
        Branch::CasCommitLogout,
        Branch::CasMirrorLogin,
        Branch::CasMirrorLogout,
    ] {
        assert!(
            report.coverage.has(branch),
            "{} never reached",
            branch.name()
        );
    }
}
