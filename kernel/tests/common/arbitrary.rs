//! Random kernel inputs from a seeded [`ChaCha8Rng`]: store documents,
//! profile views, grants, endpoint errors, store faults and lock failures.
//!
//! Values are drawn from small pools on purpose (three providers, a handful
//! of tokens, identities and generations, times near "now" and at the
//! extremes) so that random stores often agree or nearly agree with each
//! other and the machine reaches its deep branches, not only the first
//! check.

use rand::seq::IndexedRandom;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use rotor_kernel::{
    Conflict, Credential, CredentialKind, EndpointError, Expect, Fence, Holder, LockFailure,
    MirrorRefusal, ProfileView, Secret, StoreDoc, StoreFault, StoreFaultKind, TokenGrant,
    Transport, WriteOutcome,
};

use super::fixtures::{HOUR_MS, MINUTE_MS, NOW_MS, PROFILE, PROVIDER};

const TOKENS: [&str; 7] = ["t1", "t2", "t3", "t4", "t5", " ", ""];
const ACCOUNTS: [&str; 4] = ["acct-x", "acct-y", "  acct-x ", " "];
const EMAILS: [&str; 3] = ["a@x.io", "A@X.IO ", "b@y.io"];
const TENANTS: [&str; 2] = ["org-1", "org-2"];

fn pick<'a>(rng: &mut ChaCha8Rng, pool: &[&'a str]) -> &'a str {
    pool.choose(rng).expect("pools are not empty")
}

fn maybe<T>(rng: &mut ChaCha8Rng, p: f64, value: impl FnOnce(&mut ChaCha8Rng) -> T) -> Option<T> {
    if rng.random_bool(p) {
        Some(value(rng))
    } else {
        None
    }
}

/// An epoch-ms time: mostly near now, sometimes at the extremes.
pub fn time_ms(rng: &mut ChaCha8Rng) -> i64 {
    match rng.random_range(0..10) {
        0 => i64::MIN,
        1 => i64::MAX,
        2 => 0,
        _ => NOW_MS + rng.random_range(-2 * HOUR_MS..2 * HOUR_MS),
    }
}

/// A generation: mostly small, sometimes at the top of the range.
pub fn generation(rng: &mut ChaCha8Rng) -> u64 {
    if rng.random_bool(0.05) {
        u64::MAX - rng.random_range(0..2)
    } else {
        rng.random_range(0..8)
    }
}

/// A token from the small pool (so stores share tokens often).
pub fn token(rng: &mut ChaCha8Rng) -> Secret {
    Secret::new(format!("rt-{}", pick(rng, &TOKENS)))
}

/// Any credential: every kind, provider, identity and expiry shape.
pub fn credential(rng: &mut ChaCha8Rng) -> Credential {
    let kind = match rng.random_range(0..12) {
        0 => CredentialKind::ApiKey,
        1 => CredentialKind::Token,
        2 => CredentialKind::LoggedOut,
        3 => CredentialKind::Other("cookie".into()),
        _ => CredentialKind::OAuth,
    };
    let provider = match rng.random_range(0..8) {
        0 => "q",
        1 => "",
        _ => PROVIDER,
    };
    let mut credential = Credential::oauth(provider, "", "", 0);
    credential.kind = kind;
    credential.access = maybe(rng, 0.9, |rng| {
        Secret::new(format!("at-{}", pick(rng, &TOKENS)))
    });
    credential.refresh = maybe(rng, 0.9, token);
    credential.expires_at_ms = maybe(rng, 0.9, time_ms);
    credential.account_id = maybe(rng, 0.4, |rng| pick(rng, &ACCOUNTS).to_string()).map(Into::into);
    credential.email = maybe(rng, 0.3, |rng| pick(rng, &EMAILS).to_string()).map(Into::into);
    credential.tenant = maybe(rng, 0.15, |rng| pick(rng, &TENANTS).to_string()).map(Into::into);
    credential.generation = generation(rng);
    credential.needs_reauth = rng.random_bool(0.1);
    if rng.random_bool(0.2) {
        credential.extra.insert("clientId".into(), "c-1".into());
    }
    credential
}

/// Any fence.
pub fn fence(rng: &mut ChaCha8Rng) -> Fence {
    Fence {
        generation: generation(rng),
        refresh_fp: token(rng).fingerprint(),
        holder: Holder {
            pid: rng.random(),
            host: "h".into(),
            agent: pick(rng, &["sub-a", "sub-b", "main"]).into(),
        },
        started_at_ms: time_ms(rng),
        attempt: match rng.random_range(0..6) {
            0 => 1,
            1 => u32::MAX,
            _ => 0,
        },
        rotated: rng.random_ratio(1, 5),
    }
}

/// Any store document, with the profile present most of the time.
pub fn store(rng: &mut ChaCha8Rng) -> StoreDoc {
    let mut doc = StoreDoc::default();
    if rng.random_bool(0.85) {
        doc.profiles.insert(PROFILE.into(), credential(rng));
    }
    if rng.random_bool(0.3) {
        doc.fences.insert(PROFILE.into(), vec![fence(rng)]);
    }
    if rng.random_bool(0.2) {
        doc.profiles.insert("other:profile".into(), credential(rng));
    }
    if rng.random_bool(0.2) {
        doc.state = Some(serde_json::json!({"usageStats": {PROFILE: {"lastUsed": 1}}}));
    }
    doc
}

/// A view of a random store.
pub fn view(rng: &mut ChaCha8Rng) -> ProfileView {
    store(rng).view(PROFILE)
}

/// Any store fault.
pub fn store_fault(rng: &mut ChaCha8Rng) -> StoreFault {
    let kind = *[
        StoreFaultKind::Corrupt,
        StoreFaultKind::Io,
        StoreFaultKind::LockTimeout,
        StoreFaultKind::Unsafe,
    ]
    .choose(rng)
    .expect("not empty");
    StoreFault {
        kind,
        detail: "injected".into(),
    }
}

/// Any write outcome, including ones a well-behaved host would not report
/// for the mutation at hand (the kernel must cope, not panic).
pub fn write_outcome(rng: &mut ChaCha8Rng) -> WriteOutcome {
    match rng.random_range(0..6) {
        0 => WriteOutcome::MirrorRefused(MirrorRefusal::NotNewer {
            main_generation: generation(rng),
        }),
        1 | 2 => WriteOutcome::Conflict(Conflict {
            expected: Expect::of(Some(&credential(rng))),
            found: Expect::of(maybe(rng, 0.7, credential).as_ref()),
        }),
        _ => WriteOutcome::Applied,
    }
}

/// Any lock failure.
pub fn lock_failure(rng: &mut ChaCha8Rng) -> LockFailure {
    LockFailure {
        waited_ms: rng.random(),
        holder: maybe(rng, 0.5, |_| "pid 9".to_string()),
        error: maybe(rng, 0.3, |_| "EDEADLK".to_string()),
    }
}

/// Any grant: blank or missing tokens, absurd lifetimes, other identities.
pub fn grant(rng: &mut ChaCha8Rng) -> TokenGrant {
    TokenGrant {
        access: Secret::new(format!("at-{}", pick(rng, &["n1", "n2", " ", ""]))),
        refresh: maybe(rng, 0.8, |rng| {
            Secret::new(format!("rt-{}", pick(rng, &["n1", "n2", "t1"])))
        }),
        expires_in_ms: match rng.random_range(0..5) {
            0 => None,
            1 => Some(u64::MAX),
            2 => Some(0),
            _ => Some(rng.random_range(0..2 * HOUR_MS as u64)),
        },
        account_id: maybe(rng, 0.2, |rng| pick(rng, &ACCOUNTS).to_string()).map(Into::into),
        email: maybe(rng, 0.1, |rng| pick(rng, &EMAILS).to_string()).map(Into::into),
    }
}

/// Any endpoint error: every transport, status and body shape.
pub fn endpoint_error(rng: &mut ChaCha8Rng) -> EndpointError {
    let bodies = [
        "",
        r#"{"error":"invalid_grant"}"#,
        r#"{"error":"invalid_client"}"#,
        r#"{"error":{"code":"refresh_token_reused"}}"#,
        "<html>bad gateway</html>",
        "refresh token has already been used",
        "{\"error\":",
    ];
    let transports = [
        Transport::ConnectRefused,
        Transport::DnsFailure,
        Transport::TlsHandshake,
        Transport::TimedOutAfterSend,
        Transport::ConnectionReset,
        Transport::MalformedResponse,
    ];
    let mut error = EndpointError {
        status: maybe(rng, 0.6, |rng| {
            *[200, 400, 401, 403, 429, 500, 502, 503]
                .choose(rng)
                .expect("not empty")
        }),
        body: pick(rng, &bodies).to_string(),
        causes: Vec::new(),
        transport: maybe(rng, 0.4, |rng| *transports.choose(rng).expect("not empty")),
    };
    if rng.random_bool(0.2) {
        error.causes.push(
            pick(
                rng,
                &["socket hang up", "INVALID_GRANT: nope", "ECONNREFUSED"],
            )
            .into(),
        );
    }
    error
}

/// A clock step: usually small, sometimes past a margin or a grace window.
pub fn clock_step_ms(rng: &mut ChaCha8Rng) -> i64 {
    match rng.random_range(0..10) {
        0 => 30 * MINUTE_MS,
        1 => -MINUTE_MS,
        _ => rng.random_range(0..5_000),
    }
}
