//! `rotor token`: prints a usable access token, refreshing it safely if
//! needed, with one exit code per kind of failure. Also holds what the
//! filesystem subcommands share (state directory, logging, policy flags).
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use rotor_fs::Error;
use rotor_kernel::{Granted, Outcome, Policy, PolicyConfig, Source};
use serde_json::json;

use super::backend::{self, Backend};

/// Exit codes of `rotor token` (also used by every other subcommand): one
/// table with `@rotor/node`, in `rotor_fs::kinds`.
pub use rotor_fs::kinds::exit;

/// The exit-code table as a literal, for `concat!` into help texts.
macro_rules! exit_codes_help {
    () => {
        "\
Exit codes:
   0  ok: the access token is on stdout
   2  usage error, or a refused agent/provider/profile id
   3  no credential (or logged out, another provider's, not refreshable): run `rotor login`
   4  needs a new login: the provider refused the refresh token, or its rotation was lost
   5  in doubt: the refresh was sent and its outcome is unknown; the token is fenced
   6  transient: the endpoint (or the PostgreSQL store) was unreachable and nothing was sent; try again
   7  rejected: the endpoint refused for another reason (client settings, rate limit)
   8  refresh lock timeout: the message names the holder and for how long
   9  store error: a corrupt (kept aside), unsafe (symlink, permissions) or unreadable
      file, or a lock file that could not be opened; a PostgreSQL store that refused the
      login, timed out, or has a schema from a newer rotor
  10  superseded: a login or logout changed the credential meanwhile; try again
   1  internal error"
    };
}

/// Where the state directory is: `--state-dir`, `$ROTOR_STATE_DIR`,
/// `$XDG_STATE_HOME/rotor`, or `~/.local/state/rotor`.
#[derive(clap::Args, Clone, Debug)]
pub struct StateDirArgs {
    /// The state directory (default: $ROTOR_STATE_DIR, $XDG_STATE_HOME/rotor, ~/.local/state/rotor).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A PostgreSQL store shared across machines instead of the state directory,
    /// postgres://user@host/db[?rotor_schema=NAME] (default: $ROTOR_STORE, else the state directory).
    #[arg(long, value_name = "URL", conflicts_with = "state_dir")]
    pub store: Option<String>,
}

impl StateDirArgs {
    /// The PostgreSQL store from `--store`, or `$ROTOR_STORE` unless
    /// `--state-dir` is given; `None`: the filesystem (the default).
    pub(crate) fn store_url(&self) -> Result<Option<String>, String> {
        let url = match &self.store {
            Some(url) => Some(url.clone()),
            None if self.state_dir.is_none() => {
                std::env::var("ROTOR_STORE").ok().filter(|v| !v.is_empty())
            }
            None => None,
        };
        match url {
            Some(url) if !rotor_pg::url::is_postgres(&url) => Err(format!(
                "--store and ROTOR_STORE take a postgres:// URL (the state directory is the \
                 default; use --state-dir for another one), not {}",
                rotor_pg::url::redact(&url)
            )),
            other => Ok(other),
        }
    }

    pub(crate) fn resolve(&self) -> Result<PathBuf, String> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = env("ROTOR_STATE_DIR") {
            return Ok(dir.into());
        }
        if let Some(dir) = env("XDG_STATE_HOME") {
            return Ok(PathBuf::from(dir).join("rotor"));
        }
        match env("HOME") {
            Some(home) => Ok(PathBuf::from(home).join(".local/state/rotor")),
            None => Err("no state directory: pass --state-dir or set ROTOR_STATE_DIR".into()),
        }
    }
}

/// Policy overrides shared by `login` and `token`.
#[derive(clap::Args, Clone, Debug)]
pub struct PolicyArgs {
    /// Refresh when the access token expires within this many ms (default 300000).
    #[arg(long, value_name = "MS")]
    pub refresh_margin_ms: Option<u64>,
    /// Hard deadline of one token-endpoint call (default 30000).
    #[arg(long, value_name = "MS")]
    pub call_deadline_ms: Option<u64>,
    /// Longest wait for the refresh lock (default 120000).
    #[arg(long, value_name = "MS")]
    pub lock_wait_ms: Option<u64>,
    /// Longest wait for a store's lock (default 10000).
    #[arg(long, value_name = "MS")]
    pub store_lock_wait_ms: Option<u64>,
}

impl PolicyArgs {
    pub(crate) fn policy(&self) -> Result<Policy, String> {
        let mut config = PolicyConfig::default();
        if let Some(ms) = self.refresh_margin_ms {
            config.refresh_margin_ms = ms;
        }
        if let Some(ms) = self.call_deadline_ms {
            config.call_deadline_ms = ms;
        }
        if let Some(ms) = self.lock_wait_ms {
            config.refresh_lock_wait_ms_max = ms;
        }
        if let Some(ms) = self.store_lock_wait_ms {
            config.store_lock_wait_ms_max = ms;
        }
        Policy::new(config).map_err(|error| format!("bad policy: {error}"))
    }
}

/// The state directory and policy of a `login` or `token` call; on a bad
/// value, the usage error is reported and its exit code returned.
pub(crate) fn resolve_settings(
    command: &str,
    state: &StateDirArgs,
    policy: &PolicyArgs,
    json: bool,
) -> Result<(PathBuf, Policy), ExitCode> {
    let state_dir = state
        .resolve()
        .map_err(|message| usage_error(command, &message, json))?;
    let policy = policy
        .policy()
        .map_err(|message| usage_error(command, &message, json))?;
    Ok((state_dir, policy))
}

/// Sends `tracing` logs to stderr at the level named by `$ROTOR_LOG`
/// (error, warn, info, debug, trace; default warn).
pub(crate) fn init_logs() {
    use tracing_subscriber::filter::LevelFilter;
    let level = match std::env::var("ROTOR_LOG").unwrap_or_default().as_str() {
        "off" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => LevelFilter::WARN,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Arguments of `rotor token`.
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  rotor token --profile acme:default\n",
    "  rotor token --profile acme:default --format header | curl -H @- https://api.acme.example/\n",
    "  rotor token --profile acme:default --format kubectl   # as a kubeconfig exec plugin\n\n",
    exit_codes_help!()
))]
pub struct TokenArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    /// The agent asking ("main", or a sub-agent id: letters, digits, _ - .).
    #[arg(long, default_value = "main")]
    pub agent: String,
    /// The profile id, e.g. "acme:default".
    #[arg(long)]
    pub profile: String,
    /// The provider id (default: the one stored for the profile).
    #[arg(long)]
    pub provider: Option<String>,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// What to print. With json, a failure is printed as {"error": {...}} on
    /// stdout as well; kubectl answers in the apiVersion $KUBERNETES_EXEC_INFO
    /// names (v1 or v1beta1; v1beta1 without it).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "bare")]
    pub format: TokenFormat,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The output formats of `rotor token`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFormat {
    /// The access token alone on one line.
    Bare,
    /// A JSON object: access_token, expires_at_ms, generation, outcome, warnings.
    Json,
    /// `Authorization: Bearer <token>`, for `curl -H @-`.
    Header,
    /// A client.authentication.k8s.io ExecCredential for a kubeconfig `exec` user.
    Kubectl,
}

pub(crate) fn error_exit(error: &Error) -> (u8, &'static str) {
    let kind = error.kind();
    (kind.exit_code, kind.name)
}

/// Reports `error` on stderr (and as JSON on stdout with `json`); returns
/// its exit code.
pub(crate) fn report_error(command: &str, error: &Error, json: bool) -> ExitCode {
    let (code, kind) = error_exit(error);
    eprintln!("rotor {command}: {error}");
    if json {
        let value =
            json!({"error": {"kind": kind, "message": error.to_string(), "exit_code": code}});
        println!("{value}");
    }
    ExitCode::from(code)
}

pub(crate) fn usage_error(command: &str, message: &str, json: bool) -> ExitCode {
    eprintln!("rotor {command}: {message}");
    if json {
        let value =
            json!({"error": {"kind": "usage", "message": message, "exit_code": exit::USAGE}});
        println!("{value}");
    }
    ExitCode::from(exit::USAGE)
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Cached => "cached",
        Outcome::Adopted { from: Source::Main } => "adopted-main",
        Outcome::Adopted { from: Source::Peer } => "adopted-peer",
        Outcome::Refreshed => "refreshed",
    }
}

/// What `token` and `exec` ask for: one profile of one agent.
pub(crate) struct Query<'a> {
    /// The subcommand, for messages.
    pub command: &'static str,
    pub state: &'a StateDirArgs,
    pub policy: &'a PolicyArgs,
    pub agent: &'a str,
    /// None: the provider stored for the profile.
    pub provider: Option<&'a str>,
    pub profile: &'a str,
    /// Errors also go to stdout as {"error": {...}}.
    pub json: bool,
}

/// Resolves `query` through the store's `token` (refreshing safely if needed);
/// on failure the error is reported and its exit code returned.
pub(crate) fn fetch(query: &Query) -> Result<Granted, ExitCode> {
    let (command, json) = (query.command, query.json);
    let rotor = Backend::open(command, query.state, query.policy, json)?;
    let granted = rotor
        .provider(query.provider, query.agent, query.profile)
        .and_then(|provider| rotor.token(query.agent, &provider, query.profile))
        .map_err(|error| backend::report(command, &error, json))?;
    for warning in &granted.warnings {
        eprintln!("rotor {command}: warning: {warning}");
    }
    Ok(granted)
}

/// The ExecCredential versions kubectl may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KubeApiVersion {
    V1,
    V1Beta1,
}

impl KubeApiVersion {
    fn as_str(self) -> &'static str {
        match self {
            KubeApiVersion::V1 => "client.authentication.k8s.io/v1",
            KubeApiVersion::V1Beta1 => "client.authentication.k8s.io/v1beta1",
        }
    }

    /// The version kubectl asks for: it runs an exec plugin with
    /// $KUBERNETES_EXEC_INFO set to an ExecCredential (`spec` only) in the
    /// apiVersion of the kubeconfig's `exec` section, and accepts an answer
    /// in that version only. Without the variable (run by hand, or by a
    /// client that does not set it) the answer is v1beta1, the version every
    /// kubectl since 1.11 accepts; v1 needs kubectl 1.22 or newer.
    fn from_exec_info(info: Option<&str>) -> Result<KubeApiVersion, String> {
        let Some(info) = info.map(str::trim).filter(|info| !info.is_empty()) else {
            return Ok(KubeApiVersion::V1Beta1);
        };
        let value: serde_json::Value = serde_json::from_str(info)
            .map_err(|error| format!("KUBERNETES_EXEC_INFO is not JSON: {error}"))?;
        match value.get("apiVersion").and_then(serde_json::Value::as_str) {
            Some("client.authentication.k8s.io/v1") => Ok(KubeApiVersion::V1),
            Some("client.authentication.k8s.io/v1beta1") => Ok(KubeApiVersion::V1Beta1),
            Some(other) => Err(format!(
                "KUBERNETES_EXEC_INFO asks for apiVersion {other:?}; rotor answers \
                 client.authentication.k8s.io/v1 or v1beta1: set one of them in the \
                 kubeconfig's exec section"
            )),
            None => Err("KUBERNETES_EXEC_INFO has no apiVersion".into()),
        }
    }
}

/// `ms` since the epoch as an RFC 3339 UTC timestamp, whole seconds rounded
/// down (an expiry reported early, never late), e.g. `2026-12-04T16:53:22Z`.
/// Days to a civil date by Howard Hinnant's `civil_from_days`; no date crate
/// for one line of output.
pub(crate) fn rfc3339_utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The text `rotor token` prints for `granted` in `format`.
fn render(granted: &Granted, format: TokenFormat, kube: KubeApiVersion) -> String {
    let access = granted.access.expose();
    match format {
        TokenFormat::Bare => access.to_owned(),
        TokenFormat::Header => format!("Authorization: Bearer {access}"),
        TokenFormat::Json => json!({
            "access_token": access,
            "expires_at_ms": granted.expires_at_ms,
            "generation": granted.generation,
            "outcome": outcome_name(granted.outcome),
            "warnings": granted.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        })
        .to_string(),
        TokenFormat::Kubectl => {
            let mut status = json!({ "token": access });
            // Without an expiry kubectl keeps the token until a 401.
            if let Some(ms) = granted.expires_at_ms {
                status["expirationTimestamp"] = rfc3339_utc(ms).into();
            }
            json!({"apiVersion": kube.as_str(), "kind": "ExecCredential", "status": status})
                .to_string()
        }
    }
}

/// Runs `rotor token`.
pub fn run(args: TokenArgs) -> ExitCode {
    init_logs();
    let format = if args.json {
        TokenFormat::Json
    } else {
        args.format
    };
    let json = format == TokenFormat::Json;
    // Read what kubectl asks for before anything is refreshed: a version
    // rotor cannot answer is a usage error, not a spent refresh token.
    let kube = if format == TokenFormat::Kubectl {
        let info = std::env::var("KUBERNETES_EXEC_INFO").ok();
        match KubeApiVersion::from_exec_info(info.as_deref()) {
            Ok(version) => version,
            Err(message) => return usage_error("token", &message, false),
        }
    } else {
        KubeApiVersion::V1Beta1
    };
    let query = Query {
        command: "token",
        state: &args.state,
        policy: &args.policy,
        agent: &args.agent,
        provider: args.provider.as_deref(),
        profile: &args.profile,
        json,
    };
    let granted = match fetch(&query) {
        Ok(granted) => granted,
        Err(code) => return code,
    };
    // A token with a line break would add lines to a header or to a bare
    // token's consumer (`curl -H @-` would send them as headers): refuse it.
    let plain_text = matches!(format, TokenFormat::Bare | TokenFormat::Header);
    if plain_text && granted.access.expose().chars().any(char::is_control) {
        eprintln!(
            "rotor token: the provider's access token contains control characters; \
             refusing to print it as text (use --format json)"
        );
        return ExitCode::from(exit::INTERNAL);
    }
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{}", render(&granted, format, kube)).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            eprintln!("rotor token: writing the token failed: {error}");
            ExitCode::from(exit::INTERNAL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(999), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_709_251_199_000), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339_utc(1_798_761_600_000), "2027-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(4_102_444_800_000), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn kube_api_version_from_exec_info() {
        let v1 = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#;
        let beta = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{}}"#;
        assert_eq!(
            KubeApiVersion::from_exec_info(Some(v1)),
            Ok(KubeApiVersion::V1)
        );
        assert_eq!(
            KubeApiVersion::from_exec_info(Some(beta)),
            Ok(KubeApiVersion::V1Beta1)
        );
        assert_eq!(
            KubeApiVersion::from_exec_info(None),
            Ok(KubeApiVersion::V1Beta1)
        );
        assert_eq!(
            KubeApiVersion::from_exec_info(Some("")),
            Ok(KubeApiVersion::V1Beta1)
        );
        let alpha = r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#;
        assert!(KubeApiVersion::from_exec_info(Some(alpha)).is_err());
        assert!(KubeApiVersion::from_exec_info(Some("{")).is_err());
        assert!(KubeApiVersion::from_exec_info(Some("{}")).is_err());
    }
}
