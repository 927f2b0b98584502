//! The HTTPS endpoint when TLS breaks, against an in-process rustls server
//! on loopback with throwaway certificates (`support/pki.rs`). The one
//! question each test asks is the endpoint's: was anything sent?
//!
//! - A certificate the client does not trust fails the handshake before a
//!   byte of the request leaves: *not sent* (G1 allows the retry; anything
//!   else would keep a fence for nothing, G7), and the server sees nothing.
//! - A record the client cannot read, arriving **after** the handshake (the
//!   server has read the request) is an *unknown outcome*, whether it comes
//!   before the status line or in the body. rustls reports both as the same
//!   kind of error as a handshake failure (`InvalidMessage`); calling them
//!   "handshake failed; nothing was sent" would let the kernel present the
//!   spent token again (G1). The endpoint tells them apart by where the call
//!   was: the connector chain's last link notes that the connection (and
//!   its handshake) was made, and the status line marks the body.
//! - A trusted `ca_file` gets the grant: the PEM roots are really used.
//!
//! These run in the fs host's fast mutants command (docs/mutants.md).

#[path = "support/pki.rs"]
mod pki;

use pki::{pki, Pki};

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use rotor_fs::settings::{AuthMethod, EndpointSettings, HttpSettings};
use rotor_fs::FsEndpoint;
use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{Credential, EndpointError, TokenGrant, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

const DEADLINE_MS: u64 = 10_000;

/// A TLS record of a content type that does not exist (0x63): whoever reads
/// it fails with rustls `InvalidMessage`, the error a broken handshake
/// gives too.
const BAD_RECORD: &[u8] = &[0x63, 0x03, 0x03, 0x00, 0x01, 0x00];

fn server_config(cert: &Path, key: &Path) -> Arc<ServerConfig> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&std::fs::read(cert).unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&std::fs::read(key).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// Writes whatever TLS records the connection has queued (session tickets,
/// application data).
fn flush_tls(conn: &mut ServerConnection, tcp: &mut TcpStream) {
    while conn.wants_write() {
        conn.write_tls(tcp).unwrap();
    }
    tcp.flush().unwrap();
}

/// Serves one TLS connection on 127.0.0.1: completes the handshake, reads
/// the request (head and `Content-Length` body), hands its text over, then
/// lets `answer` reply. A handshake that fails hands nothing over.
fn serve_once(
    pki: &Pki,
    answer: impl FnOnce(&mut ServerConnection, &mut TcpStream) + Send + 'static,
) -> (String, mpsc::Receiver<String>) {
    let config = server_config(&pki.cert, &pki.key);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/token", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut conn = ServerConnection::new(config).unwrap();
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                return;
            }
        }
        let Some(request) = read_request(&mut conn, &mut tcp) else {
            return;
        };
        let _ = tx.send(request);
        answer(&mut conn, &mut tcp);
        // Keep the socket until the client hangs up, so that what was
        // written reaches it before any reset.
        let _ = io::copy(&mut tcp, &mut io::sink());
    });
    (url, rx)
}

fn read_request(conn: &mut ServerConnection, tcp: &mut TcpStream) -> Option<String> {
    let mut stream = rustls::Stream::new(conn, tcp);
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|value| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return Some(text);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Replies with `reply` inside TLS, then (when `then_bad_record`) a record
/// no client can read.
fn reply(
    reply: String,
    then_bad_record: bool,
) -> impl FnOnce(&mut ServerConnection, &mut TcpStream) + Send + 'static {
    move |conn, tcp| {
        conn.writer().write_all(reply.as_bytes()).unwrap();
        if !then_bad_record {
            conn.send_close_notify();
        }
        flush_tls(conn, tcp);
        if then_bad_record {
            // Let the client read what came first (a status line and
            // headers) on its own, so the bad record meets it where the
            // test says: in the body, not in the same read as the head.
            thread::sleep(Duration::from_millis(300));
            tcp.write_all(BAD_RECORD).unwrap();
        }
    }
}

fn credential(url: &str, ca_file: &Path) -> Credential {
    let mut credential = Credential::oauth("acme", "at-0", "rt-tls", 0);
    EndpointSettings::Http(HttpSettings {
        token_url: url.into(),
        client_id: "client-1".into(),
        client_secret: None,
        auth_method: AuthMethod::None,
        scope: None,
        ca_file: Some(ca_file.to_str().unwrap().into()),
    })
    .install(&mut credential);
    credential
}

fn call(credential: &Credential) -> Result<TokenGrant, EndpointError> {
    FsEndpoint.refresh(credential, DEADLINE_MS)
}

/// Whether the kernel may treat the failure as "nothing was sent" (G1).
fn not_sent(error: &EndpointError) -> bool {
    matches!(
        error.transport,
        Some(Transport::ConnectRefused | Transport::DnsFailure | Transport::TlsHandshake)
    )
}

/// A `ca_file` that signed the server's certificate is the trust root: the
/// refresh goes through and the grant comes back (G1: one presentation, one
/// rotation).
#[test]
fn g1_a_trusted_ca_file_gets_the_grant() {
    let pki = pki();
    let body = r#"{"access_token":"at-1","refresh_token":"rt-1","expires_in":60}"#;
    let (url, requests) = serve_once(
        &pki,
        reply(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
            false,
        ),
    );
    let grant = call(&credential(&url, &pki.ca)).unwrap();
    assert_eq!(grant.access.expose(), "at-1");
    assert_eq!(grant.refresh.as_ref().unwrap().expose(), "rt-1");
    let request = requests.recv().unwrap();
    assert!(request.contains("refresh_token=rt-tls"), "{request}");
}

/// A certificate no trusted CA signed fails the handshake: *not sent*, and
/// the server never got a request (G1, G7).
#[test]
fn g1_g7_an_untrusted_certificate_fails_before_anything_is_sent() {
    let pki = pki();
    let (url, requests) = serve_once(&pki, reply(String::new(), false));
    let error = call(&credential(&url, &pki.other_ca)).unwrap_err();
    assert_eq!(error.transport, Some(Transport::TlsHandshake), "{error:?}");
    assert!(
        requests.recv_timeout(Duration::from_secs(5)).is_err(),
        "the server got a request through a handshake the client refused"
    );
}

/// The server read the request, then sent a record the client cannot read,
/// before any status line: the request was sent, so the outcome is unknown,
/// never "TLS handshake failed; nothing was sent" (G1).
#[test]
fn g1_a_bad_record_after_the_request_is_an_unknown_outcome() {
    let pki = pki();
    let (url, requests) = serve_once(&pki, reply(String::new(), true));
    let error = call(&credential(&url, &pki.ca)).unwrap_err();
    let request = requests.recv().unwrap();
    assert!(request.contains("refresh_token=rt-tls"), "{request}");
    assert!(
        !not_sent(&error),
        "G1: the server read the request, yet the endpoint reports nothing sent: {error:?}"
    );
    assert_eq!(
        error.transport,
        Some(Transport::ConnectionReset),
        "{error:?}"
    );
}

/// The status line and part of the body arrived, then a record the client
/// cannot read: the request was sent, the reply is broken (G1).
#[test]
fn g1_a_bad_record_in_the_body_is_an_unknown_outcome() {
    let pki = pki();
    let (url, requests) = serve_once(
        &pki,
        reply(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"access_token\":"
                .to_owned(),
            true,
        ),
    );
    let error = call(&credential(&url, &pki.ca)).unwrap_err();
    requests.recv().unwrap();
    assert!(
        !not_sent(&error),
        "G1: the status line arrived, yet the endpoint reports nothing sent: {error:?}"
    );
    assert_eq!(
        error.transport,
        Some(Transport::MalformedResponse),
        "{error:?}"
    );
}
