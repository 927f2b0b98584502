//! Endpoint settings: how a credential is refreshed. `rotor login` stores
//! them in the credential's unknown fields, under `"endpoint"`, so that the
//! kernel's `CallEndpoint` carries them along with the refresh token (the
//! kernel preserves unknown fields through every rotation).
//!
//! ```json
//! "endpoint": {
//!   "token_url": "https://auth.example/oauth/token",
//!   "client_id": "rotor-cli",
//!   "client_secret": "…",                 // omitted for public clients
//!   "auth_method": "client_secret_basic",  // or client_secret_post, none
//!   "scope": "openid offline_access",      // optional
//!   "ca_file": "/path/to/ca.pem"           // optional extra trust roots
//! }
//! ```
//! or, for providers with their own refresh:
//! ```json
//! "endpoint": { "refresh_command": ["/usr/bin/provider-refresh", "--json"] }
//! ```

use rotor_kernel::Credential;
use serde_json::{json, Map, Value};

/// The key under which settings live in the credential's unknown fields.
pub const SETTINGS_KEY: &str = "endpoint";

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the form-encoded client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: `client_id` in the form body, no secret.
    None,
}

impl AuthMethod {
    /// Parses the name used in settings and on the command line.
    pub fn parse(text: &str) -> Option<AuthMethod> {
        match text {
            "client_secret_basic" | "basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" | "post" => Some(AuthMethod::ClientSecretPost),
            "none" | "public" => Some(AuthMethod::None),
            _ => None,
        }
    }

    /// The RFC name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

/// Settings of an HTTP token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// The token endpoint URL (http or https).
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret (absent for public clients).
    pub client_secret: Option<String>,
    /// How the client authenticates.
    pub auth_method: AuthMethod,
    /// Scope to ask for, if any.
    pub scope: Option<String>,
    /// A PEM file of extra trust roots for HTTPS (replaces the built-in roots).
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("auth_method", &self.auth_method)
            .field("scope", &self.scope)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// How a credential is refreshed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointSettings {
    /// RFC 6749 §6 over HTTP(S).
    Http(HttpSettings),
    /// An external command: credential JSON on stdin, token JSON on stdout.
    Command(Vec<String>),
}

fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl EndpointSettings {
    /// Reads the settings a credential carries.
    pub fn of(credential: &Credential) -> Result<EndpointSettings, String> {
        let Some(Value::Object(map)) = credential.extra.get(SETTINGS_KEY) else {
            return Err(
                "the credential has no endpoint settings: run `rotor login` with --token-url or --refresh-command"
                    .into(),
            );
        };
        if let Some(command) = map.get("refresh_command") {
            let argv: Option<Vec<String>> = command.as_array().and_then(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect()
            });
            return match argv {
                Some(argv) if !argv.is_empty() => Ok(EndpointSettings::Command(argv)),
                _ => Err("endpoint.refresh_command must be a non-empty array of strings".into()),
            };
        }
        let token_url = text(map, "token_url").ok_or("endpoint.token_url is missing")?;
        if !(token_url.starts_with("https://") || token_url.starts_with("http://")) {
            return Err(format!(
                "endpoint.token_url {token_url:?} is not an http(s) URL"
            ));
        }
        let client_id = text(map, "client_id").ok_or("endpoint.client_id is missing")?;
        let client_secret = text(map, "client_secret");
        let auth_method = match text(map, "auth_method") {
            Some(name) => AuthMethod::parse(&name)
                .ok_or_else(|| format!("endpoint.auth_method {name:?} is not one of client_secret_basic, client_secret_post, none"))?,
            None if client_secret.is_some() => AuthMethod::ClientSecretBasic,
            None => AuthMethod::None,
        };
        if auth_method != AuthMethod::None && client_secret.is_none() {
            return Err(format!(
                "endpoint.auth_method {} needs endpoint.client_secret",
                auth_method.as_str()
            ));
        }
        Ok(EndpointSettings::Http(HttpSettings {
            token_url,
            client_id,
            client_secret,
            auth_method,
            scope: text(map, "scope"),
            ca_file: text(map, "ca_file"),
        }))
    }

    /// The JSON stored under [`SETTINGS_KEY`].
    pub fn to_value(&self) -> Value {
        match self {
            EndpointSettings::Command(argv) => json!({ "refresh_command": argv }),
            EndpointSettings::Http(http) => {
                let mut map = Map::new();
                map.insert("token_url".into(), json!(http.token_url));
                map.insert("client_id".into(), json!(http.client_id));
                if let Some(secret) = &http.client_secret {
                    map.insert("client_secret".into(), json!(secret));
                }
                map.insert("auth_method".into(), json!(http.auth_method.as_str()));
                if let Some(scope) = &http.scope {
                    map.insert("scope".into(), json!(scope));
                }
                if let Some(ca_file) = &http.ca_file {
                    map.insert("ca_file".into(), json!(ca_file));
                }
                Value::Object(map)
            }
        }
    }

    /// Stores these settings in `credential`'s unknown fields.
    pub fn install(&self, credential: &mut Credential) {
        credential
            .extra
            .insert(SETTINGS_KEY.into(), self.to_value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_a_credential() {
        let settings = EndpointSettings::Http(HttpSettings {
            token_url: "http://127.0.0.1:1/token".into(),
            client_id: "c".into(),
            client_secret: Some("s".into()),
            auth_method: AuthMethod::ClientSecretPost,
            scope: None,
            ca_file: None,
        });
        let mut credential = Credential::oauth("p", "a", "r", 0);
        settings.install(&mut credential);
        assert_eq!(EndpointSettings::of(&credential).unwrap(), settings);
        assert!(!format!("{settings:?}").contains("\"s\""));
        let command = EndpointSettings::Command(vec!["x".into()]);
        command.install(&mut credential);
        assert_eq!(EndpointSettings::of(&credential).unwrap(), command);
    }

    #[test]
    fn bad_settings_are_explained() {
        let mut credential = Credential::oauth("p", "a", "r", 0);
        assert!(EndpointSettings::of(&credential)
            .unwrap_err()
            .contains("rotor login"));
        credential.extra.insert(
            SETTINGS_KEY.into(),
            json!({"token_url": "ftp://x", "client_id": "c"}),
        );
        assert!(EndpointSettings::of(&credential)
            .unwrap_err()
            .contains("not an http"));
        credential.extra.insert(
            SETTINGS_KEY.into(),
            json!({"token_url": "http://x", "client_id": "c", "auth_method": "client_secret_post"}),
        );
        assert!(EndpointSettings::of(&credential)
            .unwrap_err()
            .contains("client_secret"));
    }
}
