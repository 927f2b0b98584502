//! A PostgreSQL server restart in the middle of a refresh storm: sixteen
//! `rotor token --store postgres://…` processes, each on a machine of its
//! own, the leader in its endpoint call when the server goes down and comes
//! back (`pg_ctl restart -m fast`: every session ends, the refresh lock with
//! them). No refresh token is presented twice (G1), every process ends with
//! a typed outcome, and the rotation the provider granted is not lost: a
//! later call gets it without another refresh (G6, G7).
//!
//! The test runs a throwaway cluster of its own (initdb under /tmp, a port
//! of its own), so restarting it disturbs no other test. It needs Debian's
//! `postgresql` binaries and root (initdb runs as the `postgres` user through
//! `su`, as scripts/ensure-postgres.sh does); without them it fails saying
//! so, never skips.
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;

const PROFILE: &str = "acme:default";

/// A throwaway PostgreSQL cluster on its own port.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn as_postgres(command: &str) {
    let status = Command::new("su")
        .args(["postgres", "-s", "/bin/sh", "-c", command])
        .status()
        .expect("run su");
    assert!(status.success(), "as postgres: {command}: {status}");
}

impl Cluster {
    fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .flatten()
                    .map(|v| v.path().join("bin"))
                    .filter(|bin| bin.join("initdb").exists())
                    .max()
            })
            .expect(
                "this test needs Debian's PostgreSQL server binaries: \
                 apt-get install postgresql (scripts/ensure-postgres.sh does it)",
            );
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            root,
            "this test runs initdb as the postgres user through su: run it as root (CI does)"
        );
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        let dir = PathBuf::from(format!("/tmp/rotor-pg-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let chown = Command::new("chown")
            .args(["postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(chown.success());
        let cluster = Cluster { bin, dir, port };
        as_postgres(&format!(
            "{} -D {}/data -A trust -U postgres >/dev/null",
            cluster.bin.join("initdb").display(),
            cluster.dir.display()
        ));
        as_postgres(&cluster.pg_ctl("start"));
        cluster
    }

    fn pg_ctl(&self, action: &str) -> String {
        format!(
            "{} -D {dir}/data -l {dir}/server.log -w -m fast {action} \
             -o '-c listen_addresses=127.0.0.1 -p {port} -k {dir}' >/dev/null",
            self.bin.join("pg_ctl").display(),
            dir = self.dir.display(),
            port = self.port
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", &self.pg_ctl("stop")])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn token_on(url: &str, machine: &std::path::Path) -> Command {
    let mut command = rotor();
    command
        .env("ROTOR_STATE_DIR", machine)
        .args(["token", "--json", "--store", url, "--profile", PROFILE])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

#[test]
fn a_server_restart_mid_storm_presents_nothing_twice_and_loses_no_rotation_g1_g6_g7() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let temp = tempfile::tempdir().unwrap();
    let machine = |n: usize| temp.path().join(format!("machine-{n}"));
    let server = TokenServer::start("rt-0", 3600);
    // The leader stays in its call long enough for the restart to land in it.
    server.set_delay_ms(1_500);
    // An access token already expired: the first callers all want a refresh.
    let tokens =
        r#"{"access_token":"at-0","refresh_token":"rt-0","expires_in":0,"client_secret":"s3cret"}"#;
    let mut login = rotor();
    login
        .env("ROTOR_STATE_DIR", machine(99))
        .args([
            "login",
            "--store",
            &url,
            "--profile",
            PROFILE,
            "--provider",
            "acme",
        ])
        .args(["--token-url", &server.url, "--client-id", "rotor-test"]);
    let output = run_with_stdin(&mut login, tokens);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let children: Vec<_> = (0..16)
        .map(|n| token_on(&url, &machine(n)).spawn().unwrap())
        .collect();
    server.wait_received(1, Duration::from_secs(20));
    as_postgres(&cluster.pg_ctl("restart"));
    let runs: Vec<TokenRun> = children.into_iter().map(finish).collect();

    server.assert_each_token_presented_once();
    assert_eq!(server.invalid_grants(), 0, "G1: {:?}", server.exchanges());
    for run in &runs {
        // Typed outcomes only: a token, needs reauth, in doubt, transient
        // (the server was down) or a store error naming the lost lock.
        assert!(
            matches!(run.code, Some(0 | 4 | 5 | 6 | 9)),
            "an untyped outcome: {run:?}"
        );
    }
    // A waiter whose session the restart ended waits for the server within
    // its lock budget (G8: bounded waits, not given up at the first refused
    // connection): none fails its lock wait on "shutting down".
    for run in &runs {
        let gave_up =
            run.stderr.contains("not acquired after") && run.stderr.contains("shutting down");
        assert!(
            !gave_up,
            "a waiter gave up while the server restarted: {run:?}"
        );
    }
    let codes: Vec<_> = runs.iter().map(|run| run.code).collect();
    eprintln!("exit codes after the restart: {codes:?}");
    for run in runs.iter().filter(|run| run.code != Some(0)).take(3) {
        eprintln!(
            "  {:?}: {}",
            run.code,
            run.stderr.trim().replace('\n', " | ")
        );
    }
    // The restart reached the storm: the leader's lock went with its
    // session, so the next holders found its fence (exit 4) or met the
    // server down (6) or a refused fence (9).
    assert!(
        runs.iter().any(|run| run.code != Some(0)),
        "the restart changed nothing: {codes:?}"
    );
    let exchanges = server.exchanges();
    assert_eq!(exchanges.len(), 1, "G1/G2: one grant: {exchanges:?}");
    let issued = exchanges[0].1.clone();
    // The rotation the provider granted was stored, through a new session:
    // a later call gets it without a refresh.
    let later = finish(token_on(&url, &machine(100)).spawn().unwrap());
    assert_eq!(
        later.code,
        Some(0),
        "G6/G7: the rotation was lost: {later:?}"
    );
    assert_eq!(later.access(), issued, "{later:?}");
    assert_ne!(later.json["outcome"], "refreshed", "{later:?}");
    assert_eq!(server.exchanges().len(), 1, "no second grant");
}
