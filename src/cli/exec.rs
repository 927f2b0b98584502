//! `rotor exec`: gets a usable access token exactly like `rotor token`, then
//! runs a program with it in one environment variable. The token never
//! appears in the program's argv (which other users of the machine can read
//! in /proc), only in its environment (readable by the same user only).
use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitCode};

use super::token::{fetch, init_logs, usage_error, PolicyArgs, Query, StateDirArgs};

/// The program could not be executed (like a shell's 126).
pub const CANNOT_EXECUTE: u8 = 126;
/// The program was not found (like a shell's 127).
pub const NOT_FOUND: u8 = 127;

/// Arguments of `rotor exec`.
#[derive(clap::Args)]
#[command(after_help = "\
Example:
  rotor exec --profile acme:default -- sh -c 'curl -H \"Authorization: Bearer $ACCESS_TOKEN\" https://api.acme.example/'
  rotor exec --profile acme:default --env GH_TOKEN -- gh repo list

The program starts only once a token is had. From then on the exit status is the
program's (one killed by signal N shows in a shell as 128+N). Before, as `rotor token`:
   2  usage error (a bad --env NAME), or a refused agent/provider/profile id
   3  no credential (or logged out, another provider's, not refreshable): run `rotor login`
   4  needs a new login: the provider refused the refresh token, or its rotation was lost
   5  in doubt: the refresh was sent and its outcome is unknown; the token is fenced
   6  transient: the endpoint was unreachable and nothing was sent; try again
   7  rejected: the endpoint refused for another reason (client settings, rate limit)
   8  refresh lock timeout: the message names the holder and for how long
   9  store error: a corrupt, unsafe or unreadable store or lock file
  10  superseded: a login or logout changed the credential meanwhile; try again
 126  the program could not be executed
 127  the program was not found
   1  internal error")]
pub struct ExecArgs {
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
    /// The environment variable that receives the access token.
    #[arg(long = "env", value_name = "NAME", default_value = "ACCESS_TOKEN")]
    pub env: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The program to run and its arguments (after `--`).
    #[arg(
        value_name = "PROGRAM",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// A portable environment variable name: a letter or `_`, then letters,
/// digits and `_` (POSIX's "name"; `=` or NUL would corrupt the environment).
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Runs `rotor exec`.
pub fn run(args: ExecArgs) -> ExitCode {
    init_logs();
    if !valid_env_name(&args.env) {
        let message = format!(
            "--env {:?} is not an environment variable name (a letter or _, then letters, digits, _)",
            args.env
        );
        return usage_error("exec", &message, false);
    }
    let Some((program, program_args)) = args.command.split_first() else {
        return usage_error(
            "exec",
            "no program to run: rotor exec … -- PROGRAM [ARGS…]",
            false,
        );
    };
    let query = Query {
        command: "exec",
        state: &args.state,
        policy: &args.policy,
        agent: &args.agent,
        provider: args.provider.as_deref(),
        profile: &args.profile,
        json: false,
    };
    // No token, no program: the failure is reported with the exit code of
    // `rotor token` and nothing is started.
    let granted = match fetch(&query) {
        Ok(granted) => granted,
        Err(code) => return code,
    };
    let mut command = Command::new(program);
    command
        .args(program_args)
        .env(&args.env, granted.access.expose());
    drop(granted);
    run_program(command, program)
}

/// Replaces this process with the program (exec), so that its exit status,
/// or its death by a signal (which a shell shows as 128+N), reaches the
/// caller unchanged, and signals sent to this pid (a supervisor's SIGTERM,
/// job control) reach the program with no forwarding layer to get wrong;
/// no rotor process lingers with the token in memory either. Nothing rotor
/// holds crosses the exec: the refresh lock was released when the token was
/// resolved, and std opens every file close-on-exec. Returns only when the
/// exec failed.
#[cfg(unix)]
fn run_program(mut command: Command, program: &OsStr) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let error = command.exec();
    exec_failed(program, &error)
}

/// Elsewhere: run the program, wait, and pass its exit code on.
#[cfg(not(unix))]
fn run_program(mut command: Command, program: &OsStr) -> ExitCode {
    match command.status() {
        Ok(status) => ExitCode::from(
            status
                .code()
                .and_then(|code| u8::try_from(code).ok())
                .unwrap_or(super::token::exit::INTERNAL),
        ),
        Err(error) => exec_failed(program, &error),
    }
}

fn exec_failed(program: &OsStr, error: &std::io::Error) -> ExitCode {
    eprintln!(
        "rotor exec: cannot run {}: {error}",
        program.to_string_lossy()
    );
    if error.kind() == std::io::ErrorKind::NotFound {
        ExitCode::from(NOT_FOUND)
    } else {
        ExitCode::from(CANNOT_EXECUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_env_name;

    #[test]
    fn env_names() {
        for good in ["ACCESS_TOKEN", "_x", "GH_TOKEN2", "a"] {
            assert!(valid_env_name(good), "{good}");
        }
        for bad in ["", "1X", "A-B", "A=B", "A B", "A\0", "É"] {
            assert!(!valid_env_name(bad), "{bad:?}");
        }
    }
}
