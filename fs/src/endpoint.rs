//! The token endpoint: the RFC 6749 §6 `refresh_token` grant over HTTP(S),
//! or an external refresh command, each with a hard deadline.
//!
//! Errors are reported to the kernel as [`EndpointError`]s with a precise
//! [`Transport`] so that `classify` can tell *provably not sent* (connection
//! refused, DNS failure, TLS handshake failure, a connect timeout: the
//! request never left) from *unknown outcome* (a timeout, reset or broken
//! reply after the request was written). Getting this wrong in the
//! not-sent direction would let the kernel present a consumed token again,
//! so every doubtful case is reported as unknown.
//!
//! Both calls return only when nothing is in flight any more (G8): the HTTP
//! client's deadline closes the socket; a command that overruns is killed
//! and reaped before returning.
//!
//! **Refresh command protocol.** The command (argv, no shell) gets the
//! credential as JSON on stdin (including the refresh token and the
//! `endpoint` settings) and must print an RFC 6749 §5.1 token response on
//! stdout: `{"access_token": "…", "refresh_token": "…", "expires_in": 3600}`
//! and exit 0. Exit 75 (`EX_TEMPFAIL`) means "nothing was sent, try again";
//! any other failure is an unknown outcome unless its output says the token
//! was refused (`invalid_grant`, reuse messages), which the kernel
//! recognises.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{Credential, EndpointError, Secret, TokenGrant, Transport};
use serde_json::Value;

use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, DefaultConnector, Transport as UreqTransport,
};

use crate::failpoint;
use crate::settings::{AuthMethod, EndpointSettings, HttpSettings};

/// Largest response body read, in bytes.
pub const BODY_BYTES_MAX: u64 = 1 << 20;

/// Exit code of a refresh command that provably sent nothing (`EX_TEMPFAIL`).
pub const COMMAND_NOT_SENT_EXIT: i32 = 75;

/// The fs host's token endpoint: reads the settings each credential carries.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsEndpoint;

impl TokenEndpoint for FsEndpoint {
    fn refresh(
        &mut self,
        credential: &Credential,
        deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        failpoint::hit("before-call");
        let start = Instant::now();
        let result = match EndpointSettings::of(credential) {
            Err(message) => Err(EndpointError::transport(Transport::ConnectRefused)
                .with_cause(format!("nothing was sent: {message}"))),
            Ok(EndpointSettings::Http(settings)) => match &credential.refresh {
                Some(refresh) => http_refresh(&settings, refresh, deadline_ms),
                None => Err(EndpointError::transport(Transport::ConnectRefused)
                    .with_cause("nothing was sent: the credential has no refresh token")),
            },
            Ok(EndpointSettings::Command(argv)) => command_refresh(&argv, credential, deadline_ms),
        };
        tracing::info!(
            elapsed_ms = start.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            error = result.as_ref().err().map(|e| e.to_string()),
            "token endpoint call"
        );
        failpoint::hit("after-call");
        result
    }
}

/// Percent-encodes for `application/x-www-form-urlencoded`.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The form body and Authorization header of a refresh request.
pub fn request_parts(settings: &HttpSettings, refresh: &Secret) -> (String, Option<String>) {
    let mut form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh.expose().to_owned()),
    ];
    if let Some(scope) = &settings.scope {
        form.push(("scope", scope.clone()));
    }
    let secret = settings.client_secret.clone().unwrap_or_default();
    let authorization = match settings.auth_method {
        AuthMethod::ClientSecretBasic => {
            // RFC 6749 §2.3.1: both parts form-encoded, then base64.
            let pair = format!(
                "{}:{}",
                form_encode(&settings.client_id),
                form_encode(&secret)
            );
            Some(format!("Basic {}", base64(pair.as_bytes())))
        }
        AuthMethod::ClientSecretPost => {
            form.push(("client_id", settings.client_id.clone()));
            form.push(("client_secret", secret));
            None
        }
        AuthMethod::None => {
            form.push(("client_id", settings.client_id.clone()));
            None
        }
    };
    let body = form
        .iter()
        .map(|(key, value)| format!("{key}={}", form_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    (body, authorization)
}

fn not_sent(transport: Transport, cause: String) -> EndpointError {
    EndpointError::transport(transport).with_cause(cause)
}

fn http_refresh(
    settings: &HttpSettings,
    refresh: &Secret,
    deadline_ms: u64,
) -> Result<TokenGrant, EndpointError> {
    let deadline = Some(Duration::from_millis(deadline_ms.max(1)));
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca_file) = &settings.ca_file {
        let pem = std::fs::read(ca_file).map_err(|error| {
            not_sent(
                Transport::TlsHandshake,
                format!("nothing was sent: reading ca_file {ca_file}: {error}"),
            )
        })?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(deadline)
        .timeout_resolve(deadline)
        .timeout_connect(deadline)
        .user_agent(concat!("rotor/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build())
        .build();
    let connected = ConnectionMade::default();
    let agent = ureq::Agent::with_parts(
        config,
        DefaultConnector::new().chain(connected.clone()),
        DefaultResolver::default(),
    );
    let (body, authorization) = request_parts(settings, refresh);
    let mut request = agent
        .post(&settings.token_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json");
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let mut response = request.send(body.as_bytes()).map_err(|error| {
        let error = map_ureq_error(error);
        if connected.was_made() {
            after_connect(error)
        } else {
            error
        }
    })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(BODY_BYTES_MAX)
        .read_to_string()
        .map_err(|error| after_send(map_ureq_error(error)))?;
    if !(200..300).contains(&status) {
        return Err(EndpointError::http(status, text));
    }
    parse_grant(&text).map_err(|reason| EndpointError {
        status: Some(status),
        body: String::new(),
        causes: vec![format!("malformed success body: {reason}")],
        transport: Some(Transport::MalformedResponse),
    })
}

/// The last link of ureq's connector chain, for one call: it notes that
/// the connection was made. Everything before it (DNS, TCP connect, a
/// proxy tunnel and, for `https`, the whole TLS handshake, which ureq's
/// rustls connector completes before handing the connection on) sends
/// nothing of the request; everything after it may have. An error
/// reported once this is set cannot be "nothing was sent", whatever it
/// looks like: a TLS alert or a bad record from the server after it read
/// the request, an ICMP "host unreachable" on an established connection.
#[derive(Clone, Debug, Default)]
struct ConnectionMade(Arc<AtomicBool>);

impl ConnectionMade {
    fn was_made(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Connector<Box<dyn UreqTransport>> for ConnectionMade {
    type Out = Box<dyn UreqTransport>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<Box<dyn UreqTransport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            self.0.store(true, Ordering::SeqCst);
        }
        Ok(chained)
    }
}

/// Reports a failure met after the request may have left as an unknown
/// outcome (`transport`), never as "nothing was sent" (G1): the kernel
/// would present the spent token again. `map_ureq_error` alone calls any
/// TLS error "handshake failed; nothing was sent", and a few I/O errors
/// (unreachable) "not sent", which is true only before the connection is
/// made.
fn sent_after_all(mut error: EndpointError, transport: Transport, why: &str) -> EndpointError {
    if matches!(
        error.transport,
        None | Some(Transport::ConnectRefused | Transport::DnsFailure | Transport::TlsHandshake)
    ) {
        error.transport = Some(transport);
        error.causes.insert(0, why.to_owned());
    }
    error
}

/// An error met sending the request or reading the response head, after
/// the connection was made ([`ConnectionMade`]): the request may have
/// been sent.
fn after_connect(error: EndpointError) -> EndpointError {
    sent_after_all(
        error,
        Transport::ConnectionReset,
        "the connection was made (TCP and any TLS handshake done) before this failed: \
         the request may have been sent",
    )
}

/// An error met reading the body, after the status line arrived: the
/// request was sent, so whatever broke (a reset, a TLS record the client
/// could not read, a timeout) is an unknown outcome.
fn after_send(error: EndpointError) -> EndpointError {
    sent_after_all(
        error,
        Transport::MalformedResponse,
        "the reply broke after the request was sent (status line received)",
    )
}

fn rustls_handshake_error(error: &std::io::Error) -> Option<String> {
    let inner = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    use rustls::Error as E;
    match inner {
        E::InvalidCertificate(_)
        | E::NoCertificatesPresented
        | E::PeerIncompatible(_)
        | E::InappropriateHandshakeMessage { .. }
        | E::InappropriateMessage { .. }
        | E::InvalidMessage(_)
        | E::UnsupportedNameType
        | E::AlertReceived(_) => Some(inner.to_string()),
        _ => None,
    }
}

/// Maps a ureq error to what the kernel needs to know: was anything sent?
pub fn map_ureq_error(error: ureq::Error) -> EndpointError {
    use std::io::ErrorKind as K;
    use ureq::Error as U;
    use ureq::Timeout as T;
    let text = error.to_string();
    let (transport, cause) = match &error {
        U::Timeout(T::Resolve) => (
            Transport::DnsFailure,
            "DNS lookup timed out; nothing was sent",
        ),
        U::Timeout(T::Connect) => (
            Transport::ConnectRefused,
            "connecting timed out (TCP or TLS setup); nothing was sent",
        ),
        U::Timeout(_) => (
            Transport::TimedOutAfterSend,
            "timed out after the request may have been sent",
        ),
        U::HostNotFound => (Transport::DnsFailure, "host not found; nothing was sent"),
        U::ConnectionFailed => (
            Transport::ConnectRefused,
            "connection failed; nothing was sent",
        ),
        U::BadUri(_) | U::Http(_) | U::InvalidProxyUrl => (
            Transport::ConnectRefused,
            "bad request settings; nothing was sent",
        ),
        U::Tls(_) | U::Pem(_) | U::Rustls(_) => (
            Transport::TlsHandshake,
            "TLS setup failed; nothing was sent",
        ),
        U::Io(io) => match io.kind() {
            K::ConnectionRefused => (
                Transport::ConnectRefused,
                "connection refused; nothing was sent",
            ),
            K::AddrNotAvailable | K::NetworkUnreachable | K::HostUnreachable => (
                Transport::ConnectRefused,
                "network unreachable; nothing was sent",
            ),
            K::TimedOut | K::WouldBlock => (
                Transport::TimedOutAfterSend,
                "timed out after the request may have been sent",
            ),
            _ if rustls_handshake_error(io).is_some() => (
                Transport::TlsHandshake,
                "TLS handshake failed; nothing was sent",
            ),
            _ => (
                Transport::ConnectionReset,
                "connection broken; the request may have been sent",
            ),
        },
        U::Protocol(_) | U::BodyExceedsLimit(_) => (
            Transport::MalformedResponse,
            "malformed response after the request was sent",
        ),
        _ => (
            Transport::ConnectionReset,
            "request failed; it may have been sent",
        ),
    };
    EndpointError::transport(transport)
        .with_cause(cause.to_owned())
        .with_cause(text)
}

/// Parses an RFC 6749 §5.1 token response.
pub fn parse_grant(text: &str) -> Result<TokenGrant, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let access = object
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or("no access_token")?;
    let refresh = match object.get("refresh_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(Secret::new(s.clone())),
        Some(_) => return Err("refresh_token is not a non-empty string".into()),
    };
    let expires_in_s = match object.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_f64().filter(|f| *f >= 0.0).ok_or("bad expires_in")?),
        Some(Value::String(s)) => Some(s.trim().parse::<f64>().map_err(|_| "bad expires_in")?),
        Some(_) => return Err("bad expires_in".into()),
    };
    let text_field = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(TokenGrant {
        access: Secret::new(access),
        refresh,
        expires_in_ms: expires_in_s.map(|s| (s.min(1e12) * 1000.0) as u64),
        account_id: text_field("account_id").map(Into::into),
        email: text_field("email").map(Into::into),
    })
}

fn command_refresh(
    argv: &[String],
    credential: &Credential,
    deadline_ms: u64,
) -> Result<TokenGrant, EndpointError> {
    let start = Instant::now();
    let deadline = start + Duration::from_millis(deadline_ms);
    // Its own process group, so that at the deadline the command and every
    // process it started (a shell script's `curl`) are killed together: a
    // child left running would hold the output pipes open, and the call
    // would wait for it past its deadline (G8).
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            not_sent(
                Transport::ConnectRefused,
                format!(
                    "nothing was sent: refresh command {:?} could not start: {error}",
                    argv[0]
                ),
            )
        })?;
    // The credential goes in on stdin (never on argv, which others can read).
    let input = serde_json::to_vec(credential).unwrap_or_default();
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(&input);
        }
    });
    let stdout = read_pipe(child.stdout.take());
    let stderr = read_pipe(child.stderr.take());
    let mut status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    // The command's output ends when every process holding its pipes has
    // exited; one it left behind is waited for until the deadline only.
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let stdout = stdout.recv_timeout(remaining()).ok();
    let stderr = stderr.recv_timeout(remaining()).ok();
    if status.is_none() || stdout.is_none() || stderr.is_none() {
        kill_group(&mut child);
        // Killed, its pipes close; a process that left the group
        // (`setsid`) and keeps them open is not waited for: the outcome is
        // unknown, as for a command killed at its deadline.
        status = None;
    }
    let _ = writer.join();
    let stdout = stdout.unwrap_or_default();
    let stderr = stderr.unwrap_or_default();
    let Some(status) = status else {
        return Err(
            EndpointError::transport(Transport::TimedOutAfterSend).with_cause(format!(
                "refresh command killed at its {deadline_ms} ms deadline"
            )),
        );
    };
    match status.code() {
        Some(0) => parse_grant(&stdout).map_err(|reason| {
            EndpointError::transport(Transport::MalformedResponse).with_cause(format!(
                "refresh command printed no token response: {reason}"
            ))
        }),
        Some(COMMAND_NOT_SENT_EXIT) => Err(not_sent(
            Transport::ConnectRefused,
            format!(
                "refresh command reported nothing was sent (exit 75): {}",
                stderr.trim()
            ),
        )),
        code => Err(EndpointError {
            status: None,
            body: stdout,
            causes: vec![
                stderr.trim().to_owned(),
                format!(
                    "refresh command failed ({})",
                    match code {
                        Some(code) => format!("exit {code}"),
                        None => "killed by a signal".to_owned(),
                    }
                ),
            ],
            transport: None,
        }),
    }
}

/// Reads a child's pipe to its end (at most [`BODY_BYTES_MAX`]) on a thread;
/// the text arrives on the returned channel.
fn read_pipe(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(BODY_BYTES_MAX).read_to_end(&mut bytes);
        }
        let _ = sender.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receiver
}

/// Kills the refresh command's process group (the command and what it
/// started) and reaps the command.
fn kill_group(child: &mut Child) {
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill has no memory preconditions; a negative pid names
        // the process group the command leads (`process_group(0)`).
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_form_encoding_match_the_rfcs() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(form_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn request_parts_per_auth_method() {
        let mut settings = HttpSettings {
            token_url: "http://x/token".into(),
            client_id: "id:1".into(),
            client_secret: Some("s&t".into()),
            auth_method: AuthMethod::ClientSecretBasic,
            scope: None,
            ca_file: None,
        };
        let refresh = Secret::new("r+1");
        let (body, auth) = request_parts(&settings, &refresh);
        assert_eq!(body, "grant_type=refresh_token&refresh_token=r%2B1");
        assert_eq!(auth.unwrap(), format!("Basic {}", base64(b"id%3A1:s%26t")));
        settings.auth_method = AuthMethod::ClientSecretPost;
        let (body, auth) = request_parts(&settings, &refresh);
        assert!(auth.is_none());
        assert!(
            body.ends_with("&client_id=id%3A1&client_secret=s%26t"),
            "{body}"
        );
        settings.auth_method = AuthMethod::None;
        let (body, _) = request_parts(&settings, &refresh);
        assert!(
            body.ends_with("&client_id=id%3A1") && !body.contains("secret"),
            "{body}"
        );
    }

    /// A body that breaks after the status line is never "not sent" (G1),
    /// whatever the client error says; an unknown outcome stays as it is.
    #[test]
    fn g1_a_broken_body_is_an_unknown_outcome() {
        for claimed in [
            Transport::ConnectRefused,
            Transport::DnsFailure,
            Transport::TlsHandshake,
        ] {
            let error = after_send(
                EndpointError::transport(claimed)
                    .with_cause("TLS handshake failed; nothing was sent"),
            );
            assert_eq!(
                error.transport,
                Some(Transport::MalformedResponse),
                "{claimed}"
            );
            assert!(
                error.causes[0].contains("after the request was sent"),
                "{error:?}"
            );
        }
        let error = after_send(EndpointError::default());
        assert_eq!(error.transport, Some(Transport::MalformedResponse));
        for unknown in [
            Transport::TimedOutAfterSend,
            Transport::ConnectionReset,
            Transport::MalformedResponse,
        ] {
            let error = EndpointError::transport(unknown).with_cause("kept");
            assert_eq!(after_send(error.clone()), error);
        }
    }

    #[test]
    fn token_responses_parse_strictly() {
        let grant =
            parse_grant(r#"{"access_token":"a","refresh_token":"r","expires_in":"60"}"#).unwrap();
        assert_eq!(grant.access.expose(), "a");
        assert_eq!(grant.refresh.unwrap().expose(), "r");
        assert_eq!(grant.expires_in_ms, Some(60_000));
        assert!(parse_grant(r#"{"refresh_token":"r"}"#).is_err());
        assert!(parse_grant("<html>").is_err());
        assert_eq!(
            parse_grant(r#"{"access_token":"a"}"#).unwrap().refresh,
            None
        );
    }
}
