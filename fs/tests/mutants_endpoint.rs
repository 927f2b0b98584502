//! Tests written for `cargo mutants` over the token endpoint
//! (`fs/src/endpoint.rs`; docs/mutants.md, fs campaign 3): the shipped
//! [`FsEndpoint`] against a loopback HTTP server that answers each way a
//! provider or a network can, and against real refresh commands. The
//! endpoint's one job beyond the call is to say whether anything was sent:
//! a failure reported as *not sent* when the request may have left would let
//! the kernel present a consumed token again (G1), and one reported as
//! *unknown* when nothing left keeps a fence for nothing and costs a
//! re-login (G7). The root package's `tests/endpoint_errors.rs`,
//! `tests/https_endpoint.rs` and `tests/oidc_e2e.rs` check the same through
//! the binary, TLS and a real OAuth server; these run in the fs host's own
//! fast mutants command.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rotor_fs::endpoint::BODY_BYTES_MAX;
use rotor_fs::settings::{AuthMethod, EndpointSettings, HttpSettings};
use rotor_fs::FsEndpoint;
use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{Credential, EndpointError, TokenGrant, Transport};

const DEADLINE_MS: u64 = 10_000;

/// What a loopback server got: the request line, headers and body.
#[derive(Debug)]
struct Request {
    head: String,
    body: String,
}

/// Serves one connection: reads the request, hands it over, then lets
/// `answer` reply on the raw socket (or not at all).
fn serve_once(
    answer: impl FnOnce(&mut TcpStream) + Send + 'static,
) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let _ = tx.send(Request {
            head,
            body: String::from_utf8(body).unwrap(),
        });
        answer(&mut stream);
    });
    (url, rx)
}

fn respond(status: &str, body: &str) -> impl FnOnce(&mut TcpStream) + Send + 'static {
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    move |stream| {
        let _ = stream.write_all(reply.as_bytes());
    }
}

fn http_credential(url: &str, auth_method: AuthMethod) -> Credential {
    let mut credential = Credential::oauth("acme", "at-0", "rt-0 +/&", 0);
    EndpointSettings::Http(HttpSettings {
        token_url: url.into(),
        client_id: "client:1".into(),
        client_secret: Some("s&cret".into()),
        auth_method,
        scope: Some("openid offline".into()),
        ca_file: None,
    })
    .install(&mut credential);
    credential
}

fn command_credential(script: &str) -> Credential {
    let mut credential = Credential::oauth("acme", "at-0", "rt-cmd", 0);
    EndpointSettings::Command(vec!["/bin/sh".into(), "-c".into(), script.into()])
        .install(&mut credential);
    credential
}

fn call(credential: &Credential, deadline_ms: u64) -> Result<TokenGrant, EndpointError> {
    FsEndpoint.refresh(credential, deadline_ms)
}

/// Whether the kernel may treat the failure as "nothing was sent" (G1).
fn not_sent(error: &EndpointError) -> bool {
    matches!(
        error.transport,
        Some(Transport::ConnectRefused | Transport::DnsFailure | Transport::TlsHandshake)
    )
}

/// A 200 with a token response is the grant: the request is the RFC 6749
/// §6 form with the token and scope form-encoded, the client authenticated
/// by HTTP Basic, JSON asked for; `expires_in` is seconds, the identity
/// fields come through (G3 reads them).
#[test]
fn g1_a_token_response_is_the_grant_and_the_request_is_rfc_6749() {
    let (url, requests) = serve_once(respond(
        "200 OK",
        r#"{"access_token":"at-1","refresh_token":"rt-1","expires_in":60,"account_id":"acct-9","email":"a@example.com"}"#,
    ));
    let grant = call(
        &http_credential(&url, AuthMethod::ClientSecretBasic),
        DEADLINE_MS,
    )
    .unwrap();
    assert_eq!(grant.access.expose(), "at-1");
    assert_eq!(grant.refresh.as_ref().unwrap().expose(), "rt-1");
    assert_eq!(grant.expires_in_ms, Some(60_000));
    assert_eq!(grant.account_id.as_deref(), Some("acct-9"));
    assert_eq!(grant.email.as_deref(), Some("a@example.com"));

    let request = requests.recv().unwrap();
    assert!(
        request.head.starts_with("POST /token HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    let head = request.head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/x-www-form-urlencoded"),
        "{head}"
    );
    assert!(head.contains("accept: application/json"), "{head}");
    // base64("client%3A1:s%26cret")
    assert!(
        request.head.contains("Basic Y2xpZW50JTNBMTpzJTI2Y3JldA=="),
        "{}",
        request.head
    );
    assert_eq!(
        request.body,
        "grant_type=refresh_token&refresh_token=rt-0%20%2B%2F%26&scope=openid%20offline"
    );
}

/// The body limit is a megabyte: a normal response is read whole, and a
/// larger one is a malformed reply after sending, never a grant.
#[test]
fn g1_a_response_over_the_body_limit_is_malformed_not_a_grant() {
    assert_eq!(BODY_BYTES_MAX, 1 << 20);
    let padding = "x".repeat(BODY_BYTES_MAX as usize + 10);
    let body = format!(r#"{{"access_token":"at-1","pad":"{padding}"}}"#);
    let (url, _requests) = serve_once(respond("200 OK", &body));
    let error = call(&http_credential(&url, AuthMethod::None), DEADLINE_MS).unwrap_err();
    assert_eq!(
        error.transport,
        Some(Transport::MalformedResponse),
        "{error:?}"
    );
    assert!(!not_sent(&error));
}

/// A provider's refusal is an HTTP error with its status and body, for the
/// kernel to classify (`invalid_grant` is a reuse, G1), and no transport.
#[test]
fn g1_a_refusal_keeps_its_status_and_body() {
    let refusal = r#"{"error":"invalid_grant","error_description":"refresh token reused"}"#;
    let (url, requests) = serve_once(respond("400 Bad Request", refusal));
    let error = call(
        &http_credential(&url, AuthMethod::ClientSecretPost),
        DEADLINE_MS,
    )
    .unwrap_err();
    assert_eq!(error, EndpointError::http(400, refusal));
    let request = requests.recv().unwrap();
    assert!(
        request
            .body
            .ends_with("&client_id=client%3A1&client_secret=s%26cret"),
        "{}",
        request.body
    );
    assert!(!request.head.contains("Authorization"), "{}", request.head);
}

/// A redirect is not followed (the token would go to the new location) and
/// is a refusal with its status.
#[test]
fn g1_a_redirect_is_not_followed() {
    let (url, _requests) = serve_once(|stream| {
        let _ = stream.write_all(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let error = call(&http_credential(&url, AuthMethod::None), DEADLINE_MS).unwrap_err();
    assert_eq!(error.status, Some(302), "{error:?}");
    assert_eq!(error.transport, None);
}

/// A 200 whose body is no token response is an unknown outcome (the token
/// may be spent), with the status kept.
#[test]
fn g1_a_success_without_a_token_response_is_malformed() {
    let (url, _requests) = serve_once(respond("200 OK", "<html>login</html>"));
    let error = call(&http_credential(&url, AuthMethod::None), DEADLINE_MS).unwrap_err();
    assert_eq!(error.status, Some(200));
    assert_eq!(error.transport, Some(Transport::MalformedResponse));
    assert!(
        error.causes[0].starts_with("malformed success body"),
        "{error:?}"
    );
}

/// A closed port is provably not sent (G7: no fence kept for it).
#[test]
fn g7_a_refused_connection_is_not_sent() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    let error = call(&http_credential(&url, AuthMethod::None), DEADLINE_MS).unwrap_err();
    assert_eq!(
        error.transport,
        Some(Transport::ConnectRefused),
        "{error:?}"
    );
}

/// A URL that cannot be requested and settings that cannot be read send
/// nothing, and say so.
#[test]
fn g7_unusable_settings_send_nothing() {
    let error = call(
        &http_credential("http://[bad", AuthMethod::None),
        DEADLINE_MS,
    )
    .unwrap_err();
    assert!(not_sent(&error), "{error:?}");
    let mut missing_ca = http_credential("https://127.0.0.1:1/token", AuthMethod::None);
    missing_ca.extra.get_mut("endpoint").unwrap()["ca_file"] = "/nonexistent/ca.pem".into();
    let error = call(&missing_ca, DEADLINE_MS).unwrap_err();
    assert_eq!(error.transport, Some(Transport::TlsHandshake), "{error:?}");
    assert!(error.causes[0].contains("ca_file"), "{error:?}");
    let bare = Credential::oauth("acme", "at-0", "rt-0", 0);
    let error = call(&bare, DEADLINE_MS).unwrap_err();
    assert_eq!(error.transport, Some(Transport::ConnectRefused));
    assert!(error.causes[0].starts_with("nothing was sent"), "{error:?}");
    let mut no_refresh = http_credential("http://127.0.0.1:1/token", AuthMethod::None);
    no_refresh.refresh = None;
    let error = call(&no_refresh, DEADLINE_MS).unwrap_err();
    assert_eq!(error.transport, Some(Transport::ConnectRefused));
    assert!(error.causes[0].contains("no refresh token"), "{error:?}");
}

/// HTTPS to a server that does not speak TLS (it answers the ClientHello
/// with plain HTTP) fails in the handshake, before any request byte: not
/// sent.
#[test]
fn g7_a_failed_tls_handshake_is_not_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/token", listener.local_addr().unwrap());
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        thread::sleep(Duration::from_secs(2));
    });
    let error = call(&http_credential(&url, AuthMethod::None), DEADLINE_MS).unwrap_err();
    assert_eq!(error.transport, Some(Transport::TlsHandshake), "{error:?}");
}

/// A server that takes the request and never answers is an unknown
/// outcome at the deadline, never "not sent" (G1), and the call returns.
#[test]
fn g1_a_silent_server_times_out_after_send() {
    let (hold, held) = mpsc::channel::<()>();
    let (url, requests) = serve_once(move |_stream| {
        let _ = held.recv_timeout(Duration::from_secs(30));
    });
    let error = call(&http_credential(&url, AuthMethod::None), 300).unwrap_err();
    assert_eq!(
        error.transport,
        Some(Transport::TimedOutAfterSend),
        "{error:?}"
    );
    assert!(requests.try_recv().is_ok(), "the request was sent");
    drop(hold);
}

/// A connection closed after the request, or a body cut short, is an
/// unknown outcome (G1).
#[test]
fn g1_a_broken_reply_is_an_unknown_outcome() {
    let (url, _requests) = serve_once(|stream| {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    });
    let error = call(&http_credential(&url, AuthMethod::None), DEADLINE_MS).unwrap_err();
    assert!(error.transport.is_some() && !not_sent(&error), "{error:?}");

    let (url, _requests) = serve_once(|stream| {
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"access_token\"",
        );
        let _ = stream.shutdown(std::net::Shutdown::Both);
    });
    let error = call(&http_credential(&url, AuthMethod::None), DEADLINE_MS).unwrap_err();
    assert!(error.transport.is_some() && !not_sent(&error), "{error:?}");
}

/// A refresh command gets the credential on stdin (not argv) and its token
/// response on stdout is the grant; it may take its time within the
/// deadline.
#[test]
fn g1_a_refresh_command_reads_the_credential_and_prints_the_grant() {
    let credential = command_credential(
        r#"input=$(cat); sleep 0.2; case "$input" in *'"rt-cmd"'*) ;; *) exit 9;; esac
           printf '{"access_token":"at-c","refresh_token":"rt-c2","expires_in":"30"}'"#,
    );
    let grant = call(&credential, DEADLINE_MS).unwrap();
    assert_eq!(grant.access.expose(), "at-c");
    assert_eq!(grant.refresh.unwrap().expose(), "rt-c2");
    assert_eq!(grant.expires_in_ms, Some(30_000));
}

/// Exit 75 is "nothing was sent" with the command's words; another exit is
/// an unknown outcome carrying stdout (where a provider's refusal would
/// be) and stderr; exit 0 without a token response is malformed.
#[test]
fn g7_a_refresh_commands_exit_says_whether_anything_was_sent() {
    let error = call(
        &command_credential("echo offline >&2; exit 75"),
        DEADLINE_MS,
    )
    .unwrap_err();
    assert_eq!(error.transport, Some(Transport::ConnectRefused));
    assert!(error.causes[0].ends_with("(exit 75): offline"), "{error:?}");

    let error = call(
        &command_credential(r#"echo '{"error":"invalid_grant"}'; echo refused >&2; exit 3"#),
        DEADLINE_MS,
    )
    .unwrap_err();
    assert_eq!(error.transport, None);
    assert_eq!(error.body.trim(), r#"{"error":"invalid_grant"}"#);
    assert_eq!(error.causes, ["refused", "refresh command failed (exit 3)"]);

    let error = call(&command_credential("kill -9 $$"), DEADLINE_MS).unwrap_err();
    assert_eq!(
        error.causes[1],
        "refresh command failed (killed by a signal)"
    );

    let error = call(&command_credential("echo not-json"), DEADLINE_MS).unwrap_err();
    assert_eq!(error.transport, Some(Transport::MalformedResponse));

    let mut missing = Credential::oauth("acme", "at-0", "rt-0", 0);
    EndpointSettings::Command(vec!["/nonexistent/refresh".into()]).install(&mut missing);
    let error = call(&missing, DEADLINE_MS).unwrap_err();
    assert_eq!(error.transport, Some(Transport::ConnectRefused));
    assert!(error.causes[0].contains("could not start"), "{error:?}");
}

/// Whether a process runs (a zombie, killed and waiting for its reaper,
/// does not).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Waits up to five seconds for `pid` to stop running.
fn stops(pid: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while running(pid) {
        if Instant::now() > until {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Runs a refresh command that starts `child` in the background, records
/// its pid, then runs `then`, with a 500 ms deadline. The call must end at
/// the deadline as an unknown outcome (a child may still be writing its
/// output, G1) without waiting the child's minute, and the child must be
/// gone (G8: nothing left in flight). Returns the error for more checks.
fn ends_at_the_deadline_with_its_child_killed(child: &str, then: &str) -> EndpointError {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let script = format!("{child} & echo $! > '{}'; {then}", pid_file.display());
    let start = Instant::now();
    let error = call(&command_credential(&script), 500).unwrap_err();
    assert_eq!(
        error.transport,
        Some(Transport::TimedOutAfterSend),
        "{error:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "G8: the call waited for the command's child"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(stops(pid.trim()), "G8: the command's child still runs");
    error
}

/// A command that overruns its deadline is killed, with every process it
/// started. The shell's `sleep` is its child and holds the output pipes:
/// killing the shell alone would leave the call waiting a minute for it.
#[test]
fn g8_an_overrunning_refresh_command_is_killed_with_its_children_at_its_deadline() {
    let error = ends_at_the_deadline_with_its_child_killed("sleep 60", "wait");
    assert!(error.causes[0].contains("500 ms deadline"), "{error:?}");
}

/// A command that prints and exits but leaves a process holding its
/// output open ends at the deadline: its output may not be all there.
#[test]
fn g8_a_refresh_command_that_leaves_a_child_holding_its_output_ends_at_the_deadline() {
    ends_at_the_deadline_with_its_child_killed("sleep 60", r#"printf '{"access_token":"at-c"}'"#);
}

/// Token responses parse strictly: blank tokens and negative lifetimes are
/// refused, a number lifetime is seconds.
#[test]
fn g1_token_responses_refuse_blank_tokens_and_negative_lifetimes() {
    use rotor_fs::endpoint::parse_grant;
    assert!(parse_grant(r#"{"access_token":"  "}"#).is_err());
    assert!(parse_grant(r#"{"access_token":"a","refresh_token":" "}"#).is_err());
    assert!(parse_grant(r#"{"access_token":"a","refresh_token":5}"#).is_err());
    assert!(parse_grant(r#"{"access_token":"a","expires_in":-5}"#).is_err());
    assert!(parse_grant(r#"{"access_token":"a","expires_in":true}"#).is_err());
    assert!(parse_grant(r#"[1]"#).is_err());
    let grant = parse_grant(r#"{"access_token":"a","refresh_token":null,"expires_in":0}"#).unwrap();
    assert_eq!((grant.refresh, grant.expires_in_ms), (None, Some(0)));
    let grant = parse_grant(r#"{"access_token":"a","expires_in":7}"#).unwrap();
    assert_eq!(grant.expires_in_ms, Some(7_000));
}

/// Each client error is mapped to what the kernel must know, sent or not:
/// the failures before a connection (DNS, connect, TLS set-up, an
/// unreachable network) are provably not sent (G7); a timeout or a broken
/// connection after it may have been (G1). Built directly, since a loopback
/// server cannot produce a DNS timeout or an unreachable network on demand.
#[test]
fn g1_g7_every_client_error_says_whether_the_request_was_sent() {
    use rotor_fs::endpoint::map_ureq_error;
    use std::io::{Error as IoError, ErrorKind as K};
    use ureq::{Error as U, Timeout as T};
    let io = |kind: K| U::Io(IoError::from(kind));
    let tls_record = IoError::new(
        K::InvalidData,
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
    );
    let cases = [
        (U::Timeout(T::Resolve), Transport::DnsFailure),
        (U::Timeout(T::Connect), Transport::ConnectRefused),
        (U::Timeout(T::Global), Transport::TimedOutAfterSend),
        (U::Timeout(T::SendBody), Transport::TimedOutAfterSend),
        (U::HostNotFound, Transport::DnsFailure),
        (U::ConnectionFailed, Transport::ConnectRefused),
        (U::BadUri("x".into()), Transport::ConnectRefused),
        (U::InvalidProxyUrl, Transport::ConnectRefused),
        (U::Tls("no roots"), Transport::TlsHandshake),
        (
            U::Rustls(rustls::Error::NoCertificatesPresented),
            Transport::TlsHandshake,
        ),
        (io(K::ConnectionRefused), Transport::ConnectRefused),
        (io(K::AddrNotAvailable), Transport::ConnectRefused),
        (io(K::NetworkUnreachable), Transport::ConnectRefused),
        (io(K::HostUnreachable), Transport::ConnectRefused),
        (io(K::TimedOut), Transport::TimedOutAfterSend),
        (io(K::WouldBlock), Transport::TimedOutAfterSend),
        (U::Io(tls_record), Transport::TlsHandshake),
        (io(K::ConnectionReset), Transport::ConnectionReset),
        (io(K::UnexpectedEof), Transport::ConnectionReset),
        (U::BodyExceedsLimit(1), Transport::MalformedResponse),
        (U::TooManyRedirects, Transport::ConnectionReset),
    ];
    for (error, expected) in cases {
        let shown = format!("{error:?}");
        let mapped = map_ureq_error(error);
        assert_eq!(mapped.transport, Some(expected), "{shown}");
        assert_eq!(
            mapped.causes[0].contains("nothing was sent"),
            not_sent(&mapped),
            "{shown}: {mapped:?}"
        );
    }
}

/// A command that exits and leaves a process holding its stdout only (its
/// stderr closed) ends the same way: any one pipe left open means the
/// output may not be all there.
#[test]
fn g8_a_child_holding_only_stdout_also_ends_at_the_deadline() {
    ends_at_the_deadline_with_its_child_killed(
        "sleep 60 2>/dev/null",
        r#"exec 2>&-; printf '{"access_token":"at-c"}'"#,
    );
}
