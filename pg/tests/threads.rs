//! Threads of one process coalesce in the in-process single-flight before
//! they touch the server, and processes (here: separate single-flights)
//! coalesce on the server's lock: one presentation, everyone holds the
//! rotation (G1, G2).
mod support;

use rotor_fs::{SingleFlight, SystemClock};
use rotor_kernel::driver::{self, Host};
use rotor_kernel::{Credential, Holder, Policy, Request, Role};
use rotor_pg::{PgRefreshLock, PgRotor, PgStores};
use support::provider::Provider;
use support::TestSchema;

const PROFILE: &str = "acme:default";

#[test]
fn four_processes_of_four_threads_present_once_g1_g2() {
    let schema = TestSchema::new("threads");
    let rotor = PgRotor::open(&schema.url()).unwrap();
    rotor
        .login(
            "main",
            PROFILE,
            Credential::oauth("acme", "at-0", "rt-0", 1),
        )
        .unwrap();
    let provider = Provider::new("rt-0");
    let mut threads = Vec::new();
    for process in 0..4u32 {
        let flight = SingleFlight::new();
        for thread in 0..4u32 {
            let (rotor, flight, mut provider) = (rotor.clone(), flight.clone(), provider.clone());
            threads.push(std::thread::spawn(move || {
                let holder = Holder {
                    pid: 1000 + process,
                    host: format!("machine-{process}").into(),
                    agent: format!("t{thread}").into(),
                };
                let link = rotor.link();
                let mut lock = PgRefreshLock::new(link.clone(), flight, holder.clone());
                let mut stores = PgStores::new(link, "main", 5_000);
                let request = Request {
                    role: Role::Main,
                    provider: "acme".into(),
                    profile: PROFILE.into(),
                    holder,
                };
                let host = Host {
                    lock: &mut lock,
                    stores: &mut stores,
                    endpoint: &mut provider,
                    clock: &SystemClock,
                };
                driver::resolve(host, request, Policy::default())
            }));
        }
    }
    for thread in threads {
        let granted = thread
            .join()
            .unwrap()
            .expect("G2: every thread gets a token");
        assert_eq!(granted.access.expose(), "at-1", "G2: the one rotation");
    }
    assert_eq!(provider.presentations("rt-0"), 1, "G1");
    assert_eq!(provider.max_presentations(), 1, "G1");
}
