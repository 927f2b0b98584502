//! The PostgreSQL side of the end-to-end tests of `rotor --store
//! postgres://…`: the server (`$ROTOR_PG_URL`, else 127.0.0.1:5432 when it
//! answers, else the test fails saying how to get one: never a silent skip),
//! one schema per test (dropped at the end), `rotor` processes each with a
//! state directory of its own (as if on separate machines), and the
//! server-side handles a test needs: the session of a process, its wait.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rotor_pg::postgres::{Client, NoTls};
use rotor_pg::PgRotor;

use crate::common::{finish, rotor, run_with_stdin, TokenRun};

pub const PROFILE: &str = "acme:default";

/// The server URL (without `rotor_schema`).
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("ROTOR_PG_URL") {
        if !url.is_empty() {
            return url;
        }
    }
    let local = "postgres://postgres@127.0.0.1:5432/test";
    match Client::connect(local, NoTls) {
        Ok(_) => local.to_owned(),
        Err(error) => panic!(
            "these tests need PostgreSQL and found none ({error}). Set \
             ROTOR_PG_URL=postgres://user@host:port/db, or start a server on 127.0.0.1:5432 \
             with a database `test` that trusts local logins (Debian: apt-get install \
             postgresql, then pg_ctlcluster <version> main start; .ci/run does this)"
        ),
    }
}

/// The tests of one binary take turns: a storm of 32 processes beside
/// another test's would crowd the server's connection limit.
pub fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One test's world: its schema (dropped at the end) and a temp directory
/// holding a state directory per process.
pub struct World {
    pub server: String,
    pub schema: String,
    pub temp: tempfile::TempDir,
    machines: AtomicUsize,
}

impl World {
    pub fn new(test: &str) -> World {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let schema: String = format!(
            "e2e_{test}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        )
        .chars()
        .take(63)
        .collect();
        let world = World {
            server: server_url(),
            schema,
            temp: tempfile::tempdir().unwrap(),
            machines: AtomicUsize::new(0),
        };
        world
            .admin()
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                world.schema
            ))
            .unwrap();
        world
    }

    /// The store URL every process gets.
    pub fn url(&self) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        format!("{}{separator}rotor_schema={}", self.server, self.schema)
    }

    pub fn admin(&self) -> Client {
        Client::connect(&self.server, NoTls).expect("connect to the test server")
    }

    pub fn rotor(&self) -> PgRotor {
        PgRotor::open(&self.url()).expect("open the store")
    }

    /// A fresh state directory: no process shares a file with another.
    pub fn machine(&self) -> PathBuf {
        let n = self.machines.fetch_add(1, Ordering::SeqCst);
        self.temp.path().join(format!("machine-{n}"))
    }

    /// `rotor login --store …` of PROFILE (provider acme) with these tokens.
    pub fn login(&self, token_url: &str, access: &str, refresh: &str) {
        let mut command = rotor();
        command
            .env("ROTOR_STATE_DIR", self.machine())
            .args([
                "login",
                "--store",
                &self.url(),
                "--profile",
                PROFILE,
                "--provider",
                "acme",
            ])
            .args(["--token-url", token_url, "--client-id", "rotor-test"]);
        let tokens = crate::common::login_tokens(access, refresh);
        let output = run_with_stdin(&mut command, &tokens);
        assert!(
            output.status.success(),
            "rotor login: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Sets PROFILE's expiry in main into the past (through the row lock).
    pub fn force_expiry(&self) {
        self.rotor()
            .update_store("main", |doc| {
                if let Some(credential) = doc.profiles.get_mut(PROFILE) {
                    credential.expires_at_ms = Some(1);
                }
                ((), true)
            })
            .unwrap();
    }

    /// The command of `rotor token --json --store …` on a machine of its own.
    pub fn token_command(&self) -> Command {
        self.token_command_on(&self.url())
    }

    /// The same, with another store URL (e.g. extra server options).
    pub fn token_command_on(&self, url: &str) -> Command {
        let mut command = rotor();
        command
            .env("ROTOR_STATE_DIR", self.machine())
            .args(["token", "--json", "--store", url, "--profile", PROFILE])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    pub fn spawn_token(&self) -> Child {
        self.token_command().spawn().expect("spawn rotor token")
    }

    pub fn token(&self) -> TokenRun {
        finish(self.spawn_token())
    }

    /// `rotor token` armed with a failpoint (`<step>:<action>`); its marker
    /// file appears when the step is reached.
    pub fn spawn_token_at(&self, failpoint: &str, marker: &Path) -> Child {
        let mut command = self.token_command();
        command
            .env("ROTOR_FAILPOINT", failpoint)
            .env("ROTOR_FAILPOINT_MARKER", marker);
        command.spawn().expect("spawn rotor token")
    }

    /// Ends the server sessions of process `pid`; returns how many.
    pub fn terminate_sessions_of(&self, pid: u32) -> i64 {
        self.admin()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = $1",
                &[&format!("rotor pid={pid}")],
            )
            .unwrap()
            .get(0)
    }

    /// How many server sessions process `pid` has.
    pub fn sessions_of(&self, pid: u32) -> i64 {
        self.admin()
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&format!("rotor pid={pid}")],
            )
            .unwrap()
            .get(0)
    }

    /// Waits (bounded) until process `pid`'s session waits for a lock.
    pub fn wait_until_waiting(&self, pid: u32) {
        let start = Instant::now();
        let mut admin = self.admin();
        loop {
            let row = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = $1 AND wait_event_type = 'Lock'",
                    &[&format!("rotor pid={pid}")],
                )
                .unwrap();
            if row.get::<_, i64>(0) > 0 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "pid {pid} never waited for the lock"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.server, NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

/// Waits (bounded) for a failpoint's marker file.
pub fn wait_for(marker: &Path) {
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "failpoint {} never reached",
            marker.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lets a process held at a `hold` failpoint go on.
pub fn release(marker: &Path) {
    std::fs::remove_file(marker).expect("the marker of a held process");
}
