//! `@rotor/node`: rotor's filesystem host for Node.js, as a Node-API addon
//! (napi-rs).
//!
//! A thin layer: every call goes to [`rotor_fs::AsyncRotor`] (the blocking
//! `rotor_fs::Rotor` on tokio's blocking pool), so the kernel decides, the fs
//! host locks and stores, exactly as for `rotor token` and Rust hosts on the
//! same state directory. Nothing here decides anything about tokens: this
//! file converts arguments, results and errors.
//!
//! The JavaScript API (`index.js`, `index.d.ts`) wraps [`NativeRotor`]: each
//! method resolves to `{ value }` or `{ error: { code, message, exitCode } }`
//! and `index.js` turns the latter into a thrown `RotorError` with that
//! `code` (napi-rs gives an async rejection only its fixed status names as
//! `code`).
//!
//! Threads: `#[napi] async fn` runs on napi-rs's tokio runtime, never on the
//! JS thread, and `AsyncRotor` waits for locks and the endpoint on tokio's
//! blocking pool, never on libuv's thread pool (which node's own `fs` and
//! `dns` share): a wait for the refresh lock blocks neither the event loop
//! nor node's I/O. One `NativeRotor` holds one `AsyncRotor`, so every
//! `token` call of that instance shares one in-process single-flight: many
//! agents in one Node process coalesce as threads of one Rust process do.

use std::sync::OnceLock;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use rotor_fs::settings::{AuthMethod, EndpointSettings, HttpSettings};
use rotor_fs::{AsyncRotor, Error as RotorError};
use rotor_kernel::{Credential, Failure, Granted, Outcome, Policy, PolicyConfig, Source};
use serde_json::{json, Value};

/// Policy overrides (milliseconds), as `rotor token`'s flags.
#[napi(object)]
#[derive(Clone, Default)]
pub struct PolicyOptions {
    /// Refresh when the access token expires within this margin (default 300000).
    pub refresh_margin_ms: Option<i64>,
    /// Hard deadline of one token-endpoint call (default 30000).
    pub call_deadline_ms: Option<i64>,
    /// Longest wait for the refresh lock (default 120000).
    pub lock_wait_ms: Option<i64>,
    /// Longest wait for a store's lock (default 10000).
    pub store_lock_wait_ms: Option<i64>,
}

/// What `token` asks for.
#[napi(object)]
pub struct TokenRequest {
    /// The agent asking: "main" (default) or a sub-agent id.
    pub agent: Option<String>,
    /// The profile id, e.g. "acme:default".
    pub profile: String,
    /// The provider id (default: the one stored for the profile).
    pub provider: Option<String>,
}

/// What `logout` removes.
#[napi(object)]
pub struct LogoutRequest {
    /// The agent whose store gets the tombstone ("main" by default).
    pub agent: Option<String>,
    /// The profile id.
    pub profile: String,
    /// The provider id (default: the one stored for the profile).
    pub provider: Option<String>,
}

/// What `login` stores: a token response, endpoint settings and identity.
#[napi(object)]
pub struct LoginRequest {
    /// The agent whose store receives the credential ("main" by default).
    pub agent: Option<String>,
    /// The profile id.
    pub profile: String,
    /// The provider id.
    pub provider: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Expiry of the access token, epoch ms (or `expires_in_s`).
    pub expires_at_ms: Option<i64>,
    /// Lifetime of the access token in seconds from now.
    pub expires_in_s: Option<f64>,
    /// The token endpoint (RFC 6749 §6), http:// or https://.
    pub token_url: Option<String>,
    /// The OAuth client id (with `token_url`).
    pub client_id: Option<String>,
    /// The client secret, if the client has one.
    pub client_secret: Option<String>,
    /// client_secret_basic, client_secret_post or none.
    pub auth_method: Option<String>,
    /// Scope to ask for on refresh.
    pub scope: Option<String>,
    /// A PEM file of trust roots for an https token URL.
    pub ca_file: Option<String>,
    /// A command that refreshes the credential itself (instead of `token_url`).
    pub refresh_command: Option<Vec<String>>,
    /// Identity (the identity gate, G3).
    pub account_id: Option<String>,
    /// Identity (the identity gate, G3).
    pub email: Option<String>,
    /// Identity (the identity gate, G3).
    pub tenant: Option<String>,
}

/// A failure as JavaScript sees it: `code` is the kind `rotor token --json`
/// reports, `exitCode` the exit code `rotor token` would exit with.
struct Failed {
    code: &'static str,
    exit_code: u8,
    message: String,
}

impl Failed {
    fn usage(message: String) -> Failed {
        Failed {
            code: "usage",
            exit_code: 2,
            message,
        }
    }

    fn of(what: &str, error: &RotorError) -> Failed {
        let (exit_code, code) = error_kind(error);
        Failed {
            code,
            exit_code,
            message: format!("{what}: {error}"),
        }
    }

    fn into_value(self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "exitCode": self.exit_code}})
    }
}

/// The kind and exit code of an error: the table `rotor token` uses too
/// (`rotor_fs::kinds`).
fn error_kind(error: &RotorError) -> (u8, &'static str) {
    let kind = error.kind();
    (kind.exit_code, kind.name)
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Cached => "cached",
        Outcome::Adopted { from: Source::Main } => "adopted-main",
        Outcome::Adopted { from: Source::Peer } => "adopted-peer",
        Outcome::Refreshed => "refreshed",
    }
}

fn granted_value(granted: &Granted) -> Value {
    json!({"value": {
        "accessToken": granted.access.expose(),
        "expiresAtMs": granted.expires_at_ms,
        "generation": granted.generation,
        "outcome": outcome_name(granted.outcome),
        "warnings": granted.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
    }})
}

fn ms(name: &str, value: Option<i64>, default: u64) -> std::result::Result<u64, Failed> {
    match value {
        None => Ok(default),
        Some(ms) => u64::try_from(ms)
            .map_err(|_| Failed::usage(format!("bad policy: {name} must be >= 0, got {ms}"))),
    }
}

fn policy(options: &PolicyOptions) -> std::result::Result<Policy, Failed> {
    let defaults = PolicyConfig::default();
    let config = PolicyConfig {
        refresh_margin_ms: ms(
            "refreshMarginMs",
            options.refresh_margin_ms,
            defaults.refresh_margin_ms,
        )?,
        call_deadline_ms: ms(
            "callDeadlineMs",
            options.call_deadline_ms,
            defaults.call_deadline_ms,
        )?,
        refresh_lock_wait_ms_max: ms(
            "lockWaitMs",
            options.lock_wait_ms,
            defaults.refresh_lock_wait_ms_max,
        )?,
        store_lock_wait_ms_max: ms(
            "storeLockWaitMs",
            options.store_lock_wait_ms,
            defaults.store_lock_wait_ms_max,
        )?,
        ..defaults
    };
    Policy::new(config).map_err(|error| Failed::usage(format!("bad policy: {error}")))
}

/// The credential `login` stores (what `rotor login` builds from its flags
/// and token JSON).
fn credential(request: &LoginRequest) -> std::result::Result<Credential, Failed> {
    let expires_at_ms = match (request.expires_at_ms, request.expires_in_s) {
        (Some(at), _) => at,
        (None, Some(seconds)) if seconds.is_finite() => {
            rotor_fs::lock::now_ms().saturating_add((seconds * 1000.0) as i64)
        }
        _ => {
            return Err(Failed::usage(
                "login needs expiresAtMs or expiresInS (a finite number)".into(),
            ))
        }
    };
    let mut credential = Credential::oauth(
        &request.provider,
        request.access_token.as_str(),
        request.refresh_token.as_str(),
        expires_at_ms,
    );
    credential.account_id = request.account_id.clone().map(Into::into);
    credential.email = request.email.clone().map(Into::into);
    credential.tenant = request.tenant.clone().map(Into::into);
    let settings = match (&request.refresh_command, &request.token_url) {
        (Some(_), Some(_)) => {
            return Err(Failed::usage(
                "login takes tokenUrl or refreshCommand, not both".into(),
            ))
        }
        (Some(argv), None) => EndpointSettings::Command(argv.clone()),
        (None, Some(token_url)) => {
            let client_id = request
                .client_id
                .clone()
                .ok_or_else(|| Failed::usage("tokenUrl needs clientId".into()))?;
            let auth_method = match &request.auth_method {
                Some(name) => AuthMethod::parse(name).ok_or_else(|| {
                    Failed::usage(format!(
                        "authMethod {name:?} is not client_secret_basic, client_secret_post or none"
                    ))
                })?,
                None if request.client_secret.is_some() => AuthMethod::ClientSecretBasic,
                None => AuthMethod::None,
            };
            EndpointSettings::Http(HttpSettings {
                token_url: token_url.clone(),
                client_id,
                client_secret: request.client_secret.clone(),
                auth_method,
                scope: request.scope.clone(),
                ca_file: request.ca_file.clone(),
            })
        }
        (None, None) => {
            return Err(Failed::usage(
                "say how to refresh: tokenUrl and clientId, or refreshCommand".into(),
            ))
        }
    };
    settings.install(&mut credential);
    // Validate now rather than at the first refresh.
    EndpointSettings::of(&credential).map_err(Failed::usage)?;
    Ok(credential)
}

/// The provider named, or the one stored for the profile (own store, then
/// main); none stored is `no_credential`.
async fn provider(
    rotor: &AsyncRotor,
    what: &str,
    agent: &str,
    profile: &str,
    named: Option<String>,
) -> std::result::Result<String, Failed> {
    if let Some(provider) = named {
        return Ok(provider);
    }
    match rotor.provider_of(agent, profile).await {
        Ok(Some(provider)) => Ok(provider),
        Ok(None) => Err(Failed::of(what, &RotorError::Failed(Failure::NoCredential))),
        Err(error) => Err(Failed::of(what, &error)),
    }
}

fn reply(result: std::result::Result<Value, Failed>) -> Value {
    result.unwrap_or_else(Failed::into_value)
}

/// One state directory. `index.js` wraps it as `Rotor`.
#[napi]
pub struct NativeRotor {
    state_dir: String,
    policy: Policy,
    rotor: OnceLock<AsyncRotor>,
}

#[napi]
impl NativeRotor {
    /// Validates the policy; opens nothing yet (see `open`). A bad policy
    /// throws an `Error` whose message starts with "bad policy".
    #[napi(constructor)]
    pub fn new(state_dir: String, policy_options: Option<PolicyOptions>) -> Result<NativeRotor> {
        let policy = policy(&policy_options.unwrap_or_default())
            .map_err(|failed| Error::new(Status::InvalidArg, failed.message))?;
        Ok(NativeRotor {
            state_dir,
            policy,
            rotor: OnceLock::new(),
        })
    }

    fn rotor(&self) -> std::result::Result<&AsyncRotor, Failed> {
        self.rotor.get().ok_or_else(|| {
            Failed::usage("the Rotor is not open: use `await Rotor.open(dir)`".into())
        })
    }

    /// Opens (creating it 0700 if missing) the state directory; a symlinked
    /// or group/other-writable one is refused (`store_unsafe`).
    #[napi]
    pub async fn open(&self) -> Result<Value> {
        let opened = AsyncRotor::open(self.state_dir.as_str()).await;
        Ok(reply(match opened {
            Ok(rotor) => {
                let _ = self.rotor.set(rotor.with_policy(self.policy.clone()));
                Ok(json!({"value": null}))
            }
            Err(error) => Err(Failed::of(
                &format!("rotor open ({})", self.state_dir),
                &error,
            )),
        }))
    }

    /// A usable access token (refreshed safely if needed).
    #[napi]
    pub async fn token(&self, request: TokenRequest) -> Result<Value> {
        Ok(reply(self.token_inner(request).await))
    }

    async fn token_inner(&self, request: TokenRequest) -> std::result::Result<Value, Failed> {
        let rotor = self.rotor()?;
        let agent = request.agent.unwrap_or_else(|| "main".into());
        let profile = request.profile;
        let what = format!("rotor token (agent {agent}, profile {profile})");
        // One trip to the blocking pool: the provider's look-up (when none
        // is named) and the token.
        let named = request.provider;
        let result = rotor
            .run(move |rotor| {
                let provider = match named {
                    Some(provider) => provider,
                    None => rotor
                        .provider_of(&agent, &profile)?
                        .ok_or(RotorError::Failed(Failure::NoCredential))?,
                };
                rotor.token(&agent, &provider, &profile)
            })
            .await;
        match result {
            Ok(granted) => Ok(granted_value(&granted)),
            Err(error) => Err(Failed::of(&what, &error)),
        }
    }

    /// Installs a new token family; resolves to its generation.
    #[napi]
    pub async fn login(&self, request: LoginRequest) -> Result<Value> {
        Ok(reply(self.login_inner(request).await))
    }

    async fn login_inner(&self, request: LoginRequest) -> std::result::Result<Value, Failed> {
        let rotor = self.rotor()?;
        let agent = request.agent.clone().unwrap_or_else(|| "main".into());
        let what = format!("rotor login (agent {agent}, profile {})", request.profile);
        let credential = credential(&request)
            .map_err(|failed| Failed::usage(format!("{what}: {}", failed.message)))?;
        match rotor.login(&agent, &request.profile, credential).await {
            Ok(generation) => Ok(json!({"value": generation})),
            Err(error) => Err(Failed::of(&what, &error)),
        }
    }

    /// Leaves a logout tombstone (G11); resolves to its generation.
    #[napi]
    pub async fn logout(&self, request: LogoutRequest) -> Result<Value> {
        Ok(reply(self.logout_inner(request).await))
    }

    async fn logout_inner(&self, request: LogoutRequest) -> std::result::Result<Value, Failed> {
        let rotor = self.rotor()?;
        let agent = request.agent.unwrap_or_else(|| "main".into());
        let profile = request.profile;
        let what = format!("rotor logout (agent {agent}, profile {profile})");
        let provider = provider(rotor, &what, &agent, &profile, request.provider).await?;
        match rotor.logout(&agent, &provider, &profile).await {
            Ok(generation) => Ok(json!({"value": generation})),
            Err(error) => Err(Failed::of(&what, &error)),
        }
    }

    /// What `rotor status --json` prints (secrets only as fingerprints).
    #[napi]
    pub async fn status(&self) -> Result<Value> {
        let result = match self.rotor() {
            Ok(rotor) => match rotor.status().await {
                Ok(report) => Ok(json!({"value": report.to_json()})),
                Err(error) => Err(Failed::of(
                    &format!("rotor status ({})", self.state_dir),
                    &error,
                )),
            },
            Err(failed) => Err(failed),
        };
        Ok(reply(result))
    }
}
