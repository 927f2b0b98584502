//! The full flow through the canonical driver (`driver::resolve`) on an
//! in-memory host with a strict rotating provider: cached, adopted from main,
//! adopted from a peer, refreshed and mirrored, reuse then adopt, reuse then
//! NeedsReauth, in-doubt fence then NeedsReauth.
//!
//! Every flow ends with the world's global checks: the lock is free and was
//! released as often as taken (G8), and no refresh token was presented twice
//! by rotor participants (G1).

mod common;

use common::fixtures::{NOW_MS, PROFILE};
use common::memory_host::{resolve, Shared, World, MAIN_STORE};
use rotor_kernel::{Credential, Failure, Outcome, ReauthReason, Secret, Source};

/// A world where main and sub-agent `sub-a` (store `a`) both hold the first
/// token of a fresh login, expired.
fn shared_expired_login() -> (Shared, Credential) {
    let world = World::new(NOW_MS);
    let login = {
        let mut w = world.borrow_mut();
        let mut login = w.provider.login(NOW_MS - 2 * 3_600_000, 1);
        login.expires_at_ms = Some(NOW_MS - 1);
        w.add_sub("sub-a", "a");
        w.put(MAIN_STORE, login.clone());
        w.put("a", login.clone());
        login
    };
    (world, login)
}

fn refresh_of(credential: &Credential) -> String {
    credential
        .refresh
        .as_ref()
        .expect("oauth")
        .expose()
        .to_string()
}

/// G8 and G1 over the whole world, by rotor participants (`outsider` excluded).
#[track_caller]
fn assert_world_sound(world: &Shared) {
    let w = world.borrow();
    assert!(w.lock_holders.is_empty(), "G8: the lock is free at the end");
    assert_eq!(
        w.acquisitions, w.releases,
        "G8: every acquisition released once"
    );
    let mut seen = std::collections::BTreeSet::new();
    for (who, token) in &w.provider.presented {
        if who != "outsider" {
            assert!(
                seen.insert(token.clone()),
                "G1: {token} presented twice by rotor ({who})"
            );
        }
    }
}

#[test]
fn g2_cached() {
    let world = World::new(NOW_MS);
    let login = world.borrow_mut().provider.login(NOW_MS, 1);
    world.borrow_mut().put(MAIN_STORE, login.clone());
    let granted = resolve(&world, "main").expect("cached");
    assert_eq!(granted.outcome, Outcome::Cached);
    assert_eq!(Some(granted.access), login.access);
    assert!(world.borrow().provider.presented.is_empty(), "G2: no call");
    assert_eq!(world.borrow().acquisitions, 0, "no lock for a cached token");
    assert_world_sound(&world);
}

#[test]
fn g2_adopted_from_main() {
    let (world, login) = shared_expired_login();
    // The main agent refreshed; sub-a's store still has the old token.
    let main_result = resolve(&world, "main").expect("main refreshes");
    assert_eq!(main_result.outcome, Outcome::Refreshed);
    let granted = resolve(&world, "sub-a").expect("sub-a adopts");
    assert_eq!(granted.outcome, Outcome::Adopted { from: Source::Main });
    assert_eq!(granted.access, main_result.access);
    let w = world.borrow();
    assert_eq!(
        w.entry("a"),
        w.entry(MAIN_STORE),
        "the copy is stored in sub-a's store"
    );
    assert_eq!(
        w.provider.presented.len(),
        1,
        "G2: one call for both agents"
    );
    assert_eq!(w.provider.presentations_of(&refresh_of(&login)), 1, "G1");
    drop(w);
    assert_world_sound(&world);
}

#[test]
fn g2_adopted_from_a_peer_sharing_the_store() {
    // sub-a and sub-b share store `a`. sub-b refreshes while sub-a waits for
    // the lock; sub-a then finds the rotation in its own store (G2).
    let (world, _) = shared_expired_login();
    world.borrow_mut().add_sub("sub-b", "a");
    world.borrow_mut().before_acquire("sub-a", |world| {
        let granted = resolve(world, "sub-b").expect("sub-b refreshes");
        assert_eq!(granted.outcome, Outcome::Refreshed);
    });
    let granted = resolve(&world, "sub-a").expect("sub-a adopts the peer's rotation");
    assert_eq!(granted.outcome, Outcome::Adopted { from: Source::Peer });
    let w = world.borrow();
    assert_eq!(w.provider.presented.len(), 1, "G2: two agents, one call");
    assert_eq!(w.provider.rotations, 1);
    assert_eq!(
        Some(&granted.access),
        w.entry("a").and_then(|c| c.access.as_ref())
    );
    drop(w);
    assert_world_sound(&world);
}

#[test]
fn g1_g5_g6_refreshed_and_mirrored() {
    let (world, login) = shared_expired_login();
    let granted = resolve(&world, "sub-a").expect("sub-a refreshes");
    assert_eq!(granted.outcome, Outcome::Refreshed);
    assert_eq!(granted.generation, 2, "G5: generation + 1");
    let w = world.borrow();
    let own = w.entry("a").expect("stored");
    assert_eq!(own.access.as_ref(), Some(&granted.access), "G6: stored");
    assert_eq!(w.entry(MAIN_STORE), Some(own), "mirrored into main");
    assert!(
        w.store("a").fences.is_empty() && w.store(MAIN_STORE).fences.is_empty(),
        "G7: fences cleared"
    );
    assert_eq!(w.provider.presentations_of(&refresh_of(&login)), 1, "G1");
    drop(w);
    // The main agent now has a cached token: no second call (G2).
    assert_eq!(
        resolve(&world, "main").expect("main").outcome,
        Outcome::Cached
    );
    assert_eq!(world.borrow().provider.presented.len(), 1);
    assert_world_sound(&world);
}

#[test]
fn g1_reuse_then_adopt() {
    // A client outside rotor (no shared lock) exchanges the token while
    // sub-a's request is in flight and stores the rotation in main. sub-a's
    // presentation is then a reuse; it adopts the rotation found in main.
    let (world, login) = shared_expired_login();
    let token = refresh_of(&login);
    world.borrow_mut().during_call("sub-a", move |world| {
        let mut w = world.borrow_mut();
        let now_ms = w.now_ms;
        let grant = w
            .provider
            .exchange("outsider", &token, now_ms)
            .expect("first use");
        let mut rotated = w.entry(MAIN_STORE).cloned().expect("main has the login");
        rotated.access = Some(grant.access);
        rotated.refresh = grant.refresh;
        rotated.expires_at_ms = Some(now_ms + 3_600_000);
        rotated.generation += 1;
        w.put(MAIN_STORE, rotated);
    });
    let granted = resolve(&world, "sub-a").expect("adopted after reuse");
    assert_eq!(granted.outcome, Outcome::Adopted { from: Source::Main });
    let w = world.borrow();
    assert_eq!(w.entry("a"), w.entry(MAIN_STORE));
    assert_eq!(
        Some(&granted.access),
        w.entry(MAIN_STORE).and_then(|c| c.access.as_ref())
    );
    // The strict provider revoked the family on the reuse: the adopted access
    // token works until it expires, then the family needs a login.
    assert!(w.provider.is_revoked(&refresh_of(w.entry("a").unwrap())));
    drop(w);
    assert_world_sound(&world);
}

#[test]
fn g2_reuse_then_needs_reauth() {
    // The outsider exchanges the token and loses the result: nobody holds a
    // newer token. sub-a marks both stores; later resolves fail fast.
    let (world, login) = shared_expired_login();
    let token = refresh_of(&login);
    world.borrow_mut().during_call("sub-a", move |world| {
        let mut w = world.borrow_mut();
        let now_ms = w.now_ms;
        w.provider
            .exchange("outsider", &token, now_ms)
            .expect("first use");
    });
    match resolve(&world, "sub-a") {
        Err(Failure::NeedsReauth(ReauthReason::TokenRefused { .. })) => {}
        other => panic!("expected NeedsReauth(TokenRefused), got {other:?}"),
    }
    {
        let w = world.borrow();
        for store in ["a", MAIN_STORE] {
            let entry = w.entry(store).expect("kept for a re-login");
            assert!(entry.needs_reauth, "{store} is marked");
            assert_eq!(
                entry.refresh.as_ref().map(Secret::expose),
                Some(token_of(&login))
            );
            assert!(w.store(store).fences.is_empty());
        }
    }
    let presented = world.borrow().provider.presented.len();
    assert!(matches!(
        resolve(&world, "main"),
        Err(Failure::NeedsReauth(ReauthReason::Marked))
    ));
    assert!(matches!(
        resolve(&world, "sub-a"),
        Err(Failure::NeedsReauth(ReauthReason::Marked))
    ));
    assert_eq!(
        world.borrow().provider.presented.len(),
        presented,
        "G2: no further calls"
    );
    assert_world_sound(&world);
}

fn token_of(credential: &Credential) -> &str {
    credential
        .refresh
        .as_ref()
        .map(Secret::expose)
        .unwrap_or_default()
}

#[test]
fn g7_in_doubt_fence_then_needs_reauth() {
    // The provider rotates sub-a's token but the answer is lost: sub-a
    // reports InDoubt and leaves its fence; the main agent then refuses to
    // present the token again (G7), so the provider sees it once (G1).
    let (world, login) = shared_expired_login();
    world.borrow_mut().provider.lose_next_answer = true;
    assert!(matches!(
        resolve(&world, "sub-a"),
        Err(Failure::InDoubt { .. })
    ));
    {
        let w = world.borrow();
        let fp = Secret::new(token_of(&login)).fingerprint();
        assert_eq!(
            w.store("a").fences[PROFILE][0].refresh_fp,
            fp,
            "G7: fence kept"
        );
        assert_eq!(
            w.store(MAIN_STORE).fences[PROFILE][0].refresh_fp,
            fp,
            "G7: fence kept"
        );
        assert_eq!(w.provider.rotations, 1, "the provider did rotate");
    }
    match resolve(&world, "main") {
        Err(Failure::NeedsReauth(ReauthReason::InDoubt { fence })) => {
            assert_eq!(fence.holder.agent, "sub-a", "G10: names who left it");
        }
        other => panic!("expected NeedsReauth(InDoubt), got {other:?}"),
    }
    assert!(matches!(
        resolve(&world, "sub-a"),
        Err(Failure::NeedsReauth(ReauthReason::InDoubt { .. }))
    ));
    let w = world.borrow();
    assert_eq!(
        w.provider.presentations_of(token_of(&login)),
        1,
        "G1/G7: presented once"
    );
    assert!(
        !w.provider.is_revoked(token_of(&login)),
        "no reuse, so the family was not revoked"
    );
    drop(w);
    assert_world_sound(&world);
}

#[test]
fn g8_lock_held_elsewhere_is_a_lock_timeout() {
    let (world, _) = shared_expired_login();
    let key = rotor_kernel::LockKey::new(common::fixtures::PROVIDER, PROFILE);
    world
        .borrow_mut()
        .lock_holders
        .insert(key.clone(), "stalled".into());
    match resolve(&world, "sub-a") {
        Err(Failure::LockTimeout {
            key: named, holder, ..
        }) => {
            assert_eq!(named, key);
            assert_eq!(holder.as_deref(), Some("stalled"), "G10: names the holder");
        }
        other => panic!("expected LockTimeout, got {other:?}"),
    }
    assert!(
        world.borrow().provider.presented.is_empty(),
        "G8: no call without the lock"
    );
    world.borrow_mut().lock_holders.clear();
    assert_world_sound(&world);
}

/// A login through the one function every host runs for it
/// (`driver::locked_write`): under the refresh lock, it installs the new
/// family past every generation the store has seen and releases the lock;
/// while another participant holds the lock it waits out its budget and
/// writes nothing (G11, G8).
#[test]
fn g11_a_login_goes_through_the_refresh_lock_and_releases_it() {
    use common::memory_host::AgentHost;
    use rotor_kernel::driver::locked_write;
    use rotor_kernel::{LockKey, Mutation};

    let (world, _) = shared_expired_login();
    let key = LockKey::new("acme", PROFILE);
    let before = world.borrow().entry(MAIN_STORE).unwrap().generation;
    let fresh = Credential::oauth("acme", "at-new", "rt-new", NOW_MS + 3_600_000);
    let mut host = AgentHost::new(&world, "main");
    let login = Mutation::Login {
        credential: fresh.into(),
    };
    let generation = locked_write(
        &mut AgentHost::new(&world, "main"),
        &mut host,
        &key,
        PROFILE,
        &login,
        1_000,
    )
    .expect("the login lands");
    assert!(generation > before, "G5/G11: {generation} after {before}");
    assert_eq!(
        world.borrow().entry(MAIN_STORE).unwrap().access,
        Some(Secret::new("at-new"))
    );
    {
        let w = world.borrow();
        assert!(w.lock_holders.is_empty(), "G8: the lock was released");
        assert_eq!((w.acquisitions, w.releases), (1, 1));
    }
    // A holder in the way: the login times out and writes nothing.
    world
        .borrow_mut()
        .lock_holders
        .insert(key.clone(), "sub-a".into());
    let again = Mutation::Login {
        credential: Credential::oauth("acme", "at-3", "rt-3", NOW_MS + 3_600_000).into(),
    };
    let failure = locked_write(
        &mut AgentHost::new(&world, "main"),
        &mut AgentHost::new(&world, "main"),
        &key,
        PROFILE,
        &again,
        1_000,
    )
    .unwrap_err();
    assert!(
        matches!(failure, Failure::LockTimeout { .. }),
        "{failure:?}"
    );
    assert_eq!(
        world.borrow().entry(MAIN_STORE).unwrap().access,
        Some(Secret::new("at-new")),
        "nothing written without the lock"
    );
}
