//! The configurations the loom and shuttle models run. Every store starts
//! with its account's credential already expired, so every agent needs a
//! refresh at once: the moment the protocol is there for.

use rotor_kernel::Role;

use crate::scenario::Scenario;

/// loom: two sub-agents in two processes refresh one expired credential
/// while a background writer updates main's `state`. Agent a's store holds
/// a copy of the credential, agent b's store is empty (b reads main).
pub fn two_agents_and_a_writer() -> Scenario {
    let mut scenario = Scenario::new("two_agents_and_a_writer");
    let x = scenario.account("acct-x");
    let main = scenario.store("main", Some(x));
    let store_a = scenario.store("agent-a", Some(x));
    let store_b = scenario.store("agent-b", None);
    scenario.agent("a", 1, Role::Sub, store_a, x);
    scenario.agent("b", 2, Role::Sub, store_b, x);
    scenario.writer("writer", main, 1);
    scenario
}

/// loom: three threads of one process (the main agent) resolve at once; the
/// single-flight is all that keeps them apart inside the process.
pub fn three_callers_one_process() -> Scenario {
    let mut scenario = Scenario::new("three_callers_one_process");
    let x = scenario.account("acct-x");
    let main = scenario.store("main", Some(x));
    for name in ["caller-1", "caller-2", "caller-3"] {
        scenario.agent(name, 1, Role::Main, main, x);
    }
    scenario
}

/// loom: a sub-agent bound to account x and the main agent bound to y
/// refresh at once. Neither may end with the other's token (G3); each
/// family is rotated once (G2).
pub fn sub_and_main_identity_mismatch() -> Scenario {
    let mut scenario = Scenario::new("sub_and_main_identity_mismatch");
    let x = scenario.account("acct-x");
    let y = scenario.account("acct-y");
    let main = scenario.store("main", Some(y));
    let store_a = scenario.store("agent-a", Some(x));
    scenario.agent("main", 1, Role::Main, main, y);
    scenario.agent("a", 2, Role::Sub, store_a, x);
    scenario
}

/// A finding, not a model of the correct protocol: two sub-agents whose
/// stores both hold account x's credential while main holds account y's.
/// The mirror into main is refused by the identity gate (G3, rightly), so
/// the one rotation of x lands only in the refresher's own store; the other
/// sub-agent finds nothing newer anywhere it looks, no fence on its copy,
/// and presents the consumed token (G1). The protocol of SPEC §3 has no
/// place where two sub-agents of one account meet when main is another
/// account's. `loom_findings` pins it.
pub fn two_subs_of_x_under_a_main_of_y() -> Scenario {
    let mut scenario = Scenario::new("two_subs_of_x_under_a_main_of_y");
    let x = scenario.account("acct-x");
    let y = scenario.account("acct-y");
    scenario.store("main", Some(y));
    let store_a = scenario.store("agent-a", Some(x));
    let store_b = scenario.store("agent-b", Some(x));
    scenario.agent("a", 1, Role::Sub, store_a, x);
    scenario.agent("b", 2, Role::Sub, store_b, x);
    scenario
}

/// shuttle: six agents in four processes: two threads of the main agent,
/// two processes sharing agent a's store, two threads of agent b (empty
/// store); background writers on main and on a's store.
pub fn six_agents_two_writers() -> Scenario {
    let mut scenario = Scenario::new("six_agents_two_writers");
    let x = scenario.account("acct-x");
    let main = scenario.store("main", Some(x));
    let store_a = scenario.store("agent-a", Some(x));
    let store_b = scenario.store("agent-b", None);
    scenario.agent("main-1", 1, Role::Main, main, x);
    scenario.agent("main-2", 1, Role::Main, main, x);
    scenario.agent("a-1", 2, Role::Sub, store_a, x);
    scenario.agent("a-2", 3, Role::Sub, store_a, x);
    scenario.agent("b-1", 4, Role::Sub, store_b, x);
    scenario.agent("b-2", 4, Role::Sub, store_b, x);
    scenario.writer("main-writer", main, 2);
    scenario.writer("a-writer", store_a, 1);
    scenario
}

/// shuttle: four agents, one of which (`crasher`, a sub-agent alone in its
/// process) dies just before its effect `crash_before_effect`.
pub fn four_agents_one_crash(crash_before_effect: u32) -> Scenario {
    let mut scenario = Scenario::new("four_agents_one_crash");
    let x = scenario.account("acct-x");
    let main = scenario.store("main", Some(x));
    let store_a = scenario.store("agent-a", Some(x));
    let store_c = scenario.store("agent-c", Some(x));
    let store_d = scenario.store("agent-d", None);
    scenario.agent("main", 1, Role::Main, main, x);
    scenario.agent("a", 2, Role::Sub, store_a, x);
    let crasher = scenario.agent("crasher", 3, Role::Sub, store_c, x);
    scenario.agent("d", 4, Role::Sub, store_d, x);
    scenario.crash(crasher, crash_before_effect);
    scenario.writer("writer", main, 1);
    scenario
}

/// shuttle: two accounts. Main holds y; the main agent runs two threads;
/// sub-agent a is bound to x; sub-agent c (empty store) and sub-agent d
/// (store holding y) follow main.
pub fn two_accounts_five_agents() -> Scenario {
    let mut scenario = Scenario::new("two_accounts_five_agents");
    let x = scenario.account("acct-x");
    let y = scenario.account("acct-y");
    let main = scenario.store("main", Some(y));
    let store_a = scenario.store("agent-a", Some(x));
    let store_c = scenario.store("agent-c", None);
    let store_d = scenario.store("agent-d", Some(y));
    scenario.agent("main-1", 1, Role::Main, main, y);
    scenario.agent("main-2", 1, Role::Main, main, y);
    scenario.agent("a", 2, Role::Sub, store_a, x);
    scenario.agent("c", 3, Role::Sub, store_c, y);
    scenario.agent("d", 4, Role::Sub, store_d, y);
    scenario.writer("writer", main, 1);
    scenario
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    //! One real-thread run of each configuration: a smoke test of the model
    //! itself (the checkers run them under loom and shuttle).
    use std::sync::Arc;

    use super::*;
    use crate::check::FailOn;
    use crate::scenario::{run_checked, CorrectHost};

    #[test]
    fn every_configuration_runs_clean_on_real_threads() {
        for scenario in [
            two_agents_and_a_writer(),
            three_callers_one_process(),
            sub_and_main_identity_mismatch(),
            six_agents_two_writers(),
            four_agents_one_crash(3),
            two_accounts_five_agents(),
        ] {
            let report = run_checked(&scenario, &Arc::new(CorrectHost), FailOn::Any);
            let accounts = scenario.accounts.len();
            if scenario
                .agents
                .iter()
                .all(|a| a.crash_before_effect.is_none())
            {
                assert_eq!(report.endpoint_calls, accounts, "G2: {}", scenario.name);
            }
        }
    }
}
