//! The end-of-run checks (see [`crate::check`] for the ones made as things
//! happen).

use std::collections::BTreeMap;

use rotor_kernel::{Failure, ReauthReason};

use crate::check::Guarantee;
use crate::gate_check::judge_refusals;
use crate::scenario::{AgentResult, Scenario, WriterKind};
use crate::store::usage_of;
use crate::world::{World, MAIN_STORE, PROFILE};

/// Checks a finished run and records what broke in `world.log`.
///
/// - **G1**: no refresh token value was presented twice.
/// - **G2**: every account needing a rotation got exactly one endpoint call
///   (at most one when a process crashed), and every agent that did not
///   crash holds its account's newest access token. After a crash, an agent
///   may instead end `NeedsReauth` for an in-doubt fence (G7 asks for that:
///   the crashed process may have presented the token).
/// - **G3**: no agent holds, and no store ends with, another account's token
///   (a store may end with the token of an account logged in there).
/// - **G2** for the identity gate: every identity refusal an agent reports is
///   one the table of SPEC §5 demands ([`judge_refusals`]).
/// - **G4**: every background writer's update is in its store.
/// - **G8**: no lock is held once everyone is done.
pub fn verify(scenario: &Scenario, world: &World, results: &[AgentResult]) {
    let log = &world.log;
    let provider = &world.provider;
    let presentations = provider.presentations();

    let mut presenters: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for presentation in &presentations {
        presenters
            .entry(&presentation.refresh)
            .or_default()
            .push(&presentation.by);
    }
    for (refresh, by) in &presenters {
        if by.len() > 1 {
            log.violation(
                Guarantee::G1,
                format!(
                    "refresh token {refresh} was presented {} times (by {}); the provider \
                     revoked the family",
                    by.len(),
                    by.join(", ")
                ),
            );
        }
    }

    let crashed = results.iter().any(|result| result.crashed);
    let mut accounts: Vec<usize> = scenario.agents.iter().map(|agent| agent.account).collect();
    accounts.sort_unstable();
    accounts.dedup();
    for &account in &accounts {
        let calls = presentations
            .iter()
            .filter(|p| p.family == Some(account))
            .count();
        let expected = if crashed { calls <= 1 } else { calls == 1 };
        if !expected {
            log.violation(
                Guarantee::G2,
                format!(
                    "account {}: {calls} endpoint calls where one rotation was needed{}",
                    scenario.accounts[account].name,
                    if crashed {
                        " (a process crashed: at most one)"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    for (agent, result) in scenario.agents.iter().zip(results) {
        if result.crashed {
            continue;
        }
        let newest = provider.latest_access(agent.account);
        let fine = match &result.resolution {
            Ok(granted) => granted.access.expose() == newest,
            Err(Failure::NeedsReauth(ReauthReason::InDoubt { .. })) => crashed,
            Err(_) => false,
        };
        if !fine {
            log.violation(
                Guarantee::G2,
                format!(
                    "{} ended with {} instead of the new token {newest}",
                    agent.name,
                    describe(&result.resolution)
                ),
            );
        }
    }

    for (agent, result) in scenario.agents.iter().zip(results) {
        let Ok(granted) = &result.resolution else {
            continue;
        };
        let family = provider.family_of_access(granted.access.expose());
        if family != Some(agent.account) {
            log.violation(
                Guarantee::G3,
                format!(
                    "{} is bound to {} but received {} ({})",
                    agent.name,
                    scenario.accounts[agent.account].name,
                    granted.access.expose(),
                    family.map_or("a token the provider never issued".to_string(), |f| {
                        format!("a token of {}", scenario.accounts[f].name)
                    })
                ),
            );
        }
    }
    for (index, spec) in scenario.stores.iter().enumerate() {
        let mut bound: Vec<usize> = spec.holds.into_iter().collect();
        let agents = scenario.agents.iter().filter(|agent| agent.store == index);
        bound.extend(agents.map(|agent| agent.account));
        if index == MAIN_STORE {
            bound.extend(scenario.logins.iter().map(|login| login.account));
        }
        bound.sort_unstable();
        bound.dedup();
        if bound.is_empty() {
            continue;
        }
        let doc = world.store_doc(index);
        let Some(credential) = doc.profiles.get(PROFILE) else {
            continue;
        };
        let access = credential
            .access
            .as_ref()
            .map_or("", |access| access.expose());
        let family = provider.family_of_access(access);
        if !family.is_some_and(|family| bound.contains(&family)) {
            let names: Vec<&str> = bound
                .iter()
                .map(|&account| scenario.accounts[account].name.as_str())
                .collect();
            log.violation(
                Guarantee::G3,
                format!(
                    "store {} belongs to {} but ends with {}",
                    spec.name,
                    names.join(" or "),
                    family.map_or("a token the provider never issued".to_string(), |f| {
                        format!("a token of {}", scenario.accounts[f].name)
                    })
                ),
            );
        }
    }
    judge_refusals(scenario, world, results);

    for (index, spec) in scenario.stores.iter().enumerate() {
        let expected: u64 = scenario
            .writers
            .iter()
            .filter(|writer| writer.store == index && writer.kind == WriterKind::Usage)
            .map(|writer| u64::from(writer.writes))
            .sum();
        let found = usage_of(&world.store_doc(index));
        if found != expected {
            log.violation(
                Guarantee::G4,
                format!(
                    "store {}: the background writers made {expected} updates of state.usage, \
                     the store holds {found}",
                    spec.name
                ),
            );
        }
    }

    for (path, held) in world.machine.held_locks() {
        log.violation(
            Guarantee::G8,
            format!(
                "lock {} is still held by process {} (fence {}, taken by {}) after every \
                 thread finished",
                path.display(),
                held.pid,
                held.fence,
                held.by
            ),
        );
    }
}

fn describe(resolution: &rotor_kernel::Resolution) -> String {
    match resolution {
        Ok(granted) => format!(
            "{:?} token {} (generation {})",
            granted.outcome,
            granted.access.expose(),
            granted.generation
        ),
        Err(failure) => format!("failure \"{failure}\""),
    }
}
