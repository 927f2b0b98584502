//! Broken identity gates, one rule of SPEC §5 wrong in each, for showing
//! that the models' G3 and G2 checks catch every row going wrong.
//!
//! # How a broken gate is put in front of the real kernel
//!
//! The shipped kernel has no switch for its gate, and gets none. Instead
//! [`GateHost`] is a host that overrules the kernel's gate with a
//! [`BrokenGate`] at the two places the gate decides a copy, doing what
//! the kernel would have done with that gate:
//!
//! - **a copy the kernel refused, which the broken gate allows**: when a
//!   sub-agent reads main and main's credential is one the kernel would
//!   adopt but for the gate (oauth, same provider, newer, usable), the host
//!   copies it into the agent's own store itself (a real `Mutation::Adopt`,
//!   compare-and-swap included); the kernel, re-reading under the lock,
//!   finds it there and hands it out. When the kernel refuses a mirror into
//!   main (it then only settles the fence there), the host writes the
//!   mirror itself, if everything but the gate allows it.
//! - **a copy the kernel made, which the broken gate refuses**: an adopt is
//!   answered as a lost compare-and-swap, the only refusal an adopt write
//!   can report (the kernel re-reads, retries and gives up); a mirror is
//!   answered `MirrorRefused(Identity)` with the fence settled, exactly
//!   what `StoreDoc::apply` does when its gate refuses.
//!
//! Everything else goes to the correct host's stores, so every write still
//! passes through the model's checks. The checker never asks the broken
//! gate, nor the kernel's: it judges each write against its own statement
//! of the table (`rotor_model::identity_table`). [`BrokenGate::Shipped`] is
//! the control: the kernel's own gate through the same host, which must
//! pass every model.
#![allow(dead_code)] // each test binary uses some of the variants

use rotor_fs::sync::Arc;
use rotor_fs::FsRefreshLock;
use rotor_kernel::driver::Stores;
use rotor_kernel::machine::is_newer;
use rotor_kernel::mutation::mirror_refusal;
use rotor_kernel::{
    may_copy, Conflict, Credential, Fingerprint, Identity, IdentityRefusal, MirrorRefusal,
    Mutation, Policy, ProfileView, Role, StoreFault, StoreRef, WriteOutcome,
};
use rotor_model::scenario::{agent_io, AgentSpec, HostVariant};
use rotor_model::store::AgentStores;
use rotor_model::world::{World, NOW_MS, PROFILE};

/// One rule of SPEC §5 gone wrong (the rest as shipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenGate {
    /// The control: the kernel's own gate.
    Shipped,
    /// Rule 1 dropped: tenants ignored (the seed allowed "T, X -> U, X").
    TenantIgnored,
    /// Rule 2 loosened: differing account ids fall through to the emails
    /// (B14: "acct X, e -> acct Y, e" allowed).
    AccountIdsYieldToEmails,
    /// Rule 2 loosened: account ids compared case-insensitively
    /// ("Acct-1 -> acct-1" allowed).
    AccountIdsCaseInsensitive,
    /// Rule 2 tightened: account ids compared untrimmed
    /// ("  acct-1  -> acct-1" refused).
    AccountIdsUntrimmed,
    /// Rule 2 tightened: emails compared even beside equal account ids
    /// ("acct X, e1 -> acct X, e2" refused).
    EmailsComparedBesideAccounts,
    /// Rule 3 dropped when emails match (the seed, B14:
    /// "acct X, e -> e" allowed).
    AccountDropAllowed,
    /// Rule 4 dropped: emails not compared ("e1 -> e2" allowed).
    EmailsIgnored,
    /// Rule 4 tightened: emails compared without lowercasing
    /// ("e -> \" E \"" refused).
    EmailsCaseSensitive,
    /// Rule 5 dropped: an email may be dropped ("e -> {}" allowed).
    EmailDropAllowed,
    /// Rule 6 made symmetric (B16): an existing credential without identity
    /// refuses one with identity ("{} -> acct X" refused).
    Symmetric,
    /// Not a rule of §5 but the gate's precondition (SPEC §3 steps 2, 8):
    /// the provider ignored, identity fields alone decide.
    ProviderIgnored,
}

fn without_account(identity: &Identity) -> Identity {
    Identity {
        account_id: None,
        ..identity.clone()
    }
}

fn without_email(identity: &Identity) -> Identity {
    Identity {
        email: None,
        ..identity.clone()
    }
}

fn trimmed(value: &Option<rotor_kernel::SharedStr>) -> Option<&str> {
    value.as_deref().map(str::trim)
}

impl BrokenGate {
    /// May `incoming` replace `existing`, by this gate?
    pub fn allows(self, existing: &Credential, incoming: &Credential) -> bool {
        let (e, i) = (Identity::of(existing), Identity::of(incoming));
        fn both<A, B>(a: &Option<A>, b: &Option<B>) -> bool {
            a.is_some() && b.is_some()
        }
        match self {
            BrokenGate::Shipped | BrokenGate::ProviderIgnored => may_copy(&e, &i),
            BrokenGate::TenantIgnored => {
                let untenanted = |id: &Identity| Identity {
                    tenant: None,
                    ..id.clone()
                };
                may_copy(&untenanted(&e), &untenanted(&i))
            }
            BrokenGate::AccountIdsYieldToEmails
                if both(&e.account_id, &i.account_id)
                    && e.account_id != i.account_id
                    && both(&e.email, &i.email) =>
            {
                may_copy(&without_account(&e), &without_account(&i))
            }
            BrokenGate::AccountIdsCaseInsensitive => {
                let lower = |id: &Identity| Identity {
                    account_id: id
                        .account_id
                        .as_ref()
                        .map(|a| a.to_lowercase())
                        .map(Into::into),
                    ..id.clone()
                };
                may_copy(&lower(&e), &lower(&i))
            }
            BrokenGate::AccountIdsUntrimmed
                if both(&existing.account_id, &incoming.account_id)
                    && existing.account_id != incoming.account_id =>
            {
                false
            }
            BrokenGate::EmailsComparedBesideAccounts
                if e.account_id.is_some()
                    && e.account_id == i.account_id
                    && both(&e.email, &i.email)
                    && e.email != i.email =>
            {
                false
            }
            BrokenGate::AccountDropAllowed
                if e.account_id.is_some()
                    && i.account_id.is_none()
                    && e.email.is_some()
                    && e.email == i.email =>
            {
                may_copy(&without_account(&e), &i)
            }
            BrokenGate::EmailsIgnored
                if e.account_id.is_none() && i.account_id.is_none() && both(&e.email, &i.email) =>
            {
                may_copy(&without_email(&e), &without_email(&i))
            }
            BrokenGate::EmailsCaseSensitive
                if e.account_id.is_none()
                    && both(&e.email, &i.email)
                    && trimmed(&existing.email) != trimmed(&incoming.email) =>
            {
                false
            }
            BrokenGate::EmailDropAllowed
                if e.account_id.is_none() && e.email.is_some() && i.email.is_none() =>
            {
                may_copy(&without_email(&e), &i)
            }
            BrokenGate::Symmetric if e.is_empty() && !i.is_empty() => false,
            _ => may_copy(&e, &i),
        }
    }

    /// Whether this gate lets a copy cross providers.
    fn ignores_provider(self) -> bool {
        self == BrokenGate::ProviderIgnored
    }
}

/// A host whose identity gate is `gate` (see the module docs).
pub struct GateHost {
    pub gate: BrokenGate,
}

impl HostVariant for GateHost {
    type Lock = FsRefreshLock;
    type Stores = GateStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (FsRefreshLock, GateStores) {
        let io = agent_io(world, agent);
        let lock = world.refresh_lock(io.clone(), agent.pid, &agent.name);
        let stores = GateStores {
            inner: AgentStores::new(world.clone(), agent.store, &agent.name, io),
            gate: self.gate,
            role: agent.role,
            provider: agent.provider.clone(),
            own_read: None,
            committed: None,
        };
        (lock, stores)
    }
}

/// The correct stores, with [`GateHost`]'s gate overruling the kernel's.
pub struct GateStores {
    inner: AgentStores,
    gate: BrokenGate,
    role: Role,
    provider: String,
    /// The own store's credential as the kernel last read it.
    own_read: Option<Option<Credential>>,
    /// The last rotation committed, with the presented token's fingerprint.
    committed: Option<(Credential, Fingerprint)>,
}

impl GateStores {
    /// A sub-agent read `main`: adopt it if only the kernel's gate stood in
    /// the way and the broken gate lets it through.
    fn adopt_if_broken_gate_allows(&mut self, main: &ProfileView) {
        let (Some(Some(own)), Some(main)) = (&self.own_read, &main.credential) else {
            return; // an empty own store: every gate allows, the kernel adopts
        };
        let margin_ms = Policy::default().refresh_margin_ms();
        let same_provider = main.provider == self.provider;
        let candidate = main.is_oauth()
            && own.is_oauth()
            && (same_provider || self.gate.ignores_provider())
            && is_newer(main, Some(own))
            && main.is_usable(NOW_MS, margin_ms);
        let kernel_refuses = !same_provider || !may_copy(&Identity::of(own), &Identity::of(main));
        if candidate && kernel_refuses && self.gate.allows(own, main) {
            let mutation = Mutation::Adopt {
                expect: rotor_kernel::Expect::of(Some(own)),
                credential: main.clone(),
            };
            let _ = self.inner.write(StoreRef::Own, PROFILE, &mutation);
        }
    }

    /// Writes `credential` over main, as an applied mirror would (fence for
    /// `presented_fp` dropped), when the kernel's mirror rules refuse it for
    /// identity alone and the broken gate allows it. Decided under main's
    /// store lock (the shipped `StoreFile::update`), on main as it is then.
    /// True when it wrote.
    fn mirror_if_broken_gate_allows(
        &self,
        credential: &Credential,
        presented_fp: Fingerprint,
    ) -> bool {
        let main = self.inner.file(StoreRef::Main);
        let wrote = main.update("mirror", |doc| {
            let wrote = self.mirror_into(doc, credential, presented_fp);
            (wrote, wrote)
        });
        wrote.unwrap_or(false)
    }

    /// [`Self::mirror_if_broken_gate_allows`] on main's document.
    fn mirror_into(
        &self,
        doc: &mut rotor_kernel::StoreDoc,
        credential: &Credential,
        presented_fp: Fingerprint,
    ) -> bool {
        let Some(existing) = doc.profiles.get(PROFILE).cloned() else {
            return false;
        };
        let refused_for_identity = matches!(
            mirror_refusal(Some(&existing), credential),
            Some(MirrorRefusal::Identity(_))
        );
        // Everything but the gate: the same entry with the incoming identity.
        let mut same_identity = existing.clone();
        same_identity.account_id = credential.account_id.clone();
        same_identity.email = credential.email.clone();
        same_identity.tenant = credential.tenant.clone();
        let otherwise_allowed = mirror_refusal(Some(&same_identity), credential).is_none();
        if !(refused_for_identity && otherwise_allowed && self.gate.allows(&existing, credential)) {
            return false;
        }
        doc.apply(PROFILE, &Mutation::ClearFence { presented_fp });
        doc.profiles.insert(PROFILE.to_string(), credential.clone());
        true
    }
}

/// What a mirror refused by a broken gate reports (the checker ignores the
/// kernel's reason and re-judges the credentials itself).
fn broken_refusal() -> IdentityRefusal {
    IdentityRefusal::AccountDropped {
        existing: "refused by a broken gate".to_string(),
    }
}

impl Stores for GateStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        let view = self.inner.read(store, profile)?;
        match store {
            StoreRef::Own => self.own_read = Some(view.credential.as_deref().cloned()),
            StoreRef::Main if self.role == Role::Sub => self.adopt_if_broken_gate_allows(&view),
            StoreRef::Main => {}
        }
        Ok(view)
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        match mutation {
            Mutation::Adopt { expect, credential } => {
                if let Some(Some(own)) = &self.own_read {
                    if !self.gate.allows(own, credential) {
                        return Ok(WriteOutcome::Conflict(Conflict {
                            expected: expect.clone(),
                            found: expect.clone(),
                        }));
                    }
                }
            }
            Mutation::Commit {
                credential,
                presented_fp,
                ..
            } => {
                self.committed = Some((rotor_kernel::Credential::clone(credential), *presented_fp))
            }
            Mutation::Mirror {
                credential,
                presented_fp,
                ..
            } => {
                let main = self.inner.file(StoreRef::Main).read_doc()?;
                let main = main.unwrap_or_default();
                if let Some(existing) = main.profiles.get(PROFILE) {
                    if !self.gate.allows(existing, credential) {
                        let settle = Mutation::SettleFence {
                            presented_fp: *presented_fp,
                        };
                        self.inner.write(StoreRef::Main, profile, &settle)?;
                        let refusal = MirrorRefusal::Identity(broken_refusal());
                        return Ok(WriteOutcome::MirrorRefused(refusal));
                    }
                }
                let outcome = self.inner.write(store, profile, mutation)?;
                if matches!(
                    outcome,
                    WriteOutcome::MirrorRefused(MirrorRefusal::Identity(_))
                ) && self.mirror_if_broken_gate_allows(credential, *presented_fp)
                {
                    return Ok(WriteOutcome::Applied);
                }
                return Ok(outcome);
            }
            Mutation::SettleFence { presented_fp } if store == StoreRef::Main => {
                // The kernel refused the mirror before writing it.
                if let Some((credential, fp)) = self.committed.clone() {
                    if fp == *presented_fp && self.mirror_if_broken_gate_allows(&credential, fp) {
                        return Ok(WriteOutcome::Applied);
                    }
                }
            }
            _ => {}
        }
        self.inner.write(store, profile, mutation)
    }
}
