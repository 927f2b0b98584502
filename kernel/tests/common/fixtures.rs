//! The vocabulary of the kernel tests: one provider, one profile, a fixed
//! clock, and credentials named by a tag so that transcripts read naturally
//! (`fresh(5)` holds `at-5` and `rt-5` at generation 5).

use rotor_kernel::{
    Credential, EndpointError, Fence, Holder, Policy, PolicyConfig, Request, Role, Secret,
    StoreDoc, StoreFault, StoreFaultKind, TokenGrant, Transport,
};

/// The provider every fixture uses.
pub const PROVIDER: &str = "p";
/// The profile every fixture uses.
pub const PROFILE: &str = "p:default";
/// The fixed "now" of the transcripts, epoch ms.
pub const NOW_MS: i64 = 1_700_000_000_000;
/// One hour, in ms: the lifetime of fresh tokens and grants.
pub const HOUR_MS: i64 = 3_600_000;
/// One minute, in ms.
pub const MINUTE_MS: i64 = 60_000;

/// Who a sub-agent transcript runs as.
pub fn sub_holder() -> Holder {
    Holder {
        pid: 4242,
        host: "box".into(),
        agent: "sub-a".into(),
    }
}

/// Who a main-agent transcript runs as.
pub fn main_holder() -> Holder {
    Holder {
        pid: 1000,
        host: "box".into(),
        agent: "main".into(),
    }
}

/// The request of a transcript for `role`.
pub fn request(role: Role) -> Request {
    Request {
        role,
        provider: PROVIDER.into(),
        profile: PROFILE.into(),
        holder: match role {
            Role::Main => main_holder(),
            Role::Sub => sub_holder(),
        },
    }
}

/// An oauth credential of [`PROVIDER`] holding `at-<tag>` and `rt-<tag>`.
pub fn cred(tag: &str, generation: u64, expires_at_ms: i64) -> Credential {
    Credential::oauth(
        PROVIDER,
        format!("at-{tag}"),
        format!("rt-{tag}"),
        expires_at_ms,
    )
    .with_generation(generation)
}

/// Generation `generation`, usable for another hour.
pub fn fresh(generation: u64) -> Credential {
    cred(&generation.to_string(), generation, NOW_MS + HOUR_MS)
}

/// Generation `generation`, expired a minute ago.
pub fn expired(generation: u64) -> Credential {
    cred(&generation.to_string(), generation, NOW_MS - MINUTE_MS)
}

/// A store holding `credential` under [`PROFILE`].
pub fn store(credential: Credential) -> StoreDoc {
    let mut doc = StoreDoc::default();
    doc.profiles.insert(PROFILE.into(), credential);
    doc
}

/// A store with no entry for [`PROFILE`].
pub fn empty() -> StoreDoc {
    StoreDoc::default()
}

/// `doc` with `fence` recorded for [`PROFILE`].
pub fn fenced(mut doc: StoreDoc, fence: Fence) -> StoreDoc {
    doc.fences.insert(PROFILE.into(), vec![fence]);
    doc
}

/// A fence for `rt-<tag>` at `generation`, left by another agent.
pub fn fence(tag: &str, generation: u64, attempt: u32, started_at_ms: i64) -> Fence {
    Fence {
        generation,
        refresh_fp: Secret::new(format!("rt-{tag}")).fingerprint(),
        holder: Holder {
            pid: 777,
            host: "other-box".into(),
            agent: "sub-b".into(),
        },
        started_at_ms,
        attempt,
    }
}

/// The endpoint's grant of `at-<tag>` / `rt-<tag>`, valid for an hour.
pub fn grant(tag: &str) -> TokenGrant {
    TokenGrant {
        access: Secret::new(format!("at-{tag}")),
        refresh: Some(Secret::new(format!("rt-{tag}"))),
        expires_in_ms: Some(HOUR_MS as u64),
        account_id: None,
        email: None,
    }
}

/// The provider refused a consumed refresh token (class Reuse).
pub fn reuse_error() -> EndpointError {
    EndpointError::http(
        400,
        r#"{"error":"invalid_grant","error_description":"refresh token has already been used"}"#,
    )
}

/// Connection refused: the token was provably not sent (class NotSent).
pub fn not_sent_error() -> EndpointError {
    EndpointError::transport(Transport::ConnectRefused)
}

/// A definite refusal that is not a reuse (class Rejected).
pub fn rejected_error() -> EndpointError {
    EndpointError::http(401, r#"{"error":"invalid_client"}"#)
}

/// The request was written, then the call timed out (class Unknown).
pub fn timeout_after_send_error() -> EndpointError {
    EndpointError::transport(Transport::TimedOutAfterSend)
}

/// A 5xx with no body (class Unknown).
pub fn bad_gateway_error() -> EndpointError {
    EndpointError::http(502, "")
}

/// An I/O fault naming a file.
pub fn io_fault(detail: &str) -> StoreFault {
    StoreFault {
        kind: StoreFaultKind::Io,
        detail: detail.into(),
    }
}

/// The default policy with a provider grace window of `grace_ms`.
pub fn grace_policy(grace_ms: u64) -> Policy {
    Policy::new(PolicyConfig {
        grace_window_ms: Some(grace_ms),
        ..PolicyConfig::default()
    })
    .expect("a grace window alone breaks no policy invariant")
}
