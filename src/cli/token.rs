//! `rotor token`: prints a usable access token, refreshing it safely if
//! needed, with one exit code per kind of failure. Also holds what the
//! filesystem subcommands share (state directory, logging, policy flags).
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use rotor_fs::{Error, Rotor};
use rotor_kernel::{Failure, Granted, Outcome, Policy, PolicyConfig, Source, StoreFaultKind};
use serde_json::json;

/// Exit codes of `rotor token` (also used by `login` and `status`).
pub mod exit {
    /// A token was printed.
    pub const OK: u8 = 0;
    /// A bug in rotor (it says so on stderr).
    pub const INTERNAL: u8 = 1;
    /// Bad arguments or a refused id.
    pub const USAGE: u8 = 2;
    /// No credential for the profile, logged out, another provider's or not
    /// refreshable: run `rotor login`.
    pub const NO_CREDENTIAL: u8 = 3;
    /// The token family is dead (refused, marked, or its rotation was lost):
    /// run `rotor login`.
    pub const NEEDS_REAUTH: u8 = 4;
    /// This call presented the refresh token and does not know the outcome;
    /// the fence stays and the next call reports NEEDS_REAUTH.
    pub const IN_DOUBT: u8 = 5;
    /// The endpoint could not be reached; nothing was sent: try again.
    pub const TRANSIENT: u8 = 6;
    /// The endpoint refused (not a token reuse): check the client settings.
    pub const REJECTED: u8 = 7;
    /// The refresh lock was not acquired in time (the message names its holder).
    pub const LOCK_TIMEOUT: u8 = 8;
    /// A store or the state directory is corrupt, unsafe or unreadable
    /// (the message names the file and any backup).
    pub const STORE: u8 = 9;
    /// A login or logout replaced the credential during the refresh: try again.
    pub const SUPERSEDED: u8 = 10;
}

pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  ok: the access token is on stdout
   2  usage error, or a refused agent/provider/profile id
   3  no credential (or logged out, another provider's, not refreshable): run `rotor login`
   4  needs a new login: the provider refused the refresh token, or its rotation was lost
   5  in doubt: the refresh was sent and its outcome is unknown; the token is fenced
   6  transient: the endpoint was unreachable and nothing was sent; try again
   7  rejected: the endpoint refused for another reason (client settings, rate limit)
   8  refresh lock timeout: the message names the holder and for how long
   9  store error: a corrupt (kept aside), unsafe (symlink, permissions) or unreadable
      file, or a lock file that could not be opened
  10  superseded: a login or logout changed the credential meanwhile; try again
   1  internal error";

/// Where the state directory is: `--state-dir`, `$ROTOR_STATE_DIR`,
/// `$XDG_STATE_HOME/rotor`, or `~/.local/state/rotor`.
#[derive(clap::Args, Clone, Debug)]
pub struct StateDirArgs {
    /// The state directory (default: $ROTOR_STATE_DIR, $XDG_STATE_HOME/rotor, ~/.local/state/rotor).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateDirArgs {
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
#[command(after_help = EXIT_CODES_HELP)]
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
    /// Print a JSON object (token, expiry, generation, outcome) instead of the bare token;
    /// on failure, print {"error": {...}} on stdout as well.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

pub(crate) fn error_exit(error: &Error) -> (u8, &'static str) {
    match error {
        Error::InvalidId(_) => (exit::USAGE, "invalid_id"),
        Error::Store(_) => (exit::STORE, "store"),
        Error::Failed(failure) => failure_exit(failure),
    }
}

fn failure_exit(failure: &Failure) -> (u8, &'static str) {
    match failure {
        Failure::NoCredential => (exit::NO_CREDENTIAL, "no_credential"),
        Failure::ProviderMismatch { .. } => (exit::NO_CREDENTIAL, "provider_mismatch"),
        Failure::NotRefreshable { .. } => (exit::NO_CREDENTIAL, "not_refreshable"),
        Failure::LoggedOut { .. } => (exit::NO_CREDENTIAL, "logged_out"),
        Failure::NeedsReauth(_) => (exit::NEEDS_REAUTH, "needs_reauth"),
        Failure::RotationNotStored { .. } => (exit::NEEDS_REAUTH, "rotation_not_stored"),
        Failure::InDoubt { .. } => (exit::IN_DOUBT, "in_doubt"),
        Failure::Transient { .. } => (exit::TRANSIENT, "transient"),
        Failure::Rejected { .. } => (exit::REJECTED, "rejected"),
        // A lock that failed with an error (an unsafe lock file or directory)
        // is a state-directory problem, not a wait that ran out.
        Failure::LockTimeout { error: Some(_), .. } => (exit::STORE, "lock_error"),
        Failure::LockTimeout { .. } => (exit::LOCK_TIMEOUT, "lock_timeout"),
        Failure::Store { fault, .. } => match fault.kind {
            StoreFaultKind::Corrupt => (exit::STORE, "store_corrupt"),
            StoreFaultKind::Unsafe => (exit::STORE, "store_unsafe"),
            StoreFaultKind::LockTimeout => (exit::STORE, "store_lock_timeout"),
            StoreFaultKind::Io => (exit::STORE, "store_io"),
        },
        Failure::Superseded { .. } => (exit::SUPERSEDED, "superseded"),
    }
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

fn print_granted(granted: &Granted, json: bool) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for warning in &granted.warnings {
        eprintln!("rotor token: warning: {warning}");
    }
    if json {
        let value = json!({
            "access_token": granted.access.expose(),
            "expires_at_ms": granted.expires_at_ms,
            "generation": granted.generation,
            "outcome": outcome_name(granted.outcome),
            "warnings": granted.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        });
        writeln!(stdout, "{value}")
    } else {
        writeln!(stdout, "{}", granted.access.expose())
    }
}

/// Runs `rotor token`.
pub fn run(args: TokenArgs) -> ExitCode {
    init_logs();
    let (state_dir, policy) = match resolve_settings("token", &args.state, &args.policy, args.json)
    {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let rotor = match Rotor::open(&state_dir) {
        Ok(rotor) => rotor.with_policy(policy),
        Err(error) => return report_error("token", &error, args.json),
    };
    let provider = match &args.provider {
        Some(provider) => provider.clone(),
        None => match rotor.provider_of(&args.agent, &args.profile) {
            Ok(Some(provider)) => provider,
            Ok(None) => {
                return report_error("token", &Error::Failed(Failure::NoCredential), args.json)
            }
            Err(error) => return report_error("token", &error, args.json),
        },
    };
    match rotor.token(&args.agent, &provider, &args.profile) {
        Ok(granted) => match print_granted(&granted, args.json) {
            Ok(()) => ExitCode::from(exit::OK),
            Err(error) => {
                eprintln!("rotor token: writing the token failed: {error}");
                ExitCode::from(exit::INTERNAL)
            }
        },
        Err(error) => report_error("token", &error, args.json),
    }
}
