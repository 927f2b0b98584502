//! Endpoint error classes (SPEC §7, guarantee G7: no silent loss of a
//! rotation).
//!
//! When a refresh call fails, the kernel must know whether the provider may
//! have rotated the token anyway, because that decides whether the in-doubt
//! fence written before the call can be cleared. [`classify`] sorts an
//! [`EndpointError`] into one of four [`ErrorClass`]es, each with one
//! consequence:
//!
//! | class | meaning | the kernel then |
//! | --- | --- | --- |
//! | [`ErrorClass::Reuse`] | the refresh token is dead (reused, expired, revoked) | adopts a newer allowed credential if one exists, else marks `needs_reauth` and fails `NeedsReauth` |
//! | [`ErrorClass::NotSent`] | the request provably never reached the server | clears the fence and may retry once (`transient_retries_max`) |
//! | [`ErrorClass::Rejected`] | the server answered and did not rotate | clears the fence and fails |
//! | [`ErrorClass::Unknown`] | the server may have rotated | keeps the fence and fails `InDoubt` |
//!
//! Reuse is checked first, whatever the status or transport: a dead token
//! stays dead. Anything not recognised is `Unknown`, the safe default: keeping
//! the fence can cost a re-login, clearing it wrongly can spend a refresh
//! token twice (G1).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde_json::Value;

/// How a request failed below HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The connection was refused: nothing was sent.
    ConnectRefused,
    /// The host name did not resolve: nothing was sent.
    DnsFailure,
    /// The TLS handshake failed: no request bytes were sent.
    TlsHandshake,
    /// The deadline passed after the request was written.
    TimedOutAfterSend,
    /// The connection broke after it was established.
    ConnectionReset,
    /// A response arrived but could not be read as HTTP.
    MalformedResponse,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::ConnectRefused => "connection refused",
            Transport::DnsFailure => "DNS lookup failed",
            Transport::TlsHandshake => "TLS handshake failed",
            Transport::TimedOutAfterSend => "timed out after the request was sent",
            Transport::ConnectionReset => "connection reset",
            Transport::MalformedResponse => "malformed response",
        })
    }
}

/// A failed refresh call, as the host observed it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EndpointError {
    /// HTTP status, when a response status line was read.
    pub status: Option<u16>,
    /// Response body (possibly empty).
    pub body: String,
    /// Messages of the host's error chain, outermost first.
    pub causes: Vec<String>,
    /// Failure below HTTP, if any.
    pub transport: Option<Transport>,
}

impl EndpointError {
    /// A failure below HTTP.
    pub fn transport(transport: Transport) -> Self {
        EndpointError {
            transport: Some(transport),
            ..EndpointError::default()
        }
    }

    /// An HTTP response the host treats as an error.
    pub fn http(status: u16, body: impl Into<String>) -> Self {
        EndpointError {
            status: Some(status),
            body: body.into(),
            ..EndpointError::default()
        }
    }

    /// Builder: appends one message of the error chain.
    pub fn with_cause(mut self, message: impl Into<String>) -> Self {
        self.causes.push(message.into());
        self
    }
}

/// Characters of the body shown by `Display`.
const BODY_SHOWN_CHARS_MAX: usize = 200;

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = 0;
        let mut separator = |f: &mut fmt::Formatter<'_>| {
            parts += 1;
            if parts > 1 {
                f.write_str(" | ")
            } else {
                Ok(())
            }
        };
        if let Some(status) = self.status {
            separator(f)?;
            write!(f, "HTTP {status}")?;
            if (200..300).contains(&status) && !self.body.is_empty() {
                // A success body may hold fresh tokens: never print it.
                write!(
                    f,
                    " (unreadable success body of {} bytes withheld)",
                    self.body.len()
                )?;
            } else if !self.body.is_empty() {
                let shown: String = self.body.chars().take(BODY_SHOWN_CHARS_MAX).collect();
                let more = if shown.len() < self.body.len() {
                    "…"
                } else {
                    ""
                };
                write!(f, ": {shown}{more}")?;
            }
        }
        for cause in &self.causes {
            separator(f)?;
            f.write_str(cause)?;
        }
        if let Some(transport) = self.transport {
            separator(f)?;
            write!(f, "{transport}")?;
        }
        if parts == 0 {
            f.write_str("endpoint error with no detail")?;
        }
        Ok(())
    }
}

/// What a failed refresh call means for the fence (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The refresh token is dead: adopt a newer credential or `NeedsReauth`.
    Reuse,
    /// Provably never sent: clear the fence; one retry is allowed.
    NotSent,
    /// The server answered and did not rotate: clear the fence, fail.
    Rejected,
    /// The server may have rotated: keep the fence, fail `InDoubt`.
    Unknown,
}

/// Sorts a failed refresh call into its class (SPEC §7).
pub fn classify(error: &EndpointError) -> ErrorClass {
    let body_json = serde_json::from_str::<Value>(&error.body).ok();
    let reuse = is_reuse_message(&error.body)
        || body_json.as_ref().is_some_and(json_has_reuse)
        || error.causes.iter().any(|cause| is_reuse_message(cause));
    if reuse {
        return ErrorClass::Reuse;
    }
    match (error.transport, error.status) {
        (
            Some(Transport::ConnectRefused | Transport::DnsFailure | Transport::TlsHandshake),
            None,
        ) => ErrorClass::NotSent,
        // A status line was read, so a "not sent" transport claim contradicts
        // itself; so do the after-send failures: the outcome is unknown.
        (Some(_), _) => ErrorClass::Unknown,
        (None, Some(400..=499)) => ErrorClass::Rejected,
        (None, Some(500..=599)) if body_json.as_ref().is_some_and(is_oauth_error_body) => {
            ErrorClass::Rejected
        }
        _ => ErrorClass::Unknown,
    }
}

/// An RFC 6749 §5.2 error response: an object with a non-blank string `error`.
fn is_oauth_error_body(body: &Value) -> bool {
    body.get("error")
        .and_then(Value::as_str)
        .is_some_and(|code| !code.trim().is_empty())
}

/// True when any string inside a JSON document is a reuse message (catches
/// markers hidden by JSON escapes such as `invalid\u005fgrant`).
fn json_has_reuse(value: &Value) -> bool {
    match value {
        Value::String(text) => is_reuse_message(text),
        Value::Array(items) => items.iter().any(json_has_reuse),
        Value::Object(fields) => fields.values().any(json_has_reuse),
        _ => false,
    }
}

/// Markers matched anywhere, as the seed system did (so also inside longer
/// words: a provider's own prefixes and suffixes do not hide them).
const REUSE_SUBSTRINGS: [&str; 5] = [
    "refresh_token_reused",
    "refresh_token_expired",
    "refresh_token_invalidated",
    "refresh token has already been used",
    "already been used to generate a new access token",
];

/// Matched only as a whole token, so that `invalid_grant_type` is not reuse.
const REUSE_TOKEN: &str = "invalid_grant";

/// True when `text`, compared case-insensitively, says the refresh token is
/// dead: `refresh_token_reused`, `refresh_token_expired`,
/// `refresh_token_invalidated`, "refresh token has already been used" or
/// "already been used to generate a new access token" anywhere in it, or
/// `invalid_grant` as a whole token (so `invalid_grant_type` does not count).
pub fn is_reuse_message(text: &str) -> bool {
    let lower = text.to_lowercase();
    REUSE_SUBSTRINGS.iter().any(|marker| lower.contains(marker))
        || lower.match_indices(REUSE_TOKEN).any(|(start, token)| {
            let before = lower[..start].chars().next_back();
            let after = lower[start + token.len()..].chars().next();
            !before.is_some_and(is_token_char) && !after.is_some_and(is_token_char)
        })
}

fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn class_of_message(message: &str) -> ErrorClass {
        classify(&EndpointError::default().with_cause(message))
    }

    #[test]
    fn g7_seed_positives_are_reuse() {
        let positives = [
            "refresh_token_reused",
            "REFRESH_TOKEN_REUSED",
            "Refresh_Token_Reused",
            "Your refresh token has already been used to generate a new access token.",
            "The refresh token has already been used to generate a new access token. Please log in again.",
            r#"401 {"error":{"message":"Your refresh token has already been used","type":"invalid_request_error","param":null,"code":"refresh_token_reused"}}"#,
            "OAuth token refresh failed for openai-codex: refresh_token_reused (status 401)",
        ];
        for message in positives {
            assert!(is_reuse_message(message), "G7: {message}");
            assert_eq!(
                class_of_message(message),
                ErrorClass::Reuse,
                "G7: {message}"
            );
        }
    }

    #[test]
    fn g7_marker_in_a_cause_chain_wins_over_transport_and_status() {
        let chained = EndpointError::transport(Transport::ConnectionReset)
            .with_cause("refresh failed")
            .with_cause("")
            .with_cause("upstream said: refresh_token_reused");
        assert_eq!(classify(&chained), ErrorClass::Reuse);
        let server_error = EndpointError::http(502, "").with_cause("invalid_grant");
        assert_eq!(classify(&server_error), ErrorClass::Reuse);
        let not_sent =
            EndpointError::transport(Transport::DnsFailure).with_cause("refresh_token_expired");
        assert_eq!(classify(&not_sent), ErrorClass::Reuse);
    }

    #[test]
    fn g7_rfc6749_and_other_reuse_codes() {
        let bodies = [
            r#"{"error":"invalid_grant","error_description":"Refresh token reuse detected"}"#,
            r#"{"error":"INVALID_GRANT"}"#,
            r#"{"error":{"code":"refresh_token_reused"}}"#,
            r#"{"error":"invalid\u005fgrant"}"#,
            "refresh_token_expired",
            "token refresh_token_invalidated by admin",
            "invalid_grant",
            "error=invalid_grant&error_description=x",
        ];
        for body in bodies {
            assert_eq!(
                classify(&EndpointError::http(400, body)),
                ErrorClass::Reuse,
                "G7: {body}"
            );
        }
    }

    #[test]
    fn g7_negatives_are_not_reuse() {
        let negatives = [
            "HTTP 500 Internal Server Error",
            "network timeout",
            "expired or revoked",
            "null",
            "42",
            "{}",
            "",
            "invalid_grant_type",
            "xinvalid_grant",
            "unsupported_grant_type",
            r#"{"error":"invalid_client"}"#,
        ];
        for message in negatives {
            assert!(!is_reuse_message(message), "G7: {message}");
        }
        let server_error =
            EndpointError::http(500, "").with_cause("HTTP 500 Internal Server Error");
        assert_eq!(classify(&server_error), ErrorClass::Unknown);
        assert_eq!(
            classify(&EndpointError::http(400, "invalid_grant_type")),
            ErrorClass::Rejected
        );
    }

    #[test]
    fn g7_transport_classes() {
        for transport in [
            Transport::ConnectRefused,
            Transport::DnsFailure,
            Transport::TlsHandshake,
        ] {
            assert_eq!(
                classify(&EndpointError::transport(transport)),
                ErrorClass::NotSent
            );
            let contradictory = EndpointError {
                status: Some(200),
                ..EndpointError::transport(transport)
            };
            assert_eq!(classify(&contradictory), ErrorClass::Unknown, "{transport}");
        }
        for transport in [
            Transport::TimedOutAfterSend,
            Transport::ConnectionReset,
            Transport::MalformedResponse,
        ] {
            let error = EndpointError::transport(transport).with_cause("network timeout");
            assert_eq!(classify(&error), ErrorClass::Unknown);
        }
    }

    #[test]
    fn g7_http_status_classes() {
        let cases = [
            (401, r#"{"error":"invalid_client"}"#, ErrorClass::Rejected),
            (429, "slow down", ErrorClass::Rejected),
            (400, "", ErrorClass::Rejected),
            (500, "", ErrorClass::Unknown),
            (502, "<html>Bad Gateway</html>", ErrorClass::Unknown),
            (
                503,
                r#"{"error":"temporarily_unavailable"}"#,
                ErrorClass::Rejected,
            ),
            (
                500,
                r#"{"error":"server_error","error_description":"x"}"#,
                ErrorClass::Rejected,
            ),
            (500, r#"{"error":""}"#, ErrorClass::Unknown),
            (
                500,
                r#"{"error":{"code":"server_error"}}"#,
                ErrorClass::Unknown,
            ),
            (500, r#"["error"]"#, ErrorClass::Unknown),
            (200, r#"{"access_token": trunc"#, ErrorClass::Unknown),
            (302, "", ErrorClass::Unknown),
            (600, r#"{"error":"x"}"#, ErrorClass::Unknown),
        ];
        for (status, body, class) in cases {
            assert_eq!(
                classify(&EndpointError::http(status, body)),
                class,
                "G7: {status} {body}"
            );
        }
        assert_eq!(classify(&EndpointError::default()), ErrorClass::Unknown);
    }

    #[test]
    fn display_is_short_and_never_prints_a_success_body() {
        let long = EndpointError::http(400, "x".repeat(1_000))
            .with_cause("a")
            .with_cause("b");
        let text = long.to_string();
        assert!(
            text.starts_with("HTTP 400: xxx") && text.ends_with("… | a | b"),
            "{text}"
        );
        assert!(text.chars().count() < 220, "{text}");
        let success = EndpointError::http(200, r#"{"access_token":"at-secret""#);
        assert!(!success.to_string().contains("at-secret"), "{success}");
        let transport = EndpointError::transport(Transport::ConnectRefused).with_cause("dial tcp");
        assert_eq!(transport.to_string(), "dial tcp | connection refused");
        assert_eq!(
            EndpointError::default().to_string(),
            "endpoint error with no detail"
        );
    }

    // ---- Seeded fuzz (G7), after the seed system's two suites ----

    const SEED: u64 = 67_876; // the seed PR's number
    const ITERATIONS: usize = 1_000;

    fn junk(rng: &mut ChaCha8Rng, length_max: usize) -> String {
        let length = rng.random_range(0..=length_max);
        (0..length)
            .map(|_| char::from(rng.random_range(b' '..=b'~')))
            .collect()
    }

    fn random_case(rng: &mut ChaCha8Rng, marker: &str) -> String {
        let flip = |c: char| {
            if rng.random_bool(0.5) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        };
        marker.chars().map(flip).collect()
    }

    #[test]
    fn g7_fuzz_markers_in_random_case_between_junk_are_reuse() {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        for marker in REUSE_SUBSTRINGS.iter().chain([&REUSE_TOKEN]) {
            for iteration in 0..ITERATIONS {
                let cased = random_case(&mut rng, marker);
                let (mut left, mut right) = (junk(&mut rng, 64), junk(&mut rng, 64));
                if *marker == REUSE_TOKEN {
                    // A whole-token marker needs a non-word neighbour on each side.
                    left.push(' ');
                    right.insert(0, '"');
                }
                let message = format!("{left}{cased}{right}");
                let seen = (
                    is_reuse_message(&message),
                    classify(&EndpointError::http(500, message.clone())),
                    class_of_message(&message),
                );
                assert_eq!(
                    seen,
                    (true, ErrorClass::Reuse, ErrorClass::Reuse),
                    "G7 fuzz: seed {SEED:#x}, marker {marker:?}, iteration {iteration}: {message:?}"
                );
            }
        }
    }

    #[test]
    fn g7_fuzz_marker_free_junk_is_never_reuse() {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ 1);
        for iteration in 0..ITERATIONS {
            let message = junk(&mut rng, 32);
            assert!(
                !is_reuse_message(&message) && class_of_message(&message) != ErrorClass::Reuse,
                "G7 fuzz false positive: seed {SEED:#x}, iteration {iteration}: {message:?}"
            );
        }
    }
}
