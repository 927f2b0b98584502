//! The PostgreSQL server the tests run against, and one schema per test.
//!
//! The URL is `$ROTOR_PG_URL` when set, else the server on 127.0.0.1:5432
//! (database `test`) when it answers; otherwise the test fails and says how
//! to get one. Tests never skip silently. Each test works in a schema of its
//! own (`rotor_schema=`), dropped at the end, so tests run in parallel.
#![allow(dead_code)]

pub mod provider;

use std::sync::atomic::{AtomicUsize, Ordering};

/// The server URL (without `rotor_schema`).
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("ROTOR_PG_URL") {
        if !url.is_empty() {
            return url;
        }
    }
    let local = "postgres://postgres@127.0.0.1:5432/test";
    match postgres::Client::connect(local, postgres::NoTls) {
        Ok(_) => local.to_owned(),
        Err(error) => panic!(
            "these tests need PostgreSQL and found none ({error}). Set \
             ROTOR_PG_URL=postgres://user@host:port/db, or start a server on 127.0.0.1:5432 \
             with a database `test` that trusts local logins (Debian: apt-get install \
             postgresql, then pg_ctlcluster <version> main start; .ci/run does this)"
        ),
    }
}

/// A schema of one test, dropped when this guard goes.
pub struct TestSchema {
    /// The server URL.
    pub server: String,
    /// The schema name.
    pub name: String,
}

impl TestSchema {
    /// A fresh schema named after `test`.
    pub fn new(test: &str) -> TestSchema {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t_{}_{}_{}",
            test.to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let name: String = name.chars().take(63).collect();
        let schema = TestSchema {
            server: server_url(),
            name,
        };
        schema
            .admin()
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                schema.name
            ))
            .unwrap();
        schema
    }

    /// The store URL (`rotor_schema=` this schema).
    pub fn url(&self) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        format!("{}{separator}rotor_schema={}", self.server, self.name)
    }

    /// A plain connection to the server.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.server, postgres::NoTls)
            .expect("connect to the test server")
    }

    /// Ends the server sessions of process `pid`'s rotor connections;
    /// returns how many.
    pub fn terminate_sessions_of(&self, pid: u32) -> i64 {
        let row = self
            .admin()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = $1",
                &[&format!("rotor pid={pid}")],
            )
            .unwrap();
        row.get(0)
    }

    /// Ends the server session that holds (or last held) the lock of `key`.
    pub fn terminate_lock_holder(&self, key: &str) -> bool {
        let row = self
            .admin()
            .query_one(
                &format!(
                    "SELECT pg_terminate_backend(backend_pid) FROM \"{}\".refresh_locks WHERE key = $1",
                    self.name
                ),
                &[&key],
            )
            .unwrap();
        row.get(0)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ =
                admin.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}
