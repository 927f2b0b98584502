//! Shared support for the end-to-end tests: a local OAuth token endpoint
//! that rotates refresh tokens and counts every presentation, and helpers
//! to run the real `rotor` binary against a state directory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rotor_fs::{AgentId, Layout, StoreFile};
use rotor_kernel::StoreDoc;

/// What the token server does with a valid presentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Rotate and answer.
    Normal,
    /// Rotate, then hold the answer until [`TokenServer::release_held`] (a
    /// response that never arrives while the client is alive).
    HoldAfterRotate,
    /// Answer 500 with an empty body, rotating nothing (an unknown outcome
    /// for the client).
    ServerErrorNoBody,
}

#[derive(Default)]
struct State {
    /// Refresh tokens that may still be exchanged.
    valid: HashMap<String, ()>,
    /// Every refresh token ever presented, with its count.
    presented: HashMap<String, u32>,
    /// Successful exchanges, in order: (presented refresh, new access).
    exchanges: Vec<(String, String)>,
    /// invalid_grant answers.
    invalid_grants: u32,
    /// Requests received (any outcome).
    received: u32,
    next: u64,
    ttl_s: u64,
    delay_ms: u64,
    held: bool,
    /// Authorization headers seen.
    authorizations: Vec<Option<String>>,
}

/// A local RFC 6749 token endpoint with strict rotation: a consumed refresh
/// token presented again gets 400 invalid_grant and revokes the family.
#[derive(Clone)]
pub struct TokenServer {
    state: Arc<(Mutex<State>, Condvar)>,
    mode: Arc<Mutex<Mode>>,
    pub url: String,
}

impl TokenServer {
    /// Starts a server whose tokens live `ttl_s` seconds; `initial` is the
    /// first valid refresh token.
    pub fn start(initial: &str, ttl_s: u64) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let mut state = State {
            ttl_s,
            ..State::default()
        };
        state.valid.insert(initial.to_owned(), ());
        let server = TokenServer {
            state: Arc::new((Mutex::new(state), Condvar::new())),
            mode: Arc::new(Mutex::new(Mode::Normal)),
            url,
        };
        let handle = server.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handle = handle.clone();
                std::thread::spawn(move || {
                    let _ = handle.serve(stream);
                });
            }
        });
        server
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Delay before each answer (keeps the lock held while others pile up).
    pub fn set_delay_ms(&self, delay_ms: u64) {
        self.state.0.lock().unwrap().delay_ms = delay_ms;
    }

    pub fn release_held(&self) {
        let (state, changed) = &*self.state;
        state.lock().unwrap().held = false;
        changed.notify_all();
    }

    /// Successful exchanges so far.
    pub fn exchanges(&self) -> Vec<(String, String)> {
        self.state.0.lock().unwrap().exchanges.clone()
    }

    pub fn invalid_grants(&self) -> u32 {
        self.state.0.lock().unwrap().invalid_grants
    }

    pub fn received(&self) -> u32 {
        self.state.0.lock().unwrap().received
    }

    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.state.0.lock().unwrap().authorizations.clone()
    }

    /// G1: no refresh token value was presented more than once.
    pub fn assert_each_token_presented_once(&self) {
        let state = self.state.0.lock().unwrap();
        for (token, count) in &state.presented {
            assert_eq!(
                *count, 1,
                "G1 violated: refresh token {token} was presented {count} times"
            );
        }
    }

    /// Waits (bounded) until the server has received `count` requests.
    pub fn wait_received(&self, count: u32, limit: Duration) {
        let start = Instant::now();
        while self.received() < count {
            assert!(
                start.elapsed() < limit,
                "the token server never got request {count}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut length = 0usize;
        let mut authorization = None;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let form: HashMap<String, String> = String::from_utf8_lossy(&body)
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), percent_decode(v)))
            .collect();
        let (status, answer, delay_ms, hold) = {
            let mut state = self.state.0.lock().unwrap();
            state.received += 1;
            state.authorizations.push(authorization);
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            *state.presented.entry(refresh.clone()).or_default() += 1;
            let delay_ms = state.delay_ms;
            if *self.mode.lock().unwrap() == Mode::ServerErrorNoBody {
                (500, String::new(), delay_ms, false)
            } else if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
                (
                    400,
                    r#"{"error":"unsupported_grant_type"}"#.to_owned(),
                    delay_ms,
                    false,
                )
            } else if state.valid.remove(&refresh).is_some() {
                state.next += 1;
                let n = state.next;
                let access = format!("at-{n}");
                let new_refresh = format!("rt-{n}");
                state.valid.insert(new_refresh.clone(), ());
                state.exchanges.push((refresh, access.clone()));
                let hold = *self.mode.lock().unwrap() == Mode::HoldAfterRotate;
                if hold {
                    state.held = true;
                }
                let answer = format!(
                    r#"{{"access_token":"{access}","refresh_token":"{new_refresh}","expires_in":{},"token_type":"Bearer"}}"#,
                    state.ttl_s
                );
                (200, answer, delay_ms, hold)
            } else {
                // Reuse: revoke the whole family, like strict providers.
                state.valid.clear();
                state.invalid_grants += 1;
                (
                    400,
                    r#"{"error":"invalid_grant","error_description":"refresh token already used"}"#
                        .to_owned(),
                    delay_ms,
                    false,
                )
            }
        };
        if delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(delay_ms));
        }
        if hold {
            let (state, changed) = &*self.state;
            let mut guard = state.lock().unwrap();
            while guard.held {
                guard = changed.wait(guard).unwrap();
            }
            return Ok(());
        }
        let reason = match status {
            200 => "OK",
            500 => "Internal Server Error",
            _ => "Bad Request",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let mut stream = stream;
        stream.write_all(response.as_bytes())?;
        stream.flush()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `rotor` binary under test.
pub fn rotor() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rotor"));
    command
        .env_remove("ROTOR_FAILPOINT")
        .env_remove("ROTOR_LOG");
    command
}

/// A fresh state directory inside a temp dir (kept alive by the returned guard).
pub fn state_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    (temp, state)
}

/// The `rotor login` command of `profile` (provider "acme", client
/// `client_id`, the server's URL) into `agent`'s store; the tokens go on stdin.
pub fn login_command(
    state: &Path,
    agent: &str,
    profile: &str,
    url: &str,
    client_id: &str,
) -> Command {
    let mut command = rotor();
    command.args(["login", "--state-dir"]).arg(state).args([
        "--agent",
        agent,
        "--profile",
        profile,
        "--provider",
        "acme",
        "--token-url",
        url,
        "--client-id",
        client_id,
    ]);
    command
}

/// The token JSON `rotor login` reads: the given tokens for an hour, with
/// a client secret.
pub fn login_tokens(access: &str, refresh: &str) -> String {
    format!(
        r#"{{"access_token":"{access}","refresh_token":"{refresh}","expires_in":3600,"client_secret":"s3cret"}}"#
    )
}

/// Runs a `rotor login` command with `tokens` on stdin; it must succeed.
pub fn login_ok(command: &mut Command, tokens: &str) {
    let output = run_with_stdin(command, tokens);
    assert!(
        output.status.success(),
        "rotor login failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `rotor login` of `profile` (provider "acme") into `agent`'s store with
/// the given tokens and the server's URL.
pub fn login(state: &Path, agent: &str, profile: &str, url: &str, access: &str, refresh: &str) {
    login_ok(
        &mut login_command(state, agent, profile, url, "rotor-test"),
        &login_tokens(access, refresh),
    );
}

/// `rotor status --json`, parsed.
pub fn status_json(state: &Path) -> serde_json::Value {
    let output = rotor()
        .args(["status", "--json", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {output:?}"))
}

pub fn run_with_stdin(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rotor");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Spawns `rotor token --json` for `agent`/`profile`.
pub fn spawn_token(state: &Path, agent: &str, profile: &str, extra: &[&str]) -> Child {
    rotor()
        .args(["token", "--json", "--state-dir"])
        .arg(state)
        .args(["--agent", agent, "--profile", profile])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rotor token")
}

/// The outcome of one `rotor token --json` process.
#[derive(Debug)]
pub struct TokenRun {
    pub code: Option<i32>,
    pub json: serde_json::Value,
    pub stderr: String,
}

impl TokenRun {
    pub fn access(&self) -> &str {
        self.json["access_token"].as_str().unwrap_or_else(|| {
            panic!(
                "no token: exit {:?}, {}, {}",
                self.code, self.json, self.stderr
            )
        })
    }
}

pub fn finish(child: Child) -> TokenRun {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    TokenRun {
        code: output.status.code(),
        json: serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `rotor token --json` once and waits.
pub fn token(state: &Path, agent: &str, profile: &str) -> TokenRun {
    finish(spawn_token(state, agent, profile, &[]))
}

/// A store file of the state directory.
pub fn store(state: &Path, agent: &str) -> StoreFile {
    StoreFile::new(&Layout::new(state), &AgentId::new(agent).unwrap(), 10_000)
}

/// Reads a store (it must parse: G6).
pub fn read_store(state: &Path, agent: &str) -> StoreDoc {
    store(state, agent)
        .read_doc()
        .unwrap_or_else(|fault| {
            panic!("G6 violated: store of {agent} unreadable: {}", fault.detail)
        })
        .unwrap_or_else(|| panic!("store of {agent} missing"))
}

/// Forces expiry: rewrites `profile`'s expires_at_ms into the past, through
/// the store's read-modify-write door.
pub fn force_expiry(state: &Path, agent: &str, profile: &str) {
    store(state, agent)
        .update("update", |doc| {
            if let Some(credential) = doc.profiles.get_mut(profile) {
                credential.expires_at_ms = Some(1);
            }
            ((), true)
        })
        .unwrap();
}

/// Starts a node fixture (`node <script> <args>` in `dir`) and reads the one
/// JSON line it prints when it listens (ports, minted tokens). Its stdin is
/// kept open: the fixtures exit when it closes.
pub fn spawn_node_fixture(script: &Path, args: &[&Path], dir: &Path) -> (Child, serde_json::Value) {
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node (is node 20 installed?)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("{} printed {line:?}: {e}", script.display()));
    (child, info)
}
