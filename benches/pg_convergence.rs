//! The PostgreSQL store beside the filesystem, in one run (issue 11).
//!
//! 1. **Convergence.** N `rotor token` processes (N = 2, 8, 32) are started
//!    at once on an expired credential; the time until all N have printed the
//!    new token, for `--state-dir` (flock, one machine) and `--store
//!    postgres://…` (one server, each process as if on its own machine). The
//!    loopback endpoint answers after 50 ms. Storms of the two alternate so
//!    machine noise hits them alike.
//! 2. **Fast path.** `token` calls per second through the library while the
//!    token is fresh, `Rotor` and `PgRotor` (one thread; a PostgreSQL call is
//!    one read over a pooled connection).
//!
//! Run: `cargo bench --bench pg_convergence` (about a minute), or with
//! `-- --test` (N = 2, one storm each: CI). Needs PostgreSQL: `$ROTOR_PG_URL`,
//! else 127.0.0.1:5432 (see scripts/ensure-postgres.sh). It only reports; it
//! exits non-zero when a correctness check fails (a process without the new
//! token, more than one endpoint call per storm: G1, G2), never for a time.

#[path = "convergence/server.rs"]
mod server;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rotor_fs::settings::{AuthMethod, EndpointSettings, HttpSettings};
use rotor_fs::Rotor;
use rotor_kernel::Credential;
use rotor_pg::PgRotor;

use crate::server::TokenServer;

const PROFILE: &str = "acme:default";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Flock,
    Postgres,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Flock => "flock",
            Store::Postgres => "postgres",
        }
    }
}

struct Bench {
    server: TokenServer,
    state_dir: std::path::PathBuf,
    pg_url: String,
    pg_server: String,
    schema: String,
    storms: u64,
}

fn pg_server() -> String {
    let url = std::env::var("ROTOR_PG_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    if let Err(error) = rotor_pg::postgres::Client::connect(&url, rotor_pg::postgres::NoTls) {
        panic!("this bench needs PostgreSQL ({error}): set ROTOR_PG_URL or run scripts/ensure-postgres.sh");
    }
    url
}

fn expired(server: &TokenServer, refresh: &str) -> Credential {
    let mut credential = Credential::oauth("acme", "at-old", refresh, 1);
    EndpointSettings::Http(HttpSettings {
        token_url: server.url.clone(),
        client_id: "bench".into(),
        client_secret: None,
        auth_method: AuthMethod::None,
        scope: None,
        ca_file: None,
    })
    .install(&mut credential);
    credential
}

impl Bench {
    /// A fresh expired credential in `store`, its refresh token accepted once.
    fn expire(&mut self, store: Store) {
        self.storms += 1;
        let refresh = format!("rt-storm-{}", self.storms);
        self.server.accept(&refresh);
        let credential = expired(&self.server, &refresh);
        match store {
            Store::Flock => Rotor::open(&self.state_dir)
                .and_then(|rotor| rotor.login("main", PROFILE, credential))
                .map(drop)
                .expect("fs login"),
            Store::Postgres => PgRotor::open(&self.pg_url)
                .and_then(|rotor| rotor.login("main", PROFILE, credential))
                .map(drop)
                .expect("pg login"),
        }
    }

    fn command(&self, store: Store, machine: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rotor"));
        command.args(["token", "--profile", PROFILE]);
        match store {
            Store::Flock => command.arg("--state-dir").arg(&self.state_dir),
            Store::Postgres => command
                .env("ROTOR_STATE_DIR", machine)
                .args(["--store", &self.pg_url]),
        };
        command
            .env_remove("ROTOR_FAILPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// One storm of `n` processes; its wall time. Panics on a G1/G2 failure.
    fn storm(&mut self, store: Store, n: usize) -> Duration {
        self.expire(store);
        let before = self.server.counters();
        let machines = tempfile::tempdir().unwrap();
        let mut commands: Vec<Command> = (0..n)
            .map(|i| self.command(store, &machines.path().join(i.to_string())))
            .collect();
        let start = Instant::now();
        let children: Vec<_> = commands
            .iter_mut()
            .map(|c| c.spawn().expect("spawn rotor"))
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let elapsed = start.elapsed();
        let after = self.server.counters();
        let issued = self.server.last_access().expect("an exchange");
        for output in &outputs {
            let printed = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && printed.trim() == issued,
                "G2: a {} process did not print the new token: {output:?}",
                store.name()
            );
        }
        assert_eq!(
            after.received - before.received,
            1,
            "G2: one endpoint call per storm ({})",
            store.name()
        );
        assert_eq!(
            after.reused,
            before.reused,
            "G1: a refresh token presented twice ({})",
            store.name()
        );
        elapsed
    }

    /// Fresh-token calls per second through the library for `duration`.
    fn fast_path(&mut self, store: Store, duration: Duration) -> f64 {
        self.expire(store);
        let first = self.storm_one(store);
        let start = Instant::now();
        let mut calls = 0u64;
        match store {
            Store::Flock => {
                let rotor = Rotor::open(&self.state_dir).unwrap();
                while start.elapsed() < duration {
                    assert_eq!(
                        rotor
                            .token("main", "acme", PROFILE)
                            .unwrap()
                            .access
                            .expose(),
                        first
                    );
                    calls += 1;
                }
            }
            Store::Postgres => {
                let rotor = PgRotor::open(&self.pg_url).unwrap();
                while start.elapsed() < duration {
                    assert_eq!(
                        rotor
                            .token("main", "acme", PROFILE)
                            .unwrap()
                            .access
                            .expose(),
                        first
                    );
                    calls += 1;
                }
            }
        }
        calls as f64 / start.elapsed().as_secs_f64()
    }

    /// Refreshes once through the library; the new access token.
    fn storm_one(&mut self, store: Store) -> String {
        let granted = match store {
            Store::Flock => Rotor::open(&self.state_dir)
                .unwrap()
                .token("main", "acme", PROFILE)
                .unwrap(),
            Store::Postgres => PgRotor::open(&self.pg_url)
                .unwrap()
                .token("main", "acme", PROFILE)
                .unwrap(),
        };
        granted.access.expose().to_owned()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Ok(mut admin) =
            rotor_pg::postgres::Client::connect(&self.pg_server, rotor_pg::postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let (ns, runs, fast) = if quick {
        (vec![2], 1, Duration::from_millis(200))
    } else {
        (vec![2, 8, 32], 7, Duration::from_secs(2))
    };
    let temp = tempfile::tempdir().unwrap();
    let pg_server = pg_server();
    let schema = format!("bench_{}", std::process::id());
    let separator = if pg_server.contains('?') { '&' } else { '?' };
    let mut bench = Bench {
        server: TokenServer::start(Duration::from_millis(50)).unwrap(),
        state_dir: temp.path().join("state"),
        pg_url: format!("{pg_server}{separator}rotor_schema={schema}"),
        pg_server,
        schema,
        storms: 0,
    };
    println!("convergence of N `rotor token` processes, endpoint latency 50 ms, median of {runs}");
    println!("{:>4}  {:>12}  {:>15}", "N", "flock (ms)", "postgres (ms)");
    for n in ns {
        let (mut flock, mut pg) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            flock.push(bench.storm(Store::Flock, n));
            pg.push(bench.storm(Store::Postgres, n));
        }
        println!(
            "{n:>4}  {:>12.1}  {:>15.1}",
            median_ms(&mut flock),
            median_ms(&mut pg)
        );
    }
    println!("fast path (fresh token), library calls per second, one thread:");
    for store in [Store::Flock, Store::Postgres] {
        let rate = bench.fast_path(store, fast);
        println!(
            "  {:<9} {rate:>9.0} calls/s ({:.0} µs per call)",
            store.name(),
            1e6 / rate
        );
    }
}
