//! A loopback OAuth token endpoint with a fixed latency: strict rotation
//! (each refresh token is valid once; a reused one gets `invalid_grant`),
//! and a count of every request, so a run reports its endpoint calls.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    /// Refresh tokens that may still be exchanged.
    valid: HashSet<String>,
    /// Requests received, any outcome.
    received: u64,
    /// invalid_grant answers.
    reused: u64,
    /// The access token of the last exchange.
    last_access: Option<String>,
    next: u64,
}

/// The endpoint. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct TokenServer {
    state: Arc<Mutex<State>>,
    latency: Duration,
    /// `http://127.0.0.1:<port>/token`.
    pub url: String,
}

/// What the server saw since a [`TokenServer::counters`] snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests received.
    pub received: u64,
    /// Requests answered `invalid_grant` (a refresh token presented twice).
    pub reused: u64,
}

impl TokenServer {
    /// Listens on an ephemeral loopback port; every answer waits `latency`.
    pub fn start(latency: Duration) -> std::io::Result<TokenServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/token", listener.local_addr()?);
        let server = TokenServer {
            state: Arc::default(),
            latency,
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
        Ok(server)
    }

    /// Makes `refresh` exchangeable once.
    pub fn accept(&self, refresh: &str) {
        self.lock().valid.insert(refresh.to_owned());
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        let state = self.lock();
        Counters {
            received: state.received,
            reused: state.reused,
        }
    }

    /// The access token issued by the last exchange.
    pub fn last_access(&self) -> Option<String> {
        self.lock().last_access.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body);
        let refresh = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("refresh_token="))
            .unwrap_or_default()
            .to_owned();
        let (status, answer) = {
            let mut state = self.lock();
            state.received += 1;
            if state.valid.remove(&refresh) {
                state.next += 1;
                let n = state.next;
                let access = format!("at-{n}");
                state.valid.insert(format!("rt-{n}"));
                state.last_access = Some(access.clone());
                let answer = format!(
                    r#"{{"access_token":"{access}","refresh_token":"rt-{n}","expires_in":3600,"token_type":"Bearer"}}"#
                );
                ("200 OK", answer)
            } else {
                state.reused += 1;
                (
                    "400 Bad Request",
                    r#"{"error":"invalid_grant","error_description":"refresh token already used"}"#
                        .to_owned(),
                )
            }
        };
        std::thread::sleep(self.latency);
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let mut stream = stream;
        stream.write_all(response.as_bytes())?;
        stream.flush()
    }
}
