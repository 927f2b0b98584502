//! `rotor token --format bare|json|header|kubectl` end to end, with the
//! real consumers: `curl -H @-` reads the header line from a pipe (into a
//! loopback HTTP stub in this file), and a real `kubectl` runs `rotor token
//! --format kubectl` as the exec credential plugin of its kubeconfig
//! (apiVersion v1 and v1beta1) against tests/kube/api_stub.mjs, over TLS:
//! kubectl sends a plugin's token over https only. Both stubs answer 401
//! unless they get the expected bearer token. Each format's failures keep
//! the exit codes of `rotor token` and print nothing a consumer could take
//! for a token.
//!
//! Needs `curl`, `kubectl`, `openssl` and `node` on PATH (`.ci/run`
//! installs what is missing); fails, never skips, without them.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::*;

const PROFILE: &str = "acme:default";

/// A loopback HTTP server (for curl) that records each request's
/// Authorization header and answers 200 with a small JSON body when it is
/// `Bearer <expected>`, else 401.
struct ApiStub {
    url: String,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl ApiStub {
    fn start(expected: &str) -> ApiStub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let expected = format!("Bearer {expected}");
        let seen_in = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, expected) = (seen_in.clone(), expected.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut authorization = None;
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            break;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("authorization") {
                                authorization = Some(value.trim().to_owned());
                            }
                        }
                    }
                    let ok = authorization.as_deref() == Some(expected.as_str());
                    seen.lock().unwrap().push(authorization);
                    let (status, body) = if ok {
                        ("200 OK", r#"{"rotor":"welcome"}"#.to_owned())
                    } else {
                        ("401 Unauthorized", r#"{"error":"unauthorized"}"#.to_owned())
                    };
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.flush();
                });
            }
        });
        ApiStub { url, seen }
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

/// Fails (never skips) when `tool` (run with `args`) is not on PATH.
fn require(tool: &str, args: &[&str], install: &str) {
    let found = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(found, "this test needs `{tool}` on PATH: {install}");
}

fn token_format(state: &Path, format: &str, env: &[(&str, &str)]) -> Output {
    let mut command = rotor();
    command
        .args(["token", "--state-dir"])
        .arg(state)
        .args(["--profile", PROFILE, "--format", format])
        .env_remove("KUBERNETES_EXEC_INFO");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn logged_in(refresh: &str) -> (tempfile::TempDir, PathBuf, TokenServer) {
    let (temp, state) = state_dir();
    let server = TokenServer::start(refresh, 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    (temp, state, server)
}

fn logout(state: &Path) {
    let output = rotor()
        .args(["logout", "--state-dir"])
        .arg(state)
        .args(["--profile", PROFILE])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn bare_json_and_the_json_alias() {
    let (_temp, state, _server) = logged_in("rt-0");
    let bare = token_format(&state, "bare", &[]);
    assert_eq!(String::from_utf8_lossy(&bare.stdout), "at-0\n");
    let json = token_format(&state, "json", &[]);
    let alias = rotor()
        .args(["token", "--json", "--state-dir"])
        .arg(&state)
        .args(["--profile", PROFILE])
        .output()
        .unwrap();
    for output in [&json, &alias] {
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(value["access_token"], "at-0", "{value}");
        assert_eq!(value["outcome"], "cached", "{value}");
    }
    // Both at once is a usage error.
    let both = rotor()
        .args(["token", "--json", "--format", "json", "--state-dir"])
        .arg(&state)
        .args(["--profile", PROFILE])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "{both:?}");
}

#[test]
fn header_piped_into_curl_authorizes_the_request() {
    require(
        "curl",
        &["--version"],
        "install it (Debian: apt-get install curl; .ci/run does)",
    );
    let (_temp, state, server) = logged_in("rt-0");
    force_expiry(&state, "main", PROFILE);
    let stub = ApiStub::start("at-1");

    let output = token_format(&state, "header", &[]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Authorization: Bearer at-1\n",
        "the refreshed token, as one header line"
    );
    // `rotor token --format header | curl -sS -H @- URL`, two real processes.
    let mut rotor_child = rotor()
        .args(["token", "--state-dir"])
        .arg(&state)
        .args(["--profile", PROFILE, "--format", "header"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let curl = Command::new("curl")
        .args(["-sS", "--fail", "-H", "@-", &format!("{}/whoami", stub.url)])
        .stdin(rotor_child.stdout.take().unwrap())
        .output()
        .expect("curl");
    assert!(rotor_child.wait().unwrap().success());
    assert!(curl.status.success(), "curl: {curl:?}");
    assert_eq!(
        String::from_utf8_lossy(&curl.stdout),
        r#"{"rotor":"welcome"}"#
    );
    assert_eq!(stub.seen(), vec![Some("Bearer at-1".to_owned())]);
    assert_eq!(server.exchanges().len(), 1);
}

/// Runs `rotor token --format FORMAT` and checks a failure: the exit code,
/// and nothing on stdout but, with json, the error object.
fn fails(state: &Path, format: &str, extra: &[&str], code: i32, kind: &str) {
    let output = rotor()
        .args(["token", "--state-dir"])
        .arg(state)
        .args(["--profile", PROFILE, "--format", format])
        .args(extra)
        .env_remove("KUBERNETES_EXEC_INFO")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(code),
        "{format} {kind}: {output:?}"
    );
    if format == "json" {
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(value["error"]["kind"], kind, "{value}");
        assert_eq!(value["error"]["exit_code"], code, "{value}");
    } else {
        assert!(output.stdout.is_empty(), "{format} {kind}: {output:?}");
    }
    assert!(
        !output.stderr.is_empty(),
        "{format} {kind}: a message on stderr"
    );
}

#[test]
fn every_format_keeps_the_exit_codes_of_rotor_token() {
    for format in ["bare", "json", "header", "kubectl"] {
        let (_temp, state) = state_dir();
        fails(&state, format, &[], 3, "no_credential");
        fails(&state, format, &["--agent", "../x"], 2, "invalid_id");

        let server = TokenServer::start("rt-0", 3600);
        login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
        force_expiry(&state, "main", PROFILE);
        server.set_mode(Mode::ServerErrorNoBody);
        fails(&state, format, &[], 5, "in_doubt");
        server.set_mode(Mode::Normal);
        fails(&state, format, &[], 4, "needs_reauth");
        logout(&state);
        fails(&state, format, &[], 3, "logged_out");
        assert_eq!(server.received(), 1, "{format}: one presentation, in doubt");
    }
}

const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

fn exec_info(api_version: &str) -> String {
    format!(
        r#"{{"apiVersion":"{api_version}","kind":"ExecCredential","spec":{{"interactive":false}}}}"#
    )
}

/// GNU date as an independent oracle for the RFC 3339 expiry.
fn date_utc(seconds: i64) -> String {
    let output = Command::new("date")
        .args(["-u", "-d", &format!("@{seconds}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn kubectl_format_answers_in_the_asked_api_version() {
    let (_temp, state, server) = logged_in("rt-0");
    let expires_at_ms = read_store(&state, "main").profiles[PROFILE]
        .expires_at_ms
        .unwrap();
    for (info, version) in [
        (Some(exec_info(V1)), V1),
        (Some(exec_info(V1BETA1)), V1BETA1),
        (None, V1BETA1),
    ] {
        let env: Vec<(&str, &str)> = info
            .as_deref()
            .map(|info| ("KUBERNETES_EXEC_INFO", info))
            .into_iter()
            .collect();
        let output = token_format(&state, "kubectl", &env);
        assert!(output.status.success(), "{output:?}");
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(value["apiVersion"], version, "{value}");
        assert_eq!(value["kind"], "ExecCredential", "{value}");
        assert_eq!(value["status"]["token"], "at-0", "{value}");
        assert_eq!(
            value["status"]["expirationTimestamp"],
            date_utc(expires_at_ms.div_euclid(1000)),
            "{value}"
        );
    }

    // A version rotor cannot answer: a usage error, before any refresh.
    force_expiry(&state, "main", PROFILE);
    for info in [
        exec_info("client.authentication.k8s.io/v1alpha1"),
        "not json".to_owned(),
    ] {
        let output = token_format(&state, "kubectl", &[("KUBERNETES_EXEC_INFO", &info)]);
        assert_eq!(output.status.code(), Some(2), "{info}: {output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
    }
    assert_eq!(server.received(), 0, "nothing was refreshed");
}

/// tests/kube/api_stub.mjs: a stand-in API server over TLS (kubectl sends
/// an exec plugin's token over https only) with a throwaway self-signed
/// certificate for 127.0.0.1 made by the `openssl` CLI; killed on drop.
struct KubeApi {
    child: Child,
    port: u16,
    state_port: u16,
    cert: PathBuf,
    expected: PathBuf,
}

impl KubeApi {
    fn start(dir: &Path, token: &str) -> KubeApi {
        let (cert, key) = (dir.join("api-cert.pem"), dir.join("api-key.pem"));
        let output = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| {
                panic!("this test needs the `openssl` CLI on PATH for its certificate: {error}")
            });
        assert!(output.status.success(), "openssl: {output:?}");
        let expected = dir.join("expected-token");
        std::fs::write(&expected, token).unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kube/api_stub.mjs");
        let (child, info) =
            spawn_node_fixture(&script, &[&cert, &key, &expected], script.parent().unwrap());
        KubeApi {
            child,
            port: info["port"].as_u64().unwrap() as u16,
            state_port: info["state_port"].as_u64().unwrap() as u16,
            cert,
            expected,
        }
    }

    /// The token the stub accepts from now on.
    fn expect(&self, token: &str) {
        std::fs::write(&self.expected, token).unwrap();
    }

    /// The Authorization header of every request to `path`, in order.
    fn seen(&self, path: &str) -> Vec<Option<String>> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.state_port)).unwrap();
        write!(stream, "GET /seen HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let seen: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("bad /seen {text:?}: {e}"));
        seen.as_array()
            .unwrap()
            .iter()
            .filter(|request| request["path"] == path)
            .map(|request| request["authorization"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const API_PATH: &str = "/apis/rotor.example/v1/whoami";

/// A kubeconfig whose user runs `rotor token --format kubectl` as its exec
/// credential plugin, in `api_version`.
fn kubeconfig(dir: &Path, api: &KubeApi, state: &Path, api_version: &str) -> PathBuf {
    // v1 makes interactiveMode a required field.
    let interactive = if api_version == V1 {
        "\n      interactiveMode: Never"
    } else {
        ""
    };
    let text = format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: stub
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {cert}
users:
- name: rotor
  user:
    exec:
      apiVersion: {api_version}
      command: {rotor}
      args: ["token", "--format", "kubectl", "--state-dir", "{state}", "--profile", "{PROFILE}"]{interactive}
contexts:
- name: stub
  context:
    cluster: stub
    user: rotor
current-context: stub
"#,
        port = api.port,
        cert = api.cert.display(),
        rotor = env!("CARGO_BIN_EXE_rotor"),
        state = state.display(),
    );
    let path = dir.join(format!(
        "kubeconfig-{}",
        api_version.rsplit('/').next().unwrap()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn kubectl_get(kubeconfig: &Path, home: &Path) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "--raw", API_PATH])
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .env_remove("ROTOR_LOG")
        .env_remove("ROTOR_FAILPOINT")
        .stdin(Stdio::null())
        .output()
        .expect("kubectl")
}

#[test]
fn kubectl_uses_rotor_as_its_exec_credential_plugin_v1_and_v1beta1() {
    require(
        "kubectl",
        &["version", "--client"],
        "install it (Debian: apt-get install kubernetes-client; .ci/run does)",
    );
    for api_version in [V1, V1BETA1] {
        let (temp, state, server) = logged_in("rt-0");
        let api = KubeApi::start(temp.path(), "at-0");
        let config = kubeconfig(temp.path(), &api, &state, api_version);

        let output = kubectl_get(&config, temp.path());
        assert!(
            output.status.success(),
            "{api_version}: kubectl: {output:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            r#"{"rotor":"welcome"}"#
        );
        assert_eq!(
            api.seen(API_PATH),
            vec![Some("Bearer at-0".to_owned())],
            "{api_version}"
        );

        // Expired: the plugin refreshes once and kubectl gets the new token.
        force_expiry(&state, "main", PROFILE);
        api.expect("at-1");
        let output = kubectl_get(&config, temp.path());
        assert!(
            output.status.success(),
            "{api_version}: kubectl: {output:?}"
        );
        assert_eq!(server.exchanges().len(), 1, "{api_version}");
        assert_eq!(
            api.seen(API_PATH).last().cloned().flatten().as_deref(),
            Some("Bearer at-1"),
            "{api_version}"
        );

        // Logged out: the plugin exits 3, kubectl fails and sends no token.
        logout(&state);
        let before = api.seen(API_PATH).len();
        let output = kubectl_get(&config, temp.path());
        assert!(!output.status.success(), "{api_version}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("logged out"), "{api_version}: {stderr}");
        assert!(
            api.seen(API_PATH)[before..].iter().all(Option::is_none),
            "{api_version}: a token was sent after logout: {:?}",
            api.seen(API_PATH)
        );
    }
}

#[test]
fn a_token_with_a_line_break_is_never_printed_as_text() {
    // `curl -H @-` would send the second line as a header of its own.
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    // login_tokens would put the raw line break into the JSON: escape it.
    login_ok(
        &mut login_command(&state, "main", PROFILE, &server.url, "rotor-test"),
        &login_tokens("at-0\\r\\nX-Injected: 1", "rt-0"),
    );
    for format in ["header", "bare"] {
        let output = token_format(&state, format, &[]);
        assert_eq!(output.status.code(), Some(1), "{format}: {output:?}");
        assert!(
            output.stdout.is_empty(),
            "{format}: printed {:?}",
            output.stdout
        );
        assert!(String::from_utf8_lossy(&output.stderr).contains("control characters"));
    }
    let json = token_format(&state, "json", &[]);
    assert!(json.status.success(), "{json:?}");
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["access_token"], "at-0\r\nX-Injected: 1");
}
