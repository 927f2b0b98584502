//! What one simulated run looks like, derived from one `u64` seed.
//!
//! [`Config::derive`] draws every knob from the seed in a fixed order (swarm
//! testing: each seed picks its own world size, fault kinds, background actors
//! and provider behaviour), then applies the [`Overrides`] a person gave on the
//! command line. Because the draws never depend on the overrides, printing the
//! overridable fields of a config ([`Config::replay_command`]) is exactly what
//! it takes to rebuild it.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Which refresh-lock backend the world uses (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// `flock`-like: held until released or until the holder's process dies.
    Advisory,
    /// Held for a lease, renewed by the live holder; expires when the holder
    /// stalls (pause) or dies, even while the holder still believes it holds it.
    Lease,
    /// A lease whose loss also fails the holder's conditional writes: the
    /// in-doubt fence is written (and cleared) only while the lock is still
    /// held, in the same atomic step (the PostgreSQL host, ARCHITECTURE.md
    /// "The PostgreSQL backend"). A holder that stalls past its lease can no
    /// longer fence, so it never presents: G1 holds without the lease limit.
    FencedLease,
}

impl Backend {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Advisory => "advisory",
            Backend::Lease => "lease",
            Backend::FencedLease => "fenced-lease",
        }
    }

    /// Parses a command-line name.
    pub fn parse(text: &str) -> Result<Backend, ConfigError> {
        match text {
            "advisory" => Ok(Backend::Advisory),
            "lease" => Ok(Backend::Lease),
            "fenced-lease" => Ok(Backend::FencedLease),
            other => Err(ConfigError::UnknownBackend(other.into())),
        }
    }
}

macro_rules! named_set {
    ($(#[$doc:meta])* $kind:ident, $set:ident, [$($(#[$vdoc:meta])* $variant:ident = $name:literal),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[repr(u8)]
        pub enum $kind { $($(#[$vdoc])* #[serde(rename = $name)] $variant),+ }

        impl $kind {
            /// Every kind, in a fixed order.
            pub const ALL: &'static [$kind] = &[$($kind::$variant),+];

            /// The command-line name.
            pub fn name(self) -> &'static str {
                match self { $($kind::$variant => $name),+ }
            }

            /// Parses a command-line name.
            pub fn parse(text: &str) -> Option<$kind> {
                match text { $($name => Some($kind::$variant),)+ _ => None }
            }
        }

        /// A set of kinds, as a bit mask.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $set(pub u32);

        impl TryFrom<String> for $set {
            type Error = ConfigError;
            fn try_from(text: String) -> Result<Self, ConfigError> {
                $set::parse_list(&text)
            }
        }

        impl From<$set> for String {
            fn from(set: $set) -> String {
                set.to_string()
            }
        }

        impl $set {
            /// Every kind.
            pub fn all() -> Self {
                $set((1u32 << $kind::ALL.len()) - 1)
            }
            /// No kind.
            pub fn none() -> Self {
                $set(0)
            }
            /// True when `kind` is in the set.
            pub fn has(self, kind: $kind) -> bool {
                self.0 & (1 << kind as u8) != 0
            }
            /// The set with `kind` added.
            pub fn with(self, kind: $kind) -> Self {
                $set(self.0 | (1 << kind as u8))
            }
            /// The set with `kind` removed.
            pub fn without(self, kind: $kind) -> Self {
                $set(self.0 & !(1 << kind as u8))
            }
            /// The kinds in the set, in order.
            pub fn kinds(self) -> impl Iterator<Item = $kind> {
                $kind::ALL.iter().copied().filter(move |kind| self.has(*kind))
            }
            /// How many kinds.
            pub fn len(self) -> usize {
                self.0.count_ones() as usize
            }
            /// True when empty.
            pub fn is_empty(self) -> bool {
                self.0 == 0
            }
        }

        impl fmt::Display for $set {
            /// Comma-separated names, or `none`.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.is_empty() {
                    return f.write_str("none");
                }
                for (index, kind) in self.kinds().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(kind.name())?;
                }
                Ok(())
            }
        }
    };
}

named_set!(
    /// A kind of injected fault. Each has one model, in the file named after it.
    FaultKind, FaultSet, [
    /// A process dies: its advisory locks are released, its unsynced writes
    /// lost, its in-flight requests go on at the server without it.
    Crash = "crash",
    /// A process stops for a while (GC, SIGSTOP, laptop lid): leases expire.
    Pause = "pause",
    /// A store write fails with an I/O error.
    WriteError = "write-error",
    /// A store write fails because the disk is full.
    DiskFull = "disk-full",
    /// `fsync` returns success but persists nothing; a later crash loses the write.
    LostFsync = "lost-fsync",
    /// A writer that does not replace the file by rename dies mid-write.
    TornWrite = "torn-write",
    /// A process's wall clock jumps.
    ClockJump = "clock-jump",
    /// Connection refused: the request provably never left.
    NotSent = "not-sent",
    /// The endpoint answers 5xx (or 429).
    ServerError = "server-error",
    /// The response comes after the call's deadline.
    Timeout = "timeout",
    /// The endpoint processes the request; the response is lost.
    LostResponse = "lost-response",
]);

named_set!(
    /// A background actor that writes stores beside rotor's agents.
    ActorKind, ActorSet, [
    /// A usage-statistics writer on every store (read-modify-write of `state`).
    Usage = "usage",
    /// The user logs in again: a new token family installed in main.
    Relogin = "relogin",
    /// The user logs out: a tombstone in main; the provider revokes the family.
    Logout = "logout",
    /// Another program edits an unrelated profile in main.
    Edit = "edit",
    /// A login by another program sharing the store: under the store lock
    /// only, not rotor's refresh lock.
    ForeignLogin = "foreign-login",
    /// A logout by another program sharing the store: a tombstone under the
    /// store lock only; the provider revokes the account's families.
    ForeignLogout = "foreign-logout",
]);

/// How the initial credential identifies its account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityShape {
    /// No identity fields (a legacy store).
    Legacy,
    /// An account id.
    Account,
    /// An email only.
    Email,
    /// An account id and an email.
    AccountEmail,
    /// A tenant and an account id.
    TenantAccount,
}

/// Knobs drawn from the seed that the command line does not set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knobs {
    /// The same agent slot in different processes shares one store.
    pub shared_agent_stores: bool,
    /// The kernel's grace window (`None`: no retry after an unknown outcome).
    pub grace_window_ms: Option<u64>,
    /// The provider's reuse grace, measured from the first consumption.
    pub provider_grace_ms: Option<u64>,
    /// How the main credential identifies its account.
    pub identity: IdentityShape,
    /// The provider reports the account id and email in its grants.
    pub provider_reports_identity: bool,
    /// One sub-agent store is bound to another account (exercises G3).
    pub other_account_store: bool,
    /// Main starts without the profile; sub stores share one token. Never
    /// drawn by the swarm (see `ARCHITECTURE.md, "The lease backend's limit"` and the report on that gap).
    pub main_absent: bool,
    /// A new login revokes the previous family at the provider.
    pub single_session: bool,
    /// The usage writer of one store writes in place (no rename).
    pub in_place_writer: bool,
    /// Access-token lifetime granted by the provider.
    pub access_lifetime_ms: u64,
    /// Chance per step (per mille) that a fault is injected.
    pub fault_rate_per_mille: u32,
    /// At most this many faults per run.
    pub faults_max: u32,
    /// Lease length for the lease backend: always `policy::lease`'s for the
    /// grace window (recorded so a trace file shows it; the world's policy is
    /// built by `policy::policy`).
    pub lease_ms: u64,
}

/// Everything one run needs besides the host's hooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The seed every draw derives from.
    pub seed: u64,
    /// Number of processes.
    pub processes: u8,
    /// Agents per process.
    pub agents: u8,
    /// Refresh-lock backend.
    pub backend: Backend,
    /// Fault kinds that may be injected.
    pub faults: FaultSet,
    /// Background actors present.
    pub actors: ActorSet,
    /// Requests each agent makes in the safety phase.
    pub requests: u8,
    /// Fault occurrences (by index) that are drawn but not applied (shrinking).
    pub fault_mask: u64,
    /// Other knobs, drawn from the seed.
    pub knobs: Knobs,
    /// Step bound of the safety phase.
    pub steps_max: u32,
    /// Step bound of the liveness phase.
    pub liveness_steps_max: u32,
    /// Every store read and write is also made by the shipped fs store code
    /// over a simulated disk, and the two must agree (`--shipped-host`,
    /// `world/twin.rs`).
    #[serde(default)]
    pub shipped_host: bool,
}

/// Fields a person may set; everything else comes from the seed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--processes`.
    pub processes: Option<u8>,
    /// `--agents`.
    pub agents: Option<u8>,
    /// `--backend`.
    pub backend: Option<Backend>,
    /// `--faults`.
    pub faults: Option<FaultSet>,
    /// `--actors`.
    pub actors: Option<ActorSet>,
    /// `--requests`.
    pub requests: Option<u8>,
    /// `--fault-mask`.
    pub fault_mask: Option<u64>,
    /// `--shipped-host`.
    pub shipped_host: bool,
}

/// A bad configuration from the command line or a trace file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Not `advisory` or `lease`.
    UnknownBackend(String),
    /// Not a fault kind.
    UnknownFault(String),
    /// Not an actor kind.
    UnknownActor(String),
    /// A count out of range.
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// Not a number.
    BadNumber(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownBackend(text) => {
                write!(
                    f,
                    "unknown backend {text:?}: use advisory, lease or fenced-lease"
                )
            }
            ConfigError::UnknownFault(text) => write!(
                f,
                "unknown fault {text:?}: use {} (or all, none)",
                FaultSet::all()
            ),
            ConfigError::UnknownActor(text) => write!(
                f,
                "unknown actor {text:?}: use {} (or all, none)",
                ActorSet::all()
            ),
            ConfigError::OutOfRange {
                field,
                value,
                min,
                max,
            } => write!(f, "{field} = {value} is out of range {min}..={max}"),
            ConfigError::BadNumber(text) => {
                write!(f, "{text:?} is not a number (decimal or 0x hex)")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Most processes a world may have.
pub const PROCESSES_MAX: u8 = 4;
/// Most agents per process.
pub const AGENTS_MAX: u8 = 4;
/// Most requests per agent.
pub const REQUESTS_MAX: u8 = 6;

impl FaultSet {
    /// Parses `crash,pause,...`, `all` or `none`.
    pub fn parse_list(text: &str) -> Result<FaultSet, ConfigError> {
        parse_list(text, FaultSet::all().0, |name| {
            FaultKind::parse(name).map(|kind| FaultSet::none().with(kind).0)
        })
        .map(FaultSet)
        .map_err(ConfigError::UnknownFault)
    }
}

impl ActorSet {
    /// Parses `usage,relogin,...`, `all` or `none`.
    pub fn parse_list(text: &str) -> Result<ActorSet, ConfigError> {
        parse_list(text, ActorSet::all().0, |name| {
            ActorKind::parse(name).map(|kind| ActorSet::none().with(kind).0)
        })
        .map(ActorSet)
        .map_err(ConfigError::UnknownActor)
    }
}

fn parse_list(text: &str, all: u32, one: impl Fn(&str) -> Option<u32>) -> Result<u32, String> {
    let mut bits = 0u32;
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        bits |= match name {
            "all" => all,
            "none" => 0,
            other => one(other).ok_or_else(|| other.to_string())?,
        };
    }
    Ok(bits)
}

/// Parses a decimal or `0x` hexadecimal number.
pub fn parse_number(text: &str) -> Result<u64, ConfigError> {
    let trimmed = text.trim();
    let parsed = match trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => trimmed.parse(),
    };
    parsed.map_err(|_| ConfigError::BadNumber(text.into()))
}

/// Checks `value` is in `min..=max`.
pub fn in_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

impl Config {
    /// Draws a configuration from `seed` (swarm mode), then applies `overrides`.
    pub fn derive(seed: u64, overrides: &Overrides) -> Config {
        let mut rng = Rng::new(seed).fork(0x000C_0F16);
        let processes = [1, 2, 2, 3][rng.below(4) as usize];
        let agents = [1, 2, 2, 3][rng.below(4) as usize];
        // The default swarm uses the advisory backend; the lease backend's
        // limit (ARCHITECTURE.md, "The lease backend's limit") is shown when asked for with --backend lease.
        let backend = Backend::Advisory;
        let mut faults = FaultSet::none();
        for kind in FaultKind::ALL {
            if rng.chance(450) {
                faults = faults.with(*kind);
            }
        }
        let mut actors = ActorSet::none();
        for (kind, per_mille) in [
            (ActorKind::Usage, 700),
            (ActorKind::Relogin, 300),
            (ActorKind::Logout, 150),
            (ActorKind::Edit, 400),
            (ActorKind::ForeignLogin, 120),
        ] {
            if rng.chance(per_mille) {
                actors = actors.with(kind);
            }
        }
        // Drawn from a stream of its own, so that adding it shifted no
        // earlier seed's world.
        if Rng::new(seed).fork(0xF0_1060).chance(120) {
            actors = actors.with(ActorKind::ForeignLogout);
        }
        let requests = rng.between(1, 3) as u8;
        let grace = rng.chance(250);
        let grace_window_ms = grace.then(|| rng.between(5_000, 60_000));
        let identity = [
            IdentityShape::Legacy,
            IdentityShape::Account,
            IdentityShape::Email,
            IdentityShape::AccountEmail,
            IdentityShape::TenantAccount,
        ][rng.weighted(&[2, 4, 1, 2, 1])];
        let knobs = Knobs {
            shared_agent_stores: rng.chance(500),
            // The provider's window covers the kernel's plus every delay the
            // kernel cannot see: clock skew, and a request that reaches the
            // provider as late as 1.5 call deadlines after it was sent (the
            // timeout fault's latency), plus slack.
            provider_grace_ms: grace_window_ms.map(|ms| ms + 2 * SKEW_MS_MAX + 45_000 + 5_000),
            grace_window_ms,
            identity,
            provider_reports_identity: rng.chance(700),
            other_account_store: rng.chance(150),
            main_absent: false,
            single_session: rng.chance(500),
            in_place_writer: rng.chance(500),
            access_lifetime_ms: rng.between(420_000, 1_200_000),
            fault_rate_per_mille: rng.between(5, 40) as u32,
            faults_max: rng.between(1, 4) as u32,
            lease_ms: crate::policy::lease(grace_window_ms).lease_ms,
        };
        let mut config = Config {
            seed,
            processes,
            agents,
            backend,
            faults,
            actors,
            requests,
            fault_mask: 0,
            knobs,
            steps_max: 4_000,
            liveness_steps_max: 400,
            shipped_host: false,
        };
        config.apply(overrides);
        config
    }

    /// Applies command-line overrides.
    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(processes) = overrides.processes {
            self.processes = processes;
        }
        if let Some(agents) = overrides.agents {
            self.agents = agents;
        }
        if let Some(backend) = overrides.backend {
            self.backend = backend;
        }
        if let Some(faults) = overrides.faults {
            self.faults = faults;
        }
        if let Some(actors) = overrides.actors {
            self.actors = actors;
        }
        if let Some(requests) = overrides.requests {
            self.requests = requests;
        }
        if let Some(mask) = overrides.fault_mask {
            self.fault_mask = mask;
        }
        self.shipped_host |= overrides.shipped_host;
    }

    /// The overrides that rebuild this configuration from its seed.
    pub fn as_overrides(&self) -> Overrides {
        Overrides {
            processes: Some(self.processes),
            agents: Some(self.agents),
            backend: Some(self.backend),
            faults: Some(self.faults),
            actors: Some(self.actors),
            requests: Some(self.requests),
            fault_mask: (self.fault_mask != 0).then_some(self.fault_mask),
            shipped_host: self.shipped_host,
        }
    }

    /// The exact `rotor replay` command that reproduces this run.
    pub fn replay_command(&self) -> String {
        let mut command = format!(
            "rotor replay --seed {:#x} --processes {} --agents {} --backend {} --faults {} --actors {} --requests {}",
            self.seed,
            self.processes,
            self.agents,
            self.backend.name(),
            self.faults,
            self.actors,
            self.requests
        );
        if self.fault_mask != 0 {
            command.push_str(&format!(" --fault-mask {:#x}", self.fault_mask));
        }
        if self.shipped_host {
            command.push_str(" --shipped-host");
        }
        command
    }

    /// Total agents in the world.
    pub fn agent_count(&self) -> usize {
        self.processes as usize * self.agents as usize
    }
}

/// Largest per-process clock skew drawn at start (before any jump).
pub const SKEW_MS_MAX: u64 = 2_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_is_deterministic_and_overrides_only_touch_their_fields() {
        let a = Config::derive(42, &Overrides::default());
        assert_eq!(a, Config::derive(42, &Overrides::default()));
        let b = Config::derive(
            42,
            &Overrides {
                processes: Some(4),
                ..Overrides::default()
            },
        );
        assert_eq!(b.processes, 4);
        assert_eq!(b.knobs, a.knobs);
        assert_eq!(b.faults, a.faults);
        let rebuilt = Config::derive(42, &b.as_overrides());
        assert_eq!(rebuilt, b);
    }

    #[test]
    fn lists_parse_and_print_round_trip() {
        let set = FaultSet::parse_list("crash,lost-response").unwrap();
        assert!(set.has(FaultKind::Crash) && set.has(FaultKind::LostResponse));
        assert_eq!(set.len(), 2);
        assert_eq!(FaultSet::parse_list(&set.to_string()).unwrap(), set);
        assert_eq!(FaultSet::parse_list("all").unwrap(), FaultSet::all());
        assert_eq!(FaultSet::parse_list("none").unwrap(), FaultSet::none());
        assert!(matches!(
            FaultSet::parse_list("crash,meteor"),
            Err(ConfigError::UnknownFault(name)) if name == "meteor"
        ));
        assert_eq!(ActorSet::parse_list("usage,edit").unwrap().len(), 2);
        assert_eq!(parse_number("0x10").unwrap(), 16);
        assert_eq!(parse_number("17").unwrap(), 17);
        assert!(parse_number("x").is_err());
    }
}
