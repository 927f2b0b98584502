//! Every crash point of a whole refresh, on the shipped fs host: G1, G6 and
//! G7 checked through `rotor_fs::Rotor` itself.
//!
//! Where [`super::check`] crashes one store write, this crashes
//! `Rotor::token_via`: the shipped driver loop (`driver::resolve`), the
//! refresh lock, the fence, the commit and the mirror, all of `rotor-fs` as
//! users run it, on a [`SimDisk`], against the simulator's strict rotating
//! provider ([`crate::endpoint::Endpoint`]: a consumed refresh token
//! presented again revokes the family).
//!
//! For each [`HostScenario`] a fault-free run counts the disk calls of one
//! refresh. Then, for every call number and every [`DiskFault`], and for a
//! power loss while the endpoint call is in flight (the provider rotated,
//! the reply never came back), a fresh disk runs the refresh with that
//! fault, the machine reboots, and a second process (a fresh `Rotor` on
//! the same disk) asks for the token again. The checks:
//!
//! - **G1** (and G7, which is how rotor keeps it): no refresh token is
//!   presented twice, across both processes. A presentation whose reply was
//!   lost must have left a durable fence that stops the second process.
//! - **G6**: a refresh that returned `Ok` survives a power loss right after:
//!   the second process gets the same token without refreshing.
//! - **Liveness** (G2): when the first process presented nothing, the
//!   second one refreshes; when it presented and lost the rotation, the
//!   second one fails with a typed `NeedsReauth`, never a store error.

use core::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rotor_fs::io::Io;
use rotor_fs::Rotor;
use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{
    Credential, EndpointError, Failure, Granted, Mutation, Outcome, TokenGrant, Transport,
};

use super::check::{MakeIo, Only, STATE_DIR};
use super::{DiskFault, FaultPlan, SimDisk};
use crate::endpoint::{access_token, refresh_token, Endpoint};
use crate::guarantee::Guarantee;

const PROVIDER: &str = "acme";
const PROFILE: &str = "acme:default";
const ACCESS_LIFETIME_MS: u64 = 3_600_000;

/// Who refreshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostScenario {
    /// The main agent refreshes the main store's expired credential.
    MainRefresh,
    /// A sub-agent with an empty store refreshes main's expired credential:
    /// it fences main, commits into its own store and mirrors into main.
    SubAgentRefresh,
}

impl HostScenario {
    /// Every scenario.
    pub const ALL: [HostScenario; 2] = [HostScenario::MainRefresh, HostScenario::SubAgentRefresh];

    /// The scenario's name (as `ROTOR_DISK_SCENARIO` takes it).
    pub fn name(self) -> &'static str {
        match self {
            HostScenario::MainRefresh => "main-refresh",
            HostScenario::SubAgentRefresh => "sub-agent-refresh",
        }
    }

    fn agent(self) -> &'static str {
        match self {
            HostScenario::MainRefresh => "main",
            HostScenario::SubAgentRefresh => "worker-1",
        }
    }
}

/// Where the fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostFault {
    /// At a numbered disk call of the first process.
    Disk(FaultPlan),
    /// Power loss while the endpoint call is in flight: the provider
    /// rotated, the reply is lost with the machine.
    InCall {
        /// Whether unsynced file data is torn rather than dropped.
        torn: bool,
    },
    /// Power loss right after the first process returned.
    After,
}

impl fmt::Display for HostFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostFault::Disk(plan) => write!(f, "{}@{}", plan.fault, plan.at_call),
            HostFault::InCall { torn: false } => f.write_str("in-call"),
            HostFault::InCall { torn: true } => f.write_str("in-call-torn"),
            HostFault::After => f.write_str("after"),
        }
    }
}

/// A violation at one crash point of a refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFinding {
    /// The guarantee broken.
    pub guarantee: Guarantee,
    /// The refresh that was crashed.
    pub scenario: HostScenario,
    /// Where.
    pub fault: HostFault,
    /// What was wrong.
    pub detail: String,
    /// The test that found it (for the replay command).
    pub test_name: String,
}

impl fmt::Display for HostFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} violated: {} with {}: {}\n  replay: ROTOR_DISK_SCENARIO={} ROTOR_DISK_FAULT={} \
             cargo test -p rotor-sim --test disk_host_crash_points {} -- --exact --nocapture",
            self.guarantee,
            self.guarantee.title(),
            self.scenario.name(),
            self.fault,
            self.detail,
            self.scenario.name(),
            self.fault,
            self.test_name,
        )
    }
}

/// The simulator's strict provider behind the kernel's endpoint trait.
/// A dead machine sends nothing; with `power_off_in_call`, the provider
/// handles the request and the machine dies before the reply arrives.
struct Provider<'a> {
    endpoint: &'a mut Endpoint,
    disk: Arc<SimDisk>,
    power_off_in_call: Option<bool>,
}

impl TokenEndpoint for Provider<'_> {
    fn refresh(
        &mut self,
        credential: &Credential,
        _deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        if self.disk.is_down() {
            return Err(EndpointError::transport(Transport::ConnectRefused));
        }
        let answer = super::provider::present(self.endpoint, credential, 0);
        if let Some(torn) = self.power_off_in_call.take() {
            self.disk.power_off(torn);
            return Err(EndpointError::transport(Transport::ConnectionReset));
        }
        answer
    }
}

fn state_dir() -> PathBuf {
    PathBuf::from(STATE_DIR)
}

/// A disk whose main store holds the family's first refresh token, expired,
/// durably; and the provider that issued it.
fn prepare() -> (Arc<SimDisk>, Endpoint) {
    let disk = Arc::new(SimDisk::new());
    let mut provider = Endpoint::new(None, ACCESS_LIFETIME_MS, false);
    let family = provider.issue_family(0, 0);
    let rotor = Rotor::open_on(disk.clone(), state_dir()).expect("opening the state dir");
    let credential = Credential::oauth(
        PROVIDER,
        access_token(family, 0),
        refresh_token(family, 0),
        0,
    );
    rotor
        .store("main")
        .expect("main's store")
        .apply(
            PROFILE,
            &Mutation::Login {
                credential: credential.into(),
            },
        )
        .expect("preparing the disk");
    disk.sync_everything();
    (disk, provider)
}

fn token(
    io: Arc<dyn Io>,
    disk: &Arc<SimDisk>,
    provider: &mut Endpoint,
    agent: &str,
    power_off_in_call: Option<bool>,
) -> Result<Granted, rotor_fs::Error> {
    let rotor = Rotor::open_on(io, state_dir())?;
    let mut endpoint = Provider {
        endpoint: provider,
        disk: disk.clone(),
        power_off_in_call,
    };
    rotor.token_via(&mut endpoint, agent, PROVIDER, PROFILE)
}

/// How many disk calls one fault-free refresh makes.
pub fn calls_of_refresh(scenario: HostScenario, make_io: MakeIo<'_>) -> u64 {
    let (disk, mut provider) = prepare();
    let start = disk.calls();
    let granted = token(
        make_io(disk.clone()),
        &disk,
        &mut provider,
        scenario.agent(),
        None,
    )
    .expect("the fault-free refresh succeeds");
    assert_eq!(granted.outcome, Outcome::Refreshed);
    disk.calls() - start
}

fn presentations(provider: &Endpoint) -> Vec<u16> {
    provider
        .families
        .iter()
        .flat_map(|f| f.presented.iter().copied())
        .collect()
}

fn describe(result: &Result<Granted, rotor_fs::Error>) -> String {
    match result {
        Ok(granted) => format!("{:?} {}", granted.outcome, granted.access.expose()),
        Err(error) => format!("error: {error}"),
    }
}

/// Runs one crash point and judges it.
fn run_point(
    scenario: HostScenario,
    make_io: MakeIo<'_>,
    fault: HostFault,
) -> Result<(), (Guarantee, String)> {
    let (disk, mut provider) = prepare();
    let start = disk.calls();
    let in_call = match fault {
        HostFault::Disk(plan) => {
            disk.plan(FaultPlan {
                at_call: start + plan.at_call,
                fault: plan.fault,
            });
            None
        }
        HostFault::InCall { torn } => Some(torn),
        HostFault::After => None,
    };
    let agent = scenario.agent();
    let first = token(make_io(disk.clone()), &disk, &mut provider, agent, in_call);
    let sent_by_first = provider.requests.len();
    let power_lost = disk.is_down() || fault == HostFault::After;
    if fault == HostFault::After {
        disk.lose_power(false);
    }
    disk.reboot();
    let second = token(make_io(disk.clone()), &disk, &mut provider, agent, None);
    let story = || {
        format!(
            "first process: {}; second process: {}; presentations per token: {:?}",
            describe(&first),
            describe(&second),
            presentations(&provider)
        )
    };
    if presentations(&provider).iter().any(|&count| count > 1) {
        return Err((
            Guarantee::G1,
            format!(
                "a refresh token was presented twice (the first presentation left no durable fence, G7); {}",
                story()
            ),
        ));
    }
    if let (Ok(granted), true) = (&first, power_lost) {
        let kept = matches!(&second, Ok(again) if again.access.expose() == granted.access.expose()
            && again.outcome != Outcome::Refreshed);
        if !kept {
            return Err((
                Guarantee::G6,
                format!(
                    "a refresh that returned Ok did not survive the power loss; {}",
                    story()
                ),
            ));
        }
    }
    // A process that died after writing its fence leaves it in doubt: the
    // next one cannot know whether the token went out, and NeedsReauth is
    // the answer G7 demands. Only a first process that lived and presented
    // nothing leaves no excuse.
    let crashed = power_lost && fault != HostFault::After;
    match &second {
        Ok(_) => Ok(()),
        Err(rotor_fs::Error::Failed(Failure::NeedsReauth(_))) if sent_by_first > 0 || crashed => {
            Ok(())
        }
        Err(_) => Err((
            Guarantee::Liveness,
            format!(
                "the second process failed although {}; {}",
                if sent_by_first == 0 && !crashed {
                    "the first presented nothing and lived to say so"
                } else {
                    "a lost rotation should read as NeedsReauth"
                },
                story()
            ),
        )),
    }
}

/// Runs every crash point of every scenario and returns the findings
/// (none for the shipped host).
pub fn check_refreshes(make_io: MakeIo<'_>, only: &Only, test_name: &str) -> Vec<HostFinding> {
    let mut findings = Vec::new();
    for scenario in HostScenario::ALL {
        let calls = calls_of_refresh(scenario, make_io);
        let mut faults = vec![
            HostFault::After,
            HostFault::InCall { torn: false },
            HostFault::InCall { torn: true },
        ];
        for at_call in 0..calls {
            for fault in DiskFault::ALL {
                faults.push(HostFault::Disk(FaultPlan { at_call, fault }));
            }
        }
        for fault in faults {
            if !only.wants_named(scenario.name(), &fault.to_string()) {
                continue;
            }
            if let Err((guarantee, detail)) = run_point(scenario, make_io, fault) {
                findings.push(HostFinding {
                    guarantee,
                    scenario,
                    fault,
                    detail,
                    test_name: test_name.to_owned(),
                });
            }
        }
    }
    findings
}
