//! `rotor login`: imports tokens, endpoint settings and identity into a
//! store. Secrets (tokens, client secret) are read as JSON from stdin or a
//! file, never from the command line, where other users could read them.
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use rotor_fs::settings::{AuthMethod, EndpointSettings, HttpSettings};
use rotor_kernel::Credential;
use serde_json::{json, Value};

use super::backend::{self, Backend};
use super::token::{init_logs, usage_error, PolicyArgs, StateDirArgs};

/// Arguments of `rotor login`.
#[derive(clap::Args)]
#[command(after_help = concat!(
    "The tokens are read as JSON from --tokens (default: stdin), in the shape of an\n",
    "OAuth token response: {\"access_token\": \"…\", \"refresh_token\": \"…\", \"expires_in\": 3600}\n",
    "(or \"expires_at_ms\": epoch ms), plus \"client_secret\" when the client has one.\n\n",
    "Example:\n",
    "  printf '%s' \"$TOKEN_JSON\" | rotor login --profile acme:default --provider acme \\\n",
    "      --token-url https://auth.acme.example/oauth/token --client-id my-cli\n"
))]
pub struct LoginArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    /// The agent whose store receives the credential ("main" is the main store).
    #[arg(long, default_value = "main")]
    pub agent: String,
    /// The profile id, e.g. "acme:default".
    #[arg(long)]
    pub profile: String,
    /// The provider id, e.g. "acme".
    #[arg(long)]
    pub provider: String,
    /// Where to read the token JSON ("-" for stdin).
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub tokens: PathBuf,
    #[command(flatten)]
    pub endpoint: Box<EndpointArgs>,
    /// The account id this credential belongs to (identity gate, G3).
    #[arg(long)]
    pub account_id: Option<String>,
    /// The account's email (identity gate, G3).
    #[arg(long)]
    pub email: Option<String>,
    /// The tenant (enterprise URL, organisation id) (identity gate, G3).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// How the credential is refreshed (boxed: it is the bulk of the arguments).
#[derive(clap::Args)]
pub struct EndpointArgs {
    /// The token endpoint URL (RFC 6749 §6 refresh grant), http:// or https://.
    #[arg(long, value_name = "URL", conflicts_with = "refresh_command")]
    pub token_url: Option<String>,
    /// The OAuth client id (with --token-url).
    #[arg(long, requires = "token_url")]
    pub client_id: Option<String>,
    /// client_secret_basic, client_secret_post or none (default: basic when a
    /// client_secret is given in the token JSON, else none).
    #[arg(long, requires = "token_url")]
    pub auth_method: Option<String>,
    /// Scope to request on refresh.
    #[arg(long, requires = "token_url")]
    pub scope: Option<String>,
    /// PEM file of trust roots for an https token URL (replaces the built-in roots).
    #[arg(long, value_name = "FILE", requires = "token_url")]
    pub ca_file: Option<String>,
    /// A command that refreshes the credential itself: it gets the credential JSON on
    /// stdin and prints a token response on stdout. Takes the rest of the line.
    #[arg(long, value_name = "ARGV", num_args = 1.., allow_hyphen_values = true)]
    pub refresh_command: Option<Vec<String>>,
}

fn read_tokens(path: &PathBuf) -> Result<Value, String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading the token JSON from stdin: {e}"))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the token JSON from {}: {e}", path.display()))?;
    }
    serde_json::from_str(&text).map_err(|e| format!("the token JSON does not parse: {e}"))
}

fn field(tokens: &Value, key: &str) -> Option<String> {
    tokens
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn build(args: &LoginArgs, tokens: &Value, now_ms: i64) -> Result<Credential, String> {
    let access = field(tokens, "access_token").ok_or("the token JSON has no access_token")?;
    let refresh = field(tokens, "refresh_token").ok_or("the token JSON has no refresh_token")?;
    let expires_at_ms = match (tokens.get("expires_at_ms"), tokens.get("expires_in")) {
        (Some(at), _) => at.as_i64().ok_or("expires_at_ms is not an integer")?,
        (None, Some(seconds)) => {
            let seconds = seconds
                .as_f64()
                .or_else(|| seconds.as_str().and_then(|s| s.parse().ok()))
                .ok_or("expires_in is not a number")?;
            now_ms.saturating_add((seconds * 1000.0) as i64)
        }
        (None, None) => {
            return Err("the token JSON has neither expires_in nor expires_at_ms".into())
        }
    };
    let mut credential = Credential::oauth(&args.provider, access, refresh, expires_at_ms);
    credential.account_id = args.account_id.clone().map(Into::into);
    credential.email = args.email.clone().map(Into::into);
    credential.tenant = args.tenant.clone().map(Into::into);
    let settings = if let Some(argv) = &args.endpoint.refresh_command {
        Some(EndpointSettings::Command(argv.clone()))
    } else if let Some(token_url) = &args.endpoint.token_url {
        let client_id = args
            .endpoint
            .client_id
            .clone()
            .ok_or("--token-url needs --client-id")?;
        let client_secret = field(tokens, "client_secret");
        let auth_method = match &args.endpoint.auth_method {
            Some(name) => AuthMethod::parse(name).ok_or_else(|| {
                format!(
                    "--auth-method {name:?} is not client_secret_basic, client_secret_post or none"
                )
            })?,
            None if client_secret.is_some() => AuthMethod::ClientSecretBasic,
            None => AuthMethod::None,
        };
        Some(EndpointSettings::Http(HttpSettings {
            token_url: token_url.clone(),
            client_id,
            client_secret,
            auth_method,
            scope: args.endpoint.scope.clone(),
            ca_file: args.endpoint.ca_file.clone(),
        }))
    } else {
        None
    };
    match settings {
        Some(settings) => {
            settings.install(&mut credential);
            // Validate now rather than at the first refresh.
            EndpointSettings::of(&credential)?;
        }
        None => {
            return Err(
                "say how to refresh: --token-url URL --client-id ID, or --refresh-command ARGV…"
                    .into(),
            )
        }
    }
    Ok(credential)
}

/// Runs `rotor login`.
pub fn run(args: LoginArgs) -> ExitCode {
    init_logs();
    let tokens = match read_tokens(&args.tokens) {
        Ok(tokens) => tokens,
        Err(message) => return usage_error("login", &message, args.json),
    };
    let credential = match build(&args, &tokens, rotor_fs::lock::now_ms()) {
        Ok(credential) => credential,
        Err(message) => return usage_error("login", &message, args.json),
    };
    let rotor = match Backend::open("login", &args.state, &args.policy, args.json) {
        Ok(rotor) => rotor,
        Err(code) => return code,
    };
    let path = match rotor.store_name(&args.agent) {
        Ok(path) => path,
        Err(error) => return backend::report("login", &error, args.json),
    };
    match rotor.login(&args.agent, &args.profile, credential) {
        Ok(generation) => {
            if args.json {
                println!(
                    "{}",
                    json!({"agent": args.agent, "profile": args.profile, "generation": generation, "store": path})
                );
            } else {
                eprintln!(
                    "rotor login: {} stored in {path} (generation {generation})",
                    args.profile
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => backend::report("login", &error, args.json),
    }
}
