//! A hand-driven host for [`Resolver`]: given stores, a scripted lock result
//! and scripted endpoint replies, it performs each effect the kernel asks for
//! and writes it down as one compact line, so a test can assert the exact
//! sequence of effects, the outcome and the final stores.
//!
//! Lines:
//!
//! | effect | line |
//! | --- | --- |
//! | `ReadStore` | `read own`, `read main` (`-> fault` when scripted to fail) |
//! | `WriteStore` | `write own PutFence gen=5 attempt=0`, `write own Commit gen=6`, `write main Mirror gen=6`, `write own Adopt gen=6`, `write main ClearFence`, `write own MarkNeedsReauth`; `-> Conflict`, `-> MirrorRefused(..)` or `-> fault` when not applied |
//! | `AcquireLock` | `acquire` (`-> timeout` when scripted to fail) |
//! | `CallEndpoint` | `call rt-5` (the fixture's refresh token) |
//! | `ReleaseLock` | `release` |
//! | `Done` | `done Refreshed gen=6`, `done Adopted(Main) gen=6 warn=[IdentityRefused]`, `done NeedsReauth(InDoubt)`, ... |
//!
//! Writes are applied with [`StoreDoc::apply`], exactly as a real host does
//! under the store's lock. An [`Transcript::during`] hook lets a concurrent
//! writer (a logout, a peer, a re-login) change the stores just before one
//! effect is performed.
//!
//! Every run is checked, whatever the test asserts besides:
//! - G8: the lock key and wait budget are the policy's; the lock is released
//!   exactly once if it was acquired, never otherwise, and before `Done`;
//!   the endpoint is only called while the lock is held.
//! - G7: at the moment of every call, each store whose entry holds the
//!   presented refresh token carries a fence for it, written in this run.
//! - The contract: ids echo, one effect at a time, nothing after `Done`
//!   (`ApiMisuse::AlreadyDone`), and `Done` within a step bound.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::rc::Rc;

use rotor_kernel::{
    ApiMisuse, Credential, Effect, EndpointError, Failure, Granted, Input, LockFailure, LockKey,
    Mutation, Outcome, Policy, ReauthReason, Resolution, Resolver, Role, Secret, StoreDoc,
    StoreFault, StoreRef, TokenGrant, Warning, WriteOutcome,
};

use super::fixtures::{expired, request, store, NOW_MS, PROFILE, PROVIDER};

/// A sub-agent's lock-free reads, the lock, and the re-read under it.
pub const SUB_LOCKED: [&str; 5] = ["read own", "read main", "acquire", "read own", "read main"];

/// The main agent's lock-free read, the lock, and the re-read under it.
pub const MAIN_LOCKED: [&str; 3] = ["read own", "acquire", "read own"];

/// A sub-agent refresh of rt-5 up to the call, both stores fenced first.
pub const SUB_FENCED_CALL: [&str; 8] = [
    "read own",
    "read main",
    "acquire",
    "read own",
    "read main",
    "write own PutFence gen=5 attempt=0",
    "write main PutFence gen=5 attempt=0",
    "call rt-5",
];

/// A main-agent refresh of rt-5 up to the call, its store fenced first.
pub const MAIN_FENCED_CALL: [&str; 5] = [
    "read own",
    "acquire",
    "read own",
    "write own PutFence gen=5 attempt=0",
    "call rt-5",
];

/// The expected lines `first`, then `rest`: for [`Run::assert_lines`].
pub fn then<'a>(first: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    first.iter().chain(rest).copied().collect()
}

/// A sub-agent whose own store and main both hold the expired rt-5
/// (generation 5).
pub fn both_expired() -> Transcript {
    Transcript::sub(store(expired(5)), store(expired(5)))
}

/// The main agent whose store holds the expired rt-5 (generation 5).
pub fn main_expired() -> Transcript {
    Transcript::main_agent(store(expired(5)))
}

/// A concurrent `rotor logout` of the fixture's provider on `doc`.
pub fn log_out(doc: &mut StoreDoc) {
    doc.apply(
        PROFILE,
        &Mutation::Logout {
            provider: PROVIDER.into(),
        },
    );
}

/// A concurrent `rotor login` of `credential` on `doc`.
pub fn log_in(doc: &mut StoreDoc, credential: Credential) {
    doc.apply(
        PROFILE,
        &Mutation::Login {
            credential: credential.into(),
        },
    );
}

/// What (own, main) looked like while the endpoint call was in flight, once
/// the run is over.
pub type Snapshot = Rc<RefCell<Option<(StoreDoc, StoreDoc)>>>;

/// More effects than any resolve needs; reaching it is a failure.
const EFFECTS_MAX: usize = 64;

/// A concurrent writer acting on (own, main) just before an effect runs.
type Hook = Box<dyn FnOnce(&mut StoreDoc, &mut StoreDoc)>;

enum Intervention {
    Fault(StoreFault),
    During(Hook),
}

/// A scripted resolve, built step by step, then [`Transcript::run`].
pub struct Transcript {
    role: Role,
    policy: Policy,
    now_ms: i64,
    own: StoreDoc,
    main: StoreDoc,
    lock_failure: Option<LockFailure>,
    replies: VecDeque<Result<TokenGrant, EndpointError>>,
    interventions: Vec<(String, Intervention)>,
}

impl Transcript {
    /// A sub-agent with its own store and the main store.
    pub fn sub(own: StoreDoc, main: StoreDoc) -> Self {
        Transcript {
            role: Role::Sub,
            policy: Policy::default(),
            now_ms: NOW_MS,
            own,
            main,
            lock_failure: None,
            replies: VecDeque::new(),
            interventions: Vec::new(),
        }
    }

    /// The main agent, whose own store is the main store.
    pub fn main_agent(main: StoreDoc) -> Self {
        Transcript {
            role: Role::Main,
            ..Transcript::sub(main, StoreDoc::default())
        }
    }

    /// Runs under `policy` instead of the default.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs at `now_ms` instead of [`NOW_MS`].
    pub fn at(mut self, now_ms: i64) -> Self {
        self.now_ms = now_ms;
        self
    }

    /// The refresh lock cannot be taken.
    pub fn lock_fails(mut self, failure: LockFailure) -> Self {
        self.lock_failure = Some(failure);
        self
    }

    /// The next endpoint call answers `result`.
    pub fn reply(mut self, result: Result<TokenGrant, EndpointError>) -> Self {
        self.replies.push_back(result);
        self
    }

    /// The first effect whose line starts with `prefix` fails with `fault`
    /// (reads and writes only).
    pub fn fault(mut self, prefix: &str, fault: StoreFault) -> Self {
        self.interventions
            .push((prefix.into(), Intervention::Fault(fault)));
        self
    }

    /// The first effect whose line starts with `prefix` runs normally: use
    /// it to aim a later [`Transcript::fault`] at the second such effect.
    pub fn pass(self, prefix: &str) -> Self {
        self.during(prefix, |_, _| {})
    }

    /// Just before the first effect whose line starts with `prefix` is
    /// performed, `hook` changes (own, main): a concurrent writer.
    pub fn during(
        mut self,
        prefix: &str,
        hook: impl FnOnce(&mut StoreDoc, &mut StoreDoc) + 'static,
    ) -> Self {
        self.interventions
            .push((prefix.into(), Intervention::During(Box::new(hook))));
        self
    }

    /// Records (own, main) as they are when the endpoint is called.
    pub fn snapshot_at_call(self) -> (Self, Snapshot) {
        let seen: Snapshot = Rc::default();
        let inner = Rc::clone(&seen);
        let transcript = self.during("call", move |own, main| {
            *inner.borrow_mut() = Some((own.clone(), main.clone()))
        });
        (transcript, seen)
    }

    fn take_intervention(&mut self, line: &str) -> Option<Intervention> {
        let index = self
            .interventions
            .iter()
            .position(|(prefix, _)| line.starts_with(prefix.as_str()))?;
        Some(self.interventions.remove(index).1)
    }

    /// Drives the resolve to `Done`, checking G7 and G8 on the way.
    pub fn run(mut self) -> Run {
        let request = request(self.role);
        let key = LockKey::new(PROVIDER, PROFILE);
        let mut resolver = Resolver::new(request, self.policy.clone(), self.now_ms);
        let mut lines: Vec<String> = Vec::new();
        let mut calls: Vec<Credential> = Vec::new();
        let mut lock_held = false;
        let mut acquired = 0usize;
        let mut released = 0usize;
        let mut fenced_fps = Vec::new();
        let mut last_id = 0u64;
        let resolution = loop {
            assert!(
                lines.len() < EFFECTS_MAX,
                "no Done after {EFFECTS_MAX} effects:\n{}",
                lines.join("\n")
            );
            let effect = resolver
                .poll_effect()
                .unwrap_or_else(|| panic!("no effect pending after:\n{}", lines.join("\n")));
            assert!(resolver.poll_effect().is_none(), "one effect at a time");
            if let Some(id) = effect.id() {
                assert!(id.0 > last_id, "effect ids increase");
                last_id = id.0;
                assert_eq!(resolver.outstanding(), Some(id));
            }
            let fail = |lines: &[String], what: &str| -> ! {
                panic!("{what}\ntranscript so far:\n{}", lines.join("\n"))
            };
            let input = match effect {
                Effect::Done(resolution) => {
                    lines.push(format!("done {}", describe(&resolution)));
                    if acquired > 0 && released != 1 {
                        fail(&lines, "G8: an acquired lock must be released exactly once");
                    }
                    if lock_held {
                        fail(&lines, "G8: Done while the lock is still held");
                    }
                    break resolution;
                }
                Effect::ReadStore { id, store } => {
                    let mut line = format!("read {}", store_name(store));
                    self.check_store(store, &lines);
                    let result = match self.take_intervention(&line) {
                        Some(Intervention::Fault(fault)) => {
                            line.push_str(" -> fault");
                            Err(fault)
                        }
                        Some(Intervention::During(hook)) => {
                            hook(&mut self.own, &mut self.main);
                            Ok(self.doc(store).view(PROFILE))
                        }
                        None => Ok(self.doc(store).view(PROFILE)),
                    };
                    lines.push(line);
                    Input::StoreRead { id, result }
                }
                Effect::WriteStore {
                    id,
                    store,
                    mutation,
                } => {
                    let mut line =
                        format!("write {} {}", store_name(store), mutation_line(&mutation));
                    self.check_store(store, &lines);
                    let result = match self.take_intervention(&line) {
                        Some(Intervention::Fault(fault)) => Err(fault),
                        Some(Intervention::During(hook)) => {
                            hook(&mut self.own, &mut self.main);
                            Ok(self.doc_mut(store).apply(PROFILE, &mutation))
                        }
                        None => Ok(self.doc_mut(store).apply(PROFILE, &mutation)),
                    };
                    match &result {
                        Ok(WriteOutcome::Applied) => {}
                        Ok(WriteOutcome::Conflict(_)) => line.push_str(" -> Conflict"),
                        Ok(WriteOutcome::MirrorRefused(refusal)) => {
                            let _ = write!(line, " -> MirrorRefused({})", refusal_name(refusal));
                        }
                        Err(_) => line.push_str(" -> fault"),
                    }
                    if let (Mutation::PutFence { fence, .. }, Ok(WriteOutcome::Applied)) =
                        (&mutation, &result)
                    {
                        fenced_fps.push(fence.refresh_fp);
                    }
                    lines.push(line);
                    Input::StoreWritten { id, result }
                }
                Effect::AcquireLock {
                    id,
                    key: asked,
                    wait_ms_max,
                } => {
                    assert_eq!(asked, key, "G8/G9: the lock is LockKey(provider, profile)");
                    assert_eq!(
                        wait_ms_max,
                        self.policy.refresh_lock_wait_ms_max(),
                        "G8: bounded wait"
                    );
                    if lock_held || acquired > 0 {
                        fail(&lines, "G8: the lock is acquired at most once per resolve");
                    }
                    // A peer may finish its whole refresh while this agent waits.
                    if let Some(Intervention::During(hook)) = self.take_intervention("acquire") {
                        hook(&mut self.own, &mut self.main);
                    }
                    match self.lock_failure.take() {
                        Some(failure) => {
                            lines.push("acquire -> timeout".into());
                            Input::LockFailed { id, failure }
                        }
                        None => {
                            lines.push("acquire".into());
                            lock_held = true;
                            acquired += 1;
                            Input::LockAcquired { id }
                        }
                    }
                }
                Effect::CallEndpoint {
                    id,
                    credential,
                    deadline_ms,
                } => {
                    let refresh = credential
                        .refresh
                        .clone()
                        .unwrap_or_else(|| Secret::new(""));
                    let line = format!("call {}", refresh.expose());
                    if !lock_held {
                        fail(&lines, "G8: endpoint called without the refresh lock");
                    }
                    assert_eq!(
                        deadline_ms,
                        self.policy.call_deadline_ms(),
                        "calls carry the policy deadline"
                    );
                    let fp = refresh.fingerprint();
                    if !fenced_fps.contains(&fp) {
                        fail(
                            &lines,
                            "G7: called before a fence for this token was written",
                        );
                    }
                    for store in [StoreRef::Own, StoreRef::Main] {
                        let view = self.doc(store).view(PROFILE);
                        let holds = view
                            .credential
                            .as_deref()
                            .and_then(Credential::refresh_fingerprint)
                            == Some(fp);
                        let has_fence = view.fences.iter().any(|f| f.refresh_fp == fp);
                        if holds && !has_fence && (store == StoreRef::Own || self.role == Role::Sub)
                        {
                            fail(
                                &lines,
                                &format!("G7: {store} holds the presented token without its fence"),
                            );
                        }
                    }
                    if let Some(Intervention::During(hook)) = self.take_intervention(&line) {
                        hook(&mut self.own, &mut self.main);
                    }
                    lines.push(line);
                    calls.push(Credential::clone(&credential));
                    let result = self.replies.pop_front().unwrap_or_else(|| {
                        fail(&lines, "the endpoint was called more often than scripted")
                    });
                    Input::EndpointReplied { id, result }
                }
                Effect::ReleaseLock { id, key: asked } => {
                    assert_eq!(asked, key, "G8: release the lock that was taken");
                    if !lock_held {
                        fail(&lines, "G8: released a lock that is not held");
                    }
                    lock_held = false;
                    released += 1;
                    lines.push("release".into());
                    Input::LockReleased { id }
                }
            };
            if let Err(misuse) = resolver.handle(input, self.now_ms) {
                fail(&lines, &format!("the harness broke the contract: {misuse}"));
            }
        };
        // Nothing after Done.
        assert!(resolver.is_finished());
        assert!(resolver.poll_effect().is_none(), "nothing after Done");
        let late = Input::LockReleased {
            id: rotor_kernel::EffectId(last_id),
        };
        assert_eq!(
            resolver.handle(late, self.now_ms),
            Err(ApiMisuse::AlreadyDone)
        );
        assert!(
            self.interventions.is_empty(),
            "scripted interventions never matched: {:?}",
            self.interventions
                .iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>()
        );
        assert!(
            self.replies.is_empty(),
            "scripted endpoint replies never used:\n{}",
            lines.join("\n")
        );
        Run {
            role: self.role,
            policy: self.policy,
            now_ms: self.now_ms,
            lines,
            resolution,
            own: self.own,
            main: self.main,
            calls,
            acquired: acquired > 0,
        }
    }

    fn check_store(&self, store: StoreRef, lines: &[String]) {
        if self.role == Role::Main && store == StoreRef::Main {
            panic!(
                "the main agent touches only its own (the main) store\n{}",
                lines.join("\n")
            );
        }
    }

    fn doc(&self, store: StoreRef) -> &StoreDoc {
        match store {
            StoreRef::Own => &self.own,
            StoreRef::Main => &self.main,
        }
    }

    fn doc_mut(&mut self, store: StoreRef) -> &mut StoreDoc {
        match store {
            StoreRef::Own => &mut self.own,
            StoreRef::Main => &mut self.main,
        }
    }
}

/// A finished transcript.
pub struct Run {
    role: Role,
    policy: Policy,
    now_ms: i64,
    /// One line per effect (see the module docs).
    pub lines: Vec<String>,
    /// What the resolve ended with.
    pub resolution: Resolution,
    /// The own store after the run (for the main agent: the main store).
    pub own: StoreDoc,
    /// The main store after the run (unused for the main agent).
    pub main: StoreDoc,
    /// The credentials presented to the endpoint, in order.
    pub calls: Vec<Credential>,
    /// Whether the refresh lock was taken.
    pub acquired: bool,
}

impl Run {
    /// Asserts the exact sequence of effects.
    #[track_caller]
    pub fn assert_lines(&self, expected: &[&str]) {
        let got: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        assert_eq!(
            got,
            expected,
            "\n--- transcript ---\n{}\n--- expected ---\n{}\n",
            got.join("\n"),
            expected.join("\n")
        );
    }

    /// Asserts the last line, `done ...`.
    #[track_caller]
    pub fn assert_done(&self, done: &str) {
        assert_eq!(
            self.lines.last().map(String::as_str),
            Some(done),
            "\n--- transcript ---\n{}\n",
            self.lines.join("\n")
        );
    }

    /// Asserts the last line, `done ...`, and that the endpoint was never
    /// called (`why` names the guarantee).
    #[track_caller]
    pub fn assert_done_without_call(&self, done: &str, why: &str) {
        self.assert_done(done);
        assert!(self.calls.is_empty(), "{why}: {:?}", self.calls);
    }

    /// Asserts that the failure's message contains `text` (`why` names the
    /// guarantee, usually G10).
    #[track_caller]
    pub fn assert_failure_says(&self, text: &str, why: &str) {
        let message = self.failure().to_string();
        assert!(message.contains(text), "{why}: {message}");
    }

    /// Asserts that no line starts with `prefix`.
    #[track_caller]
    pub fn assert_no_line(&self, prefix: &str) {
        assert!(
            !self.lines.iter().any(|line| line.starts_with(prefix)),
            "unexpected {prefix:?}:\n{}",
            self.lines.join("\n")
        );
    }

    /// G1: rt-5 stays fenced in main, marked rotated (a refused mirror), so a
    /// sub-agent holding a copy of the spent token never presents it.
    #[track_caller]
    pub fn assert_rt5_spent_in_main(&self) {
        let fences = &self.main.fences[PROFILE];
        assert_eq!(fences.len(), 1, "{fences:?}");
        assert!(
            fences[0].rotated,
            "G1: the spent rt-5 stays fenced in main: {fences:?}"
        );
        assert_eq!(fences[0].refresh_fp, Secret::new("rt-5").fingerprint());
    }

    /// The grant; panics with the failure otherwise.
    #[track_caller]
    pub fn granted(&self) -> &Granted {
        match &self.resolution {
            Ok(granted) => granted,
            Err(failure) => panic!(
                "expected a token, got {failure:?}\n{}",
                self.lines.join("\n")
            ),
        }
    }

    /// The failure; panics with the grant otherwise.
    #[track_caller]
    pub fn failure(&self) -> &Failure {
        match &self.resolution {
            Err(failure) => failure,
            Ok(granted) => panic!(
                "expected a failure, got {granted:?}\n{}",
                self.lines.join("\n")
            ),
        }
    }

    /// The next resolve, by the same agent, on the stores this one left.
    pub fn next(&self) -> Transcript {
        Transcript {
            role: self.role,
            policy: self.policy.clone(),
            now_ms: self.now_ms,
            own: self.own.clone(),
            main: self.main.clone(),
            lock_failure: None,
            replies: VecDeque::new(),
            interventions: Vec::new(),
        }
    }
}

fn store_name(store: StoreRef) -> &'static str {
    match store {
        StoreRef::Own => "own",
        StoreRef::Main => "main",
    }
}

fn mutation_line(mutation: &Mutation) -> String {
    match mutation {
        Mutation::Adopt { credential, .. } => format!("Adopt gen={}", credential.generation),
        Mutation::PutFence { fence, .. } => {
            format!(
                "PutFence gen={} attempt={}",
                fence.generation, fence.attempt
            )
        }
        Mutation::Commit { credential, .. } => format!("Commit gen={}", credential.generation),
        Mutation::Mirror { credential, .. } => format!("Mirror gen={}", credential.generation),
        Mutation::SettleFence { .. } => "SettleFence".into(),
        Mutation::ClearFence { .. } => "ClearFence".into(),
        Mutation::MarkNeedsReauth { .. } => "MarkNeedsReauth".into(),
        Mutation::Login { .. } => "Login".into(),
        Mutation::Logout { .. } => "Logout".into(),
    }
}

fn refusal_name(refusal: &rotor_kernel::MirrorRefusal) -> &'static str {
    match refusal {
        rotor_kernel::MirrorRefusal::NotOAuth(_) => "NotOAuth",
        rotor_kernel::MirrorRefusal::OtherProvider(_) => "OtherProvider",
        rotor_kernel::MirrorRefusal::Identity(_) => "Identity",
        rotor_kernel::MirrorRefusal::OtherFamily { .. } => "OtherFamily",
        rotor_kernel::MirrorRefusal::NotNewer { .. } => "NotNewer",
    }
}

fn warning_name(warning: &Warning) -> String {
    match warning {
        Warning::MirrorRefused(refusal) => format!("MirrorRefused({})", refusal_name(refusal)),
        Warning::MirrorFailed(_) => "MirrorFailed".into(),
        Warning::CommitFailed(_) => "CommitFailed".into(),
        Warning::AdoptNotStored(_) => "AdoptNotStored".into(),
        Warning::IdentityRefused(_) => "IdentityRefused".into(),
    }
}

/// The `done ...` line of a resolution.
pub fn describe(resolution: &Resolution) -> String {
    match resolution {
        Ok(granted) => {
            let outcome = match granted.outcome {
                Outcome::Cached => "Cached".to_string(),
                Outcome::Adopted { from } => format!("Adopted({from:?})"),
                Outcome::Refreshed => "Refreshed".to_string(),
            };
            let mut line = format!("{outcome} gen={}", granted.generation);
            if !granted.warnings.is_empty() {
                let names: Vec<String> = granted.warnings.iter().map(warning_name).collect();
                let _ = write!(line, " warn=[{}]", names.join(", "));
            }
            line
        }
        Err(failure) => match failure {
            Failure::NoCredential => "NoCredential".into(),
            Failure::ProviderMismatch { stored } => format!("ProviderMismatch({stored})"),
            Failure::NotRefreshable { kind } => format!("NotRefreshable({})", kind.as_str()),
            Failure::LoggedOut { generation } => format!("LoggedOut gen={generation}"),
            Failure::NeedsReauth(reason) => format!(
                "NeedsReauth({})",
                match reason {
                    ReauthReason::TokenRefused { .. } => "TokenRefused",
                    ReauthReason::InDoubt { .. } => "InDoubt",
                    ReauthReason::Rotated { .. } => "Rotated",
                    ReauthReason::Marked => "Marked",
                    ReauthReason::NoRefreshToken => "NoRefreshToken",
                }
            ),
            Failure::InDoubt { .. } => "InDoubt".into(),
            Failure::Transient { .. } => "Transient".into(),
            Failure::Rejected { .. } => "Rejected".into(),
            Failure::LockTimeout { .. } => "LockTimeout".into(),
            Failure::Store { store, .. } => format!("Store({})", store_name(*store)),
            Failure::Superseded { store, .. } => format!("Superseded({})", store_name(*store)),
            Failure::RotationNotStored { .. } => "RotationNotStored".into(),
        },
    }
}
