//! G3 and G2 judged against the identity table ([`crate::identity_table`]),
//! not against the kernel's own gate.
//!
//! - **Every write, as it happens** ([`judge_write`], called by the model
//!   file system ([`crate::io`]) for every rename over every store file the
//!   shipped store code makes): when a write replaces a profile's credential
//!   with a different
//!   one, the replacement must be one the table allows (`existing` = the
//!   entry in the file just before, `incoming` = the entry written), of the
//!   same provider, over an `oauth` entry. That covers adopts, mirrors,
//!   rotations and whatever a broken host writes; only a login (a person
//!   choosing an account, [`WriteKind::Login`]) is exempt. A violation is G3.
//! - **Every refusal, at the end of a run** ([`judge_refusals`]): each
//!   identity refusal an agent reports (`IdentityRefused`, or a mirror
//!   `MirrorRefused(Identity)`) is re-judged on the credentials that agent
//!   actually read (recorded in [`Witnesses`]). A refusal the table does not
//!   demand costs convergence: a peer cannot adopt, or main keeps a spent
//!   token. That is reported as G2.

use std::collections::BTreeMap;

use rotor_kernel::{
    Credential, Failure, MirrorRefusal, ReauthReason, Role, StoreDoc, StoreRef, Warning,
};

use crate::check::{Guarantee, Log};
use crate::identity_table::{judge, Fields};
use crate::scenario::{AgentResult, AgentSpec, Scenario};
use crate::world::{World, NOW_MS};

/// Who made a write-back, as far as the gate is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// A kernel mutation, applied by a host (or what a broken host wrote
    /// in its place).
    Kernel,
    /// A background writer: usage statistics, an editing tool.
    Tool,
    /// A login installing a new token family: a person's choice of
    /// account, not a copy, so the gate does not apply.
    Login,
}

/// Judges one write-back of store `store` by `writer` (G3): every profile
/// whose credential changed must have changed as the table allows.
pub fn judge_write(
    store: &str,
    writer: &str,
    kind: WriteKind,
    before: &StoreDoc,
    after: &StoreDoc,
    log: &Log,
) {
    if kind == WriteKind::Login {
        return;
    }
    for (profile, incoming) in &after.profiles {
        let Some(existing) = before.profiles.get(profile) else {
            continue; // an empty slot: rule 6 allows anything
        };
        if existing == incoming {
            continue;
        }
        let what = format!("{writer} ({kind:?} write) replaced {profile} in store {store}");
        if !existing.is_oauth() {
            log.violation(
                Guarantee::G3,
                format!(
                    "{what}: the entry was {:?}, and a copy never overwrites a non-oauth entry \
                     (SPEC §2)",
                    existing.kind
                ),
            );
        }
        if existing.provider != incoming.provider {
            log.violation(
                Guarantee::G3,
                format!(
                    "{what}: provider {:?} over provider {:?}; a copy never crosses providers \
                     (SPEC §3 steps 2 and 8)",
                    incoming.provider, existing.provider
                ),
            );
        }
        let verdict = judge(&Fields::of(existing), &Fields::of(incoming));
        let (old, new) = (raw(existing), raw(incoming));
        if !verdict.allows() {
            log.violation(
                Guarantee::G3,
                format!("{what}: wrote {new} over {old}, but {verdict}"),
            );
        }
    }
}

/// A credential's identity fields as stored (before the normalization the
/// verdict applies), for reports: `{tenant "T", account " a ", email "E"}`.
fn raw(credential: &Credential) -> String {
    let fields = [
        ("tenant", &credential.tenant),
        ("account", &credential.account_id),
        ("email", &credential.email),
    ];
    let shown: Vec<String> = fields
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|value| format!("{name} {value:?}")))
        .collect();
    if shown.is_empty() {
        "{no identity}".to_string()
    } else {
        format!("{{{}}}", shown.join(", "))
    }
}

/// What one agent last read and committed: the inputs of the kernel's
/// identity decisions, for [`judge_refusals`].
#[derive(Clone, Debug, Default)]
pub struct Witness {
    /// The own store's credential, as last read.
    pub own: Option<Credential>,
    /// Main's credential, as last read.
    pub main: Option<Credential>,
    /// The last rotated credential the agent committed to its own store.
    pub committed: Option<Credential>,
}

/// Per-agent [`Witness`]es. Checker bookkeeping on a `std` mutex, like
/// [`Log`]: no scheduling point, never held across a model primitive.
#[derive(Debug, Default)]
pub struct Witnesses {
    seen: std::sync::Mutex<BTreeMap<String, Witness>>,
}

impl Witnesses {
    fn update(&self, agent: &str, change: impl FnOnce(&mut Witness)) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(seen.entry(agent.to_string()).or_default());
    }

    /// `agent` read `credential` from `store`.
    pub fn read(&self, agent: &str, store: StoreRef, credential: Option<Credential>) {
        self.update(agent, |witness| match store {
            StoreRef::Own => witness.own = credential,
            StoreRef::Main => witness.main = credential,
        });
    }

    /// `agent` committed the rotated `credential` to its own store.
    pub fn committed(&self, agent: &str, credential: Credential) {
        self.update(agent, |witness| witness.committed = Some(credential));
    }

    /// What `agent` read and committed (empty if nothing).
    pub fn of(&self, agent: &str) -> Witness {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(agent)
            .cloned()
            .unwrap_or_default()
    }
}

/// Re-judges every identity refusal against the table (G2: a refusal the
/// table does not demand loses convergence):
///
/// - each refusal an agent reports, on the credentials it read;
/// - each sub-agent that did not converge (it did not end with its
///   account's newest token, and no crash excuses it) while main held a
///   newer, usable credential of its own account that the table lets over
///   its own: the copy that converges it was refused, reported or not.
pub fn judge_refusals(scenario: &Scenario, world: &World, results: &[AgentResult]) {
    let log = &world.log;
    for (agent, result) in scenario.agents.iter().zip(results) {
        let witness = world.witnesses.of(&agent.name);
        match &result.resolution {
            Ok(granted) => {
                for warning in &granted.warnings {
                    judge_reported(&agent.name, warning, &witness, log);
                }
            }
            Err(Failure::NeedsReauth(ReauthReason::InDoubt { .. })) => {}
            Err(_) if agent.role == Role::Sub && !result.crashed => {
                judge_unconverged(world, agent, &witness);
            }
            Err(_) => {}
        }
    }
}

/// A refusal the kernel reported, re-judged on what the agent read.
fn judge_reported(agent: &str, warning: &Warning, witness: &Witness, log: &Log) {
    let (what, existing, incoming) = match warning {
        Warning::IdentityRefused(_) => ("adopting main's credential", &witness.own, &witness.main),
        Warning::MirrorRefused(MirrorRefusal::Identity(_)) => (
            "mirroring its rotation into main",
            &witness.main,
            &witness.committed,
        ),
        _ => return,
    };
    let (Some(existing), Some(incoming)) = (existing, incoming) else {
        return;
    };
    let verdict = judge(&Fields::of(existing), &Fields::of(incoming));
    let (old, new) = (raw(existing), raw(incoming));
    if verdict.allows() {
        log.violation(
            Guarantee::G2,
            format!(
                "{agent}: the identity gate refused {what} ({new} over {old}), but {verdict}: \
                 a refusal the table does not demand, and the copy that converges the agents \
                 was not made"
            ),
        );
    }
}

/// A sub-agent that failed although main, when it last looked, offered a
/// newer usable rotation of its own account that the table allows.
fn judge_unconverged(world: &World, agent: &AgentSpec, witness: &Witness) {
    let (Some(own), Some(main)) = (&witness.own, &witness.main) else {
        return;
    };
    let access = main.access.as_ref().map_or("", |access| access.expose());
    let family = world.provider.family_of_access(access);
    let margin_ms = rotor_kernel::Policy::default().refresh_margin_ms();
    let offered = family == Some(agent.account)
        && main.generation > own.generation
        && main.is_usable(NOW_MS, margin_ms);
    let verdict = judge(&Fields::of(own), &Fields::of(main));
    let (old, new) = (raw(own), raw(main));
    if offered && verdict.allows() {
        world.log.violation(
            Guarantee::G2,
            format!(
                "{}: main offered its own account's rotation (generation {}, {new}) over its \
                 {old} (generation {}), {verdict}, yet the agent ended without it: a refusal the \
                 table does not demand",
                agent.name, main.generation, own.generation
            ),
        );
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    //! The two judgements on hand-made inputs: what is reported, and what
    //! is not.
    use rotor_kernel::{Granted, IdentityRefusal, Outcome, Secret};

    use super::*;
    use crate::check::Guarantee;
    use crate::identity_scenarios::upgrade_small;
    use crate::world::{PROFILE, PROVIDER};

    fn credential(account_id: Option<&str>, email: Option<&str>) -> Credential {
        let mut credential = Credential::oauth(PROVIDER, "at", "rt", 0);
        credential.account_id = account_id.map(Into::into);
        credential.email = email.map(Into::into);
        credential
    }

    fn doc_with(credential: Credential) -> StoreDoc {
        let mut doc = StoreDoc::default();
        doc.profiles.insert(PROFILE.to_string(), credential);
        doc
    }

    fn judged(kind: WriteKind, before: Credential, after: Credential) -> Vec<Guarantee> {
        let log = Log::default();
        judge_write("s", "w", kind, &doc_with(before), &doc_with(after), &log);
        log.violations().iter().map(|v| v.guarantee).collect()
    }

    #[test]
    fn g3_a_write_over_another_account_is_reported_and_a_respelling_is_not() {
        let x = credential(Some("acct-x"), None);
        let y = credential(Some("acct-y"), None);
        assert_eq!(judged(WriteKind::Kernel, x.clone(), y), [Guarantee::G3]);
        let respelled = credential(Some(" acct-x "), Some("E@X"));
        let before = credential(Some("acct-x"), Some("e@x"));
        assert!(judged(WriteKind::Tool, before, respelled).is_empty());
        let mut other_provider = x.clone();
        other_provider.provider = "other".into();
        assert_eq!(
            judged(WriteKind::Kernel, x, other_provider),
            [Guarantee::G3]
        );
    }

    #[test]
    fn g3_a_login_is_a_choice_not_a_copy() {
        let x = credential(Some("acct-x"), None);
        let y = credential(Some("acct-y"), None);
        assert!(judged(WriteKind::Login, x, y).is_empty());
    }

    /// An agent `name` that ended `Refreshed` with `warning`.
    fn refreshed_with(name: &str, warning: Option<Warning>) -> AgentResult {
        AgentResult {
            name: name.to_string(),
            crashed: false,
            crashed_holding_lock: false,
            resolution: Ok(Granted {
                outcome: Outcome::Refreshed,
                access: Secret::new("at"),
                expires_at_ms: None,
                generation: 1,
                warnings: warning.into_iter().collect(),
            }),
        }
    }

    fn refusal_judged(own: Credential, main: Credential) -> Vec<Guarantee> {
        let scenario = upgrade_small();
        let world = World::build(&scenario);
        world.witnesses.read("u", StoreRef::Own, Some(own));
        world.witnesses.read("u", StoreRef::Main, Some(main));
        let refusal = IdentityRefusal::AccountDropped {
            existing: "as the kernel said".to_string(),
        };
        let results = [
            refreshed_with("main", None),
            refreshed_with("u", Some(Warning::IdentityRefused(refusal))),
        ];
        judge_refusals(&scenario, &world, &results);
        world.log.violations().iter().map(|v| v.guarantee).collect()
    }

    #[test]
    fn g2_a_refusal_the_table_does_not_demand_is_reported() {
        let upgrade = refusal_judged(credential(None, None), credential(Some("acct-1"), None));
        assert_eq!(upgrade, [Guarantee::G2]);
        let demanded = refusal_judged(credential(Some("a"), None), credential(Some("b"), None));
        assert!(demanded.is_empty());
    }
}
