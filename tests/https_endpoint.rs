//! The HTTPS success path and `--ca-file`, end to end through the real
//! binary against a real TLS server (node's built-in `https`, no npm
//! packages: tests/https/server.mjs) with a throwaway CA made by the
//! `openssl` CLI at test time.
//!
//! - Trusted CA: `rotor token` refreshes over TLS, prints the new access
//!   token, presents the refresh token exactly once and stores the rotated
//!   one (G1, G2).
//! - A CA that did not sign the server certificate: the handshake fails,
//!   which is "not sent" (exit 6); the server saw no request, the stored
//!   credential is untouched and no in-doubt fence is left behind (G1, G7).
//!   Pointing the credential at the right CA then spends the same refresh
//!   token once, which proves it was never presented.
//!
//! Needs `openssl` and `node` (20) on PATH; fails (does not skip) without.
mod common;
#[path = "../fs/tests/support/pki.rs"]
mod pki;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;

use common::*;
use pki::{make_server_cert, pki, Pki};

const PROFILE: &str = "acme:default";

/// tests/https/server.mjs, killed on drop.
struct HttpsServer {
    child: Child,
    port: u16,
    state_port: u16,
}

impl HttpsServer {
    fn start(pki: &Pki, initial: &str) -> HttpsServer {
        HttpsServer::start_with(&pki.cert, &pki.key, initial)
    }

    /// The fixture serving `cert` / `key`.
    fn start_with(cert: &Path, key: &Path, initial: &str) -> HttpsServer {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/https");
        let initial = PathBuf::from(initial);
        let (child, info) =
            spawn_node_fixture(&dir.join("server.mjs"), &[cert, key, &initial], &dir);
        HttpsServer {
            child,
            port: info["port"].as_u64().unwrap() as u16,
            state_port: info["state_port"].as_u64().unwrap() as u16,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/token", self.port)
    }

    /// The fixture's counters (GET /state on its plain-HTTP side port).
    fn state(&self) -> serde_json::Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.state_port)).unwrap();
        write!(stream, "GET /state HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("bad /state {text:?}: {e}"))
    }

    /// Waits (bounded) for the server to log a failed handshake: the
    /// client's alert may land just after `rotor` exits.
    fn wait_tls_client_error(&self) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            let state = self.state();
            if state["tls_client_errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
                || start.elapsed() > std::time::Duration::from_secs(5)
            {
                return state;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rotor login` with an https token URL and `--ca-file`.
fn login_https(state: &Path, url: &str, ca_file: &Path) {
    login_ok(
        login_command(state, "main", PROFILE, url, "rotor-test")
            .arg("--ca-file")
            .arg(ca_file),
        &login_tokens("at-0", "rt-0"),
    );
}

fn stored_refresh(state: &Path) -> String {
    read_store(state, "main").profiles[PROFILE]
        .refresh
        .as_ref()
        .expect("a stored refresh token")
        .expose()
        .to_owned()
}

/// `rotor status --json`'s in-doubt fences of the profile.
fn status_fences(state: &Path) -> serde_json::Value {
    status_json(state)["stores"][0]["profiles"][PROFILE]["in_doubt_fences"].clone()
}

#[test]
fn refresh_over_tls_with_ca_file_rotates_once_g1_g2() {
    let pki = pki();
    let server = HttpsServer::start(&pki, "rt-0");
    let (_temp, state) = state_dir();
    login_https(&state, &server.url(), &pki.ca);
    force_expiry(&state, "main", PROFILE);

    let run = token(&state, "main", PROFILE);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.access(), "at-1", "the new access token is printed");
    assert_eq!(run.json["outcome"], "refreshed", "{run:?}");

    let seen = server.state();
    assert_eq!(seen["received"], 1, "exactly one request: {seen}");
    assert_eq!(
        seen["presented"],
        serde_json::json!({"rt-0": 1}),
        "G1: {seen}"
    );
    assert_eq!(seen["exchanges"], 1, "{seen}");
    assert_eq!(seen["invalid_grants"], 0, "{seen}");
    assert_eq!(
        stored_refresh(&state),
        "rt-1",
        "G2: the rotated token is stored"
    );
    assert!(read_store(&state, "main").fences.is_empty());
    assert_eq!(status_fences(&state), serde_json::json!([]));

    // The fresh token is served from the store (plain `rotor token` prints
    // it bare): nothing more is sent.
    let again = rotor()
        .args(["token", "--state-dir"])
        .arg(&state)
        .args(["--agent", "main", "--profile", PROFILE])
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "at-1");
    assert_eq!(server.state()["received"], 1);
}

/// A refresh whose TLS handshake failed: exit 6 (transient, not sent), the
/// certificate refused for `reason`, nothing presented (G1), the credential
/// untouched and no fence (G7).
fn assert_refused_before_sending(
    run: &TokenRun,
    server: &HttpsServer,
    state: &Path,
    before: &rotor_kernel::Credential,
    reason: &str,
) {
    assert_eq!(
        run.code,
        Some(6),
        "a refused certificate is a TLS handshake failure: not sent: {run:?}"
    );
    assert_eq!(run.json["error"]["kind"], "transient", "{run:?}");
    let message = run.json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(reason),
        "the certificate was refused for {reason}: {run:?}"
    );
    let seen = server.wait_tls_client_error();
    assert!(
        !seen["tls_client_errors"].as_array().unwrap().is_empty(),
        "rotor reached the server and refused its certificate: {seen}"
    );
    assert_eq!(seen["tls_handshakes"], 0, "{seen}");
    assert_eq!(seen["received"], 0, "G1: nothing was presented: {seen}");
    assert_eq!(seen["presented"], serde_json::json!({}), "{seen}");

    let doc = read_store(state, "main");
    let after = &doc.profiles[PROFILE];
    assert_eq!(stored_refresh(state), "rt-0", "the credential is untouched");
    assert_eq!(after.generation, before.generation);
    assert_eq!(after.expires_at_ms, before.expires_at_ms);
    assert!(!after.needs_reauth, "not sent is not a reason to reauth");
    assert!(doc.fences.is_empty(), "G7: not sent leaves no fence");
    assert_eq!(status_fences(state), serde_json::json!([]), "G7");
}

#[test]
fn a_certificate_for_another_name_is_not_sent_and_spends_nothing_g1_g7() {
    let pki = pki();
    // Signed by the trusted CA, but for 127.0.0.2 while the URL names
    // 127.0.0.1: the name check alone refuses it.
    // A certificate the CA signed for another address (127.0.0.2).
    let (misnamed_cert, misnamed_key) =
        make_server_cert(pki.dir.path(), "ca", "misnamed", "127.0.0.2");
    let server = HttpsServer::start_with(&misnamed_cert, &misnamed_key, "rt-0");
    let (_temp, state) = state_dir();
    login_https(&state, &server.url(), &pki.ca);
    force_expiry(&state, "main", PROFILE);
    let before = read_store(&state, "main").profiles[PROFILE].clone();

    let run = token(&state, "main", PROFILE);
    assert_refused_before_sending(&run, &server, &state, &before, "not valid for name");
}

#[test]
fn a_ca_file_that_did_not_sign_the_server_is_not_sent_and_spends_nothing_g1_g7() {
    let pki = pki();
    let server = HttpsServer::start(&pki, "rt-0");
    let (_temp, state) = state_dir();
    login_https(&state, &server.url(), &pki.other_ca);
    force_expiry(&state, "main", PROFILE);
    let before = read_store(&state, "main").profiles[PROFILE].clone();

    let run = token(&state, "main", PROFILE);
    assert_refused_before_sending(&run, &server, &state, &before, "UnknownIssuer");

    // Trust the right CA: the same refresh token is spent exactly once,
    // so the failed attempt never presented it.
    store(&state, "main")
        .update("update", |doc| {
            let credential = doc.profiles.get_mut(PROFILE).unwrap();
            credential.extra.get_mut("endpoint").unwrap()["ca_file"] =
                pki.ca.to_str().unwrap().into();
            ((), true)
        })
        .unwrap();
    let run = token(&state, "main", PROFILE);
    assert_eq!(run.access(), "at-1", "{run:?}");
    let seen = server.state();
    assert_eq!(
        seen["presented"],
        serde_json::json!({"rt-0": 1}),
        "G1: {seen}"
    );
    assert_eq!(stored_refresh(&state), "rt-1");
}
