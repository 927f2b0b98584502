//! One entry of a store's `profiles` map (SPEC §2).
//!
//! Only `oauth` entries are ever refreshed, adopted or mirrored. A `logged_out`
//! entry is a tombstone: it keeps the generation so that no in-flight refresh of
//! the old family can write the profile back (G11). Fields rotor does not know
//! are kept in [`Credential::extra`] and written back unchanged (G4).

use alloc::collections::BTreeMap;
use alloc::string::String;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::secret::Secret;
use crate::shared_str::SharedStr;

/// The `type` discriminator of a credential.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum CredentialKind {
    /// Refreshable OAuth credential: the only kind rotor refreshes or copies.
    OAuth,
    /// A static API key (never refreshed, never overwritten by a copy).
    ApiKey,
    /// A static bearer token (never refreshed, never overwritten by a copy).
    Token,
    /// A logout tombstone (G11).
    LoggedOut,
    /// Any other type a newer writer used; preserved as written.
    Other(String),
}

impl From<String> for CredentialKind {
    fn from(text: String) -> Self {
        match text.as_str() {
            "oauth" => CredentialKind::OAuth,
            "api_key" => CredentialKind::ApiKey,
            "token" => CredentialKind::Token,
            "logged_out" => CredentialKind::LoggedOut,
            _ => CredentialKind::Other(text),
        }
    }
}

impl From<CredentialKind> for String {
    fn from(kind: CredentialKind) -> Self {
        String::from(kind.as_str())
    }
}

impl CredentialKind {
    /// The name as stored in JSON.
    pub fn as_str(&self) -> &str {
        match self {
            CredentialKind::OAuth => "oauth",
            CredentialKind::ApiKey => "api_key",
            CredentialKind::Token => "token",
            CredentialKind::LoggedOut => "logged_out",
            CredentialKind::Other(text) => text,
        }
    }
}

/// A stored credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// `oauth`, `api_key`, `token`, `logged_out`, or another kind (kept as is).
    #[serde(rename = "type")]
    pub kind: CredentialKind,
    /// Provider id (part of the lock key).
    #[serde(default)]
    pub provider: SharedStr,
    /// Current access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Secret>,
    /// Current refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Secret>,
    /// Expiry of `access`, epoch milliseconds. Missing or invalid means expired.
    #[serde(
        default,
        deserialize_with = "lenient_epoch_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at_ms: Option<i64>,
    /// Account id: the strongest identity marker; compared exactly after trim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<SharedStr>,
    /// Email: compared case-insensitively after trim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<SharedStr>,
    /// Tenant (enterprise URL, organisation id); compared exactly after trim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<SharedStr>,
    /// Bumped by every successful refresh, import, login and logout (G5).
    #[serde(default)]
    pub generation: u64,
    /// Names the token family: set by a login (the fingerprint of its first
    /// refresh token) and carried by every rotation and copy. A mirror never
    /// writes one family over another (G11: a re-login sticks even when a
    /// sub-agent's store is generations ahead of main).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<SharedStr>,
    /// Set when the provider refused this generation's refresh token for good
    /// (SPEC §3 step 9): the profile needs a new login. The credential is kept
    /// so that a re-login can propagate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub needs_reauth: bool,
    /// Fields rotor does not know, preserved on every read-modify-write.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Accepts any JSON value; integers (and integral floats) become the expiry,
/// anything else (null, NaN written as a string, a negative or fractional
/// number out of range) becomes "missing", which means expired.
fn lenient_epoch_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|float| float.is_finite() && *float >= 0.0 && *float < 9.0e15)
                .map(|float| float as i64)
        }),
        _ => None,
    })
}

impl Credential {
    /// A fresh `oauth` credential (generation 0, no identity).
    pub fn oauth(
        provider: impl Into<String>,
        access: impl Into<String>,
        refresh: impl Into<String>,
        expires_at_ms: i64,
    ) -> Self {
        Credential {
            kind: CredentialKind::OAuth,
            provider: SharedStr::from(provider.into()),
            access: Some(Secret::new(access)),
            refresh: Some(Secret::new(refresh)),
            expires_at_ms: Some(expires_at_ms),
            account_id: None,
            email: None,
            tenant: None,
            generation: 0,
            family: None,
            needs_reauth: false,
            extra: BTreeMap::new(),
        }
    }

    /// A logout tombstone at `generation` (G11).
    pub fn tombstone(provider: impl Into<String>, generation: u64) -> Self {
        Credential {
            kind: CredentialKind::LoggedOut,
            provider: SharedStr::from(provider.into()),
            access: None,
            refresh: None,
            expires_at_ms: None,
            account_id: None,
            email: None,
            tenant: None,
            generation,
            family: None,
            needs_reauth: false,
            extra: BTreeMap::new(),
        }
    }

    /// Builder: sets the account id.
    pub fn with_account(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(SharedStr::from(account_id.into()));
        self
    }

    /// Builder: sets the email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(SharedStr::from(email.into()));
        self
    }

    /// Builder: sets the tenant.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(SharedStr::from(tenant.into()));
        self
    }

    /// Builder: sets the generation.
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// True for `type: oauth`.
    pub fn is_oauth(&self) -> bool {
        self.kind == CredentialKind::OAuth
    }

    /// True for a logout tombstone.
    pub fn is_logged_out(&self) -> bool {
        self.kind == CredentialKind::LoggedOut
    }

    /// SPEC §3: usable = `type oauth`, non-blank `access`, not marked
    /// `needs_reauth`, and `expires_at_ms - now > margin`.
    pub fn is_usable(&self, now_ms: i64, margin_ms: u64) -> bool {
        self.is_oauth()
            && !self.needs_reauth
            && self
                .access
                .as_ref()
                .is_some_and(|access| !access.is_blank())
            && self
                .expires_at_ms
                .is_some_and(|expires| expires.saturating_sub(now_ms) > margin_ms as i64)
    }

    /// Fingerprint of the refresh token, if there is one.
    pub fn refresh_fingerprint(&self) -> Option<crate::Fingerprint> {
        self.refresh.as_ref().map(Secret::fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_kinds_survive_a_round_trip() {
        let text = r#"{"type":"oauth","provider":"p","access":"a","refresh":"r",
            "expires_at_ms":5,"generation":3,"clientId":"c","nested":{"x":[1,2]}}"#;
        let credential: Credential = serde_json::from_str(text).unwrap();
        assert_eq!(credential.extra.get("clientId"), Some(&Value::from("c")));
        let again: Credential =
            serde_json::from_str(&serde_json::to_string(&credential).unwrap()).unwrap();
        assert_eq!(again, credential);

        let other: Credential =
            serde_json::from_str(r#"{"type":"cookie","provider":"p"}"#).unwrap();
        assert_eq!(other.kind, CredentialKind::Other("cookie".into()));
        assert!(serde_json::to_string(&other)
            .unwrap()
            .contains(r#""type":"cookie""#));
    }

    #[test]
    fn invalid_expiry_means_expired() {
        for raw in [r#""NaN""#, "null", "-1.5e300", r#"{"a":1}"#] {
            let text = alloc::format!(
                r#"{{"type":"oauth","provider":"p","access":"a","expires_at_ms":{raw}}}"#
            );
            let credential: Credential = serde_json::from_str(&text).unwrap();
            assert_eq!(credential.expires_at_ms, None, "{raw}");
            assert!(!credential.is_usable(0, 0));
        }
    }

    #[test]
    fn usable_respects_margin_blank_access_and_marks() {
        let credential = Credential::oauth("p", "a", "r", 1_000_000);
        assert!(credential.is_usable(0, 999_999));
        assert!(!credential.is_usable(0, 1_000_000));
        let mut blank = credential.clone();
        blank.access = Some(Secret::new("  "));
        assert!(!blank.is_usable(0, 0));
        let mut marked = credential.clone();
        marked.needs_reauth = true;
        assert!(!marked.is_usable(0, 0));
        let mut api_key = credential;
        api_key.kind = CredentialKind::ApiKey;
        assert!(!api_key.is_usable(0, 0));
    }
}
