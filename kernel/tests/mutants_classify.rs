//! Tests added for mutants that survived `cargo mutants` in
//! kernel/src/classify.rs (docs/mutants.md): endpoint error classes
//! (SPEC §7, G7) and the error message a person reads (G10).

use rotor_kernel::{classify, EndpointError, ErrorClass, Transport};

/// A transport failure after a status line was read contradicts itself: the
/// server may have rotated, so the fence stays (G7), even with a 4xx status.
#[test]
fn a_transport_failure_with_a_status_is_unknown_g7() {
    for transport in [
        Transport::TimedOutAfterSend,
        Transport::ConnectionReset,
        Transport::MalformedResponse,
        Transport::ConnectRefused,
    ] {
        let error = EndpointError {
            transport: Some(transport),
            ..EndpointError::http(400, "{\"error\":\"invalid_request\"}")
        };
        assert_eq!(classify(&error), ErrorClass::Unknown, "{transport:?} + 400");
    }
}

/// A reuse marker hidden by a JSON escape inside an array is still reuse
/// (SPEC §7: reuse is checked first; a dead token stays dead).
#[test]
fn an_escaped_reuse_marker_inside_a_json_array_is_reuse() {
    let error = EndpointError::http(400, r#"{"errors":["invalid\u005fgrant"]}"#);
    assert_eq!(classify(&error), ErrorClass::Reuse);
    let nested = EndpointError::http(500, r#"[["refresh\u005ftoken_reused"]]"#);
    assert_eq!(classify(&nested), ErrorClass::Reuse);
}

/// A short error body is shown whole, without the ellipsis that marks a cut
/// (G10: the message says what the provider said).
#[test]
fn a_short_error_body_is_shown_without_an_ellipsis_g10() {
    let error = EndpointError::http(400, "bad request");
    assert_eq!(error.to_string(), "HTTP 400: bad request");
    let long = EndpointError::http(400, "x".repeat(500));
    let shown = long.to_string();
    assert!(shown.ends_with('…'), "{shown}");
    assert_eq!(shown, format!("HTTP 400: {}…", "x".repeat(200)));
}
