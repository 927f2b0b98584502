//! Configurations where the identity gate's decision matters while agents
//! race (SPEC §5, G3), for the loom and shuttle models.
//!
//! Every store starts with its account's credential expired, so every agent
//! refreshes or copies at once, and the gate is asked in both directions:
//! a sub-agent adopting from main, and mirroring its rotation into main.
//! The configurations come in two kinds, so that a gate wrong in either
//! direction breaks a guarantee the checker names:
//!
//! - **refusals**: main and the sub-agents hold *different* token families
//!   whose identities the table refuses in both directions. The correct gate
//!   keeps every family in its own stores; a gate that lets one of these
//!   copies through hands an agent another account's token (G3).
//! - **same identity**: main and the sub-agents hold *one* family, spelled
//!   differently (no identity, padded account ids, emails in other cases,
//!   other emails beside equal account ids), which the table allows in both
//!   directions. The correct gate lets them share one rotation; a gate that
//!   refuses one of these copies leaves an agent without it (G2).
//!
//! Background writers run alongside: usage statistics, and an editing tool
//! that rewrites main's entry in another spelling of the same identity (so
//! the gate is asked about credentials whose raw fields keep changing).

use rotor_kernel::Role;

use crate::scenario::{Scenario, Shape};
use crate::world::PROVIDER;

const EMAIL: &str = "a@example.com";

/// Rows 1 and 2 (refusals): main is {tenant T, account "acct-1", email e}.
/// Sub-agent t is {tenant U, account "acct-1"} (tenants differ), c is
/// {account "Acct-1"} (account ids differ in case only), e is
/// {account "acct-2", email e} (account ids differ, emails equal). Main's
/// tenant refuses every mirror (rule 1); the adopts are refused by rules 1,
/// 2 and 2. Four agents, a usage writer and an editing tool on main.
pub fn tenant_and_account_refusals() -> Scenario {
    let mut scenario = Scenario::new("tenant_and_account_refusals");
    let main_shape = Shape::account("acct-1").email(EMAIL).tenant("tenant-t");
    let m = scenario.account_at("main-acct", PROVIDER, Shape::account("acct-1"));
    let t = scenario.account_at("t-acct", PROVIDER, Shape::account("acct-1"));
    let c = scenario.account_at("c-acct", PROVIDER, Shape::account("Acct-1"));
    let e = scenario.account_at("e-acct", PROVIDER, Shape::account("acct-2"));
    let main = scenario.store_shaped("main", Some(m), main_shape);
    let store_t = scenario.store_shaped(
        "agent-t",
        Some(t),
        Shape::account("acct-1").tenant("tenant-u"),
    );
    let store_c = scenario.store_shaped("agent-c", Some(c), Shape::account("Acct-1"));
    let store_e = scenario.store_shaped("agent-e", Some(e), Shape::account("acct-2").email(EMAIL));
    scenario.agent("main", 1, Role::Main, main, m);
    scenario.agent("t", 2, Role::Sub, store_t, t);
    scenario.agent("c", 3, Role::Sub, store_c, c);
    scenario.agent("e", 4, Role::Sub, store_e, e);
    scenario.writer("usage", main, 1);
    scenario.editor("editor", main, 1);
    scenario
}

/// Rule 1 alone, small enough for loom: main {tenant T, account "acct-1"}
/// and its agent, sub-agent t {tenant U, account "acct-1"} of another
/// family, and the editing tool rewriting main once.
pub fn tenant_refusal_small() -> Scenario {
    let mut scenario = Scenario::new("tenant_refusal_small");
    let m = scenario.account_at("main-acct", PROVIDER, Shape::account("acct-1"));
    let t = scenario.account_at("t-acct", PROVIDER, Shape::account("acct-1"));
    let main = scenario.store_shaped("main", Some(m), Shape::account("acct-1").tenant("tenant-t"));
    let store_t = scenario.store_shaped(
        "agent-t",
        Some(t),
        Shape::account("acct-1").tenant("tenant-u"),
    );
    scenario.agent("main", 1, Role::Main, main, m);
    scenario.agent("t", 2, Role::Sub, store_t, t);
    scenario.editor("editor", main, 1);
    scenario
}

/// Rules 3, 4 and 5 (refusals where identity would be dropped or differs):
/// main is {tenant T, email e} (its provider reports no identity). Sub-agent
/// d is {account "acct-9", email E} (the same email in capitals: main's
/// credential would drop d's account id, rule 3; the seed allowed it), and
/// n is {email f} (emails differ, rule 4); rule 5 needs a main without an
/// email, see [`email_drop_refusal`]. Main's tenant refuses every mirror.
/// Three agents, usage writer, editor.
pub fn dropped_identity_refusals() -> Scenario {
    let mut scenario = Scenario::new("dropped_identity_refusals");
    let m = scenario.account_at("main-acct", PROVIDER, Shape::none());
    let d = scenario.account_at("d-acct", PROVIDER, Shape::none());
    let n = scenario.account_at("n-acct", PROVIDER, Shape::none());
    let main = scenario.store_shaped("main", Some(m), Shape::email_only(EMAIL).tenant("tenant-t"));
    let store_d = scenario.store_shaped(
        "agent-d",
        Some(d),
        Shape::account("acct-9").email("A@Example.COM"),
    );
    let store_n = scenario.store_shaped("agent-n", Some(n), Shape::email_only("n@example.com"));
    scenario.agent("main", 1, Role::Main, main, m);
    scenario.agent("d", 2, Role::Sub, store_d, d);
    scenario.agent("n", 3, Role::Sub, store_n, n);
    scenario.writer("usage", main, 1);
    scenario.editor("editor", main, 1);
    scenario
}

/// Rule 5 (refusal): main is {tenant T} with no email; sub-agent f is
/// {email f} of another family (main's credential would drop f's email).
/// Sub-agent g has an empty store and follows main (its copies are
/// upgrades, rule 6). Three agents and the editing tool.
pub fn email_drop_refusal() -> Scenario {
    let mut scenario = Scenario::new("email_drop_refusal");
    let m = scenario.account_at("main-acct", PROVIDER, Shape::none());
    let f = scenario.account_at("f-acct", PROVIDER, Shape::none());
    let main = scenario.store_shaped("main", Some(m), Shape::none().tenant("tenant-t"));
    let store_f = scenario.store_shaped("agent-f", Some(f), Shape::email_only("f@example.com"));
    let store_g = scenario.store_shaped("agent-g", None, Shape::none());
    scenario.agent("main", 1, Role::Main, main, m);
    scenario.agent("f", 2, Role::Sub, store_f, f);
    scenario.agent("g", 3, Role::Sub, store_g, m);
    scenario.editor("editor", main, 1);
    scenario
}

/// Rules 2 and 6 (same identity): one family everywhere, whose provider
/// reports {account "acct-1", email e}. Main is {account "acct-1", email e};
/// sub-agent u holds a copy with no identity (an upgrade, rule 6; a
/// symmetric gate refuses it, B16), w holds {account "  acct-1 ",
/// email " A@Example.com "} (the same after trim and lowercase), k holds
/// {account "acct-1", email other} (equal account ids: emails ignored).
/// Four agents share one rotation; usage writer and editor on main.
pub fn same_identity_copies() -> Scenario {
    let mut scenario = Scenario::new("same_identity_copies");
    let reports = Shape::account("acct-1").email(EMAIL);
    let m = scenario.account_at("acct-1", PROVIDER, reports.clone());
    let main = scenario.store_shaped("main", Some(m), reports);
    let store_u = scenario.store_shaped("agent-u", Some(m), Shape::none());
    let store_w = scenario.store_shaped(
        "agent-w",
        Some(m),
        Shape::account("  acct-1 ").email(" A@Example.com "),
    );
    let store_k = scenario.store_shaped(
        "agent-k",
        Some(m),
        Shape::account("acct-1").email("other@example.com"),
    );
    scenario.agent("main", 1, Role::Main, main, m);
    scenario.agent("u", 2, Role::Sub, store_u, m);
    scenario.agent("w", 3, Role::Sub, store_w, m);
    scenario.agent("k", 4, Role::Sub, store_k, m);
    scenario.writer("usage", main, 1);
    scenario.editor("editor", main, 1);
    scenario
}

/// Rule 6 alone, small enough for loom: main {account "acct-1"} and its
/// agent, sub-agent u holding a copy of the same family with no identity.
pub fn upgrade_small() -> Scenario {
    let mut scenario = Scenario::new("upgrade_small");
    let m = scenario.account("acct-1");
    let main = scenario.store("main", Some(m));
    let store_u = scenario.store_shaped("agent-u", Some(m), Shape::none());
    scenario.agent("main", 1, Role::Main, main, m);
    scenario.agent("u", 2, Role::Sub, store_u, m);
    scenario
}

/// Rule 4 with the email normalization (same identity): one family whose
/// provider reports no identity. Main is {email " Alice@Example.com "},
/// sub-agent s holds {email "ALICE@example.COM"}, v's store is empty (it
/// follows main; a copy with no identity could not be mirrored over main's
/// email, rule 5). Emails that differ only in case and padding are one
/// identity: all three share one rotation. The editor re-cases main's email.
pub fn email_case_copies() -> Scenario {
    let mut scenario = Scenario::new("email_case_copies");
    let m = scenario.account_at("alice", PROVIDER, Shape::none());
    let main = scenario.store_shaped("main", Some(m), Shape::email_only(" Alice@Example.com "));
    let store_s = scenario.store_shaped("agent-s", Some(m), Shape::email_only("ALICE@example.COM"));
    let store_v = scenario.store_shaped("agent-v", None, Shape::none());
    scenario.agent("main", 1, Role::Main, main, m);
    scenario.agent("s", 2, Role::Sub, store_s, m);
    scenario.agent("v", 3, Role::Sub, store_v, m);
    scenario.editor("editor", main, 1);
    scenario
}

/// The email normalization alone, small enough for loom: main
/// {email " Alice@Example.com "} and its agent, sub-agent s holding a copy
/// {email "ALICE@example.COM"} of the same family, and the editing tool
/// re-casing main's email: one identity, one rotation.
pub fn email_case_small() -> Scenario {
    let mut scenario = Scenario::new("email_case_small");
    let m = scenario.account_at("alice", PROVIDER, Shape::none());
    let main = scenario.store_shaped("main", Some(m), Shape::email_only(" Alice@Example.com "));
    let store_s = scenario.store_shaped("agent-s", Some(m), Shape::email_only("ALICE@example.COM"));
    scenario.agent("main", 1, Role::Main, main, m);
    scenario.agent("s", 2, Role::Sub, store_s, m);
    scenario.editor("editor", main, 1);
    scenario
}

/// Only the mirror asks the gate (refusal): main holds {tenant T,
/// account "acct-1"} of another family, expired, with no agent of its own
/// (so nothing in main is ever worth adopting). Two processes share
/// sub-agent store t, {tenant U, account "acct-1"}; the one that refreshes
/// must not mirror its rotation over main (rule 1).
pub fn mirror_only_refusal() -> Scenario {
    let mut scenario = Scenario::new("mirror_only_refusal");
    let m = scenario.account_at("main-acct", PROVIDER, Shape::account("acct-1"));
    let t = scenario.account_at("t-acct", PROVIDER, Shape::account("acct-1"));
    scenario.store_shaped("main", Some(m), Shape::account("acct-1").tenant("tenant-t"));
    let store_t = scenario.store_shaped(
        "agent-t",
        Some(t),
        Shape::account("acct-1").tenant("tenant-u"),
    );
    scenario.agent("t-1", 1, Role::Sub, store_t, t);
    scenario.agent("t-2", 2, Role::Sub, store_t, t);
    scenario
}

/// Only the mirror asks the gate (same identity): main holds
/// {account "acct-1", email e}, expired, with no agent; two processes share
/// sub-agent store k, a copy of the same family spelled {account "acct-1",
/// email other} (its provider reports the account id only). The rotation
/// must be mirrored into main (rule 2: equal account ids, emails ignored).
pub fn mirror_only_same_identity() -> Scenario {
    let mut scenario = Scenario::new("mirror_only_same_identity");
    let m = scenario.account_at("acct-1", PROVIDER, Shape::account("acct-1"));
    scenario.store_shaped("main", Some(m), Shape::account("acct-1").email(EMAIL));
    let store_k = scenario.store_shaped(
        "agent-k",
        Some(m),
        Shape::account("acct-1").email("other@example.com"),
    );
    scenario.agent("k-1", 1, Role::Sub, store_k, m);
    scenario.agent("k-2", 2, Role::Sub, store_k, m);
    scenario
}

/// A re-login as another account in the middle of a refresh: main and
/// sub-agent store a hold account "acct-1"; two processes share store a and
/// refresh it; meanwhile a login (taking the refresh lock, like `rotor
/// login`) installs account "acct-2" in main. Whatever the order, store a
/// never takes acct-2's credential (rule 2) and main ends with acct-2's
/// (a mirror of acct-1's rotation never lands over the login, G11).
pub fn relogin_mid_refresh() -> Scenario {
    let mut scenario = Scenario::new("relogin_mid_refresh");
    let y = scenario.account("acct-1");
    let z = scenario.account("acct-2");
    let main = scenario.store("main", Some(y));
    let store_a = scenario.store("agent-a", Some(y));
    scenario.agent("a-1", 1, Role::Sub, store_a, y);
    scenario.agent("a-2", 2, Role::Sub, store_a, y);
    scenario.login("relogin", 3, z, Shape::account("acct-2"));
    scenario.writer("usage", main, 1);
    scenario
}

/// The re-login, small enough for loom: one sub-agent refreshing account
/// "acct-1" while main is re-logged in as "acct-2".
pub fn relogin_small() -> Scenario {
    let mut scenario = Scenario::new("relogin_small");
    let y = scenario.account("acct-1");
    let z = scenario.account("acct-2");
    scenario.store("main", Some(y));
    let store_a = scenario.store("agent-a", Some(y));
    scenario.agent("a", 1, Role::Sub, store_a, y);
    scenario.login("relogin", 2, z, Shape::account("acct-2"));
    scenario
}

/// Credentials that differ by provider only: main holds provider "other"'s
/// credential for account id "acct-1", fresh; two processes share sub-agent
/// store s, which holds provider acme's credential for the same account id,
/// expired. The identity fields match, but a copy never crosses providers
/// (SPEC §3 steps 2 and 8): the sub-agents refresh acme's token and never
/// adopt main's, nor mirror over it. The editor rewrites main meanwhile.
/// (No agent refreshes "other" here: its lock key is another one, so its
/// writes to main would race the sub-agents' fences there, which is the
/// compare-and-swap's business, not the gate's.)
pub fn provider_mismatch() -> Scenario {
    let mut scenario = Scenario::new("provider_mismatch");
    let o = scenario.account_at("other-acct", "other", Shape::account("acct-1"));
    let s = scenario.account_at("acme-acct", PROVIDER, Shape::account("acct-1"));
    let main = scenario.store_shaped("main", Some(o), Shape::account("acct-1"));
    scenario.fresh(main);
    let store_s = scenario.store_shaped("agent-s", Some(s), Shape::account("acct-1"));
    scenario.agent("s-1", 1, Role::Sub, store_s, s);
    scenario.agent("s-2", 2, Role::Sub, store_s, s);
    scenario.editor("editor", main, 1);
    scenario
}

/// Every configuration above, for the smoke test and the shuttle models.
pub fn all() -> Vec<Scenario> {
    vec![
        tenant_and_account_refusals(),
        tenant_refusal_small(),
        dropped_identity_refusals(),
        email_drop_refusal(),
        same_identity_copies(),
        upgrade_small(),
        email_case_copies(),
        email_case_small(),
        mirror_only_refusal(),
        mirror_only_same_identity(),
        relogin_mid_refresh(),
        relogin_small(),
        provider_mismatch(),
    ]
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    //! A few real-thread runs of each configuration: a smoke test of the
    //! model (the checkers run them under loom and shuttle).
    use std::sync::Arc;

    use crate::check::FailOn;
    use crate::scenario::{run_checked, CorrectHost};

    #[test]
    fn every_identity_configuration_runs_clean_on_real_threads() {
        for _ in 0..20 {
            for scenario in super::all() {
                run_checked(&scenario, &Arc::new(CorrectHost), FailOn::Any);
            }
        }
    }
}
