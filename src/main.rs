//! The `rotor` command: a thin shell over the simulator (`check`, `replay`)
//! and the filesystem host (`login`, `logout`, `token`, `exec`, `status`,
//! `git-credential`), plus `completions` and `man` generated from the same
//! clap definitions.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cli;

/// Safe OAuth refresh-token rotation for many agents sharing one credential.
#[derive(Parser)]
#[command(name = "rotor", version, about)]
struct Rotor {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate many agents sharing one credential under faults and check G1..G11.
    Check(cli::check::CheckArgs),
    /// Replay one simulated run from its seed or its trace file.
    Replay(cli::replay::ReplayArgs),
    /// Import tokens, endpoint settings and identity into a store.
    Login(cli::login::LoginArgs),
    /// Log a profile out: a tombstone no refresh in flight can overwrite (G11).
    Logout(cli::logout::LogoutArgs),
    /// Print a usable access token, refreshing it safely if needed.
    Token(cli::token::TokenArgs),
    /// Run a program with a usable access token in its environment.
    Exec(cli::exec::ExecArgs),
    /// Show profiles, expiry, generation, fences, marks and lock holders.
    Status(cli::status::StatusArgs),
    /// A git credential helper: answers git with a rotor access token.
    GitCredential(cli::git_credential::GitCredentialArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cli::completions::CompletionsArgs),
    /// Print the man page, or write one per subcommand with --out-dir.
    Man(cli::man::ManArgs),
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`rotor check
    // --json | head`) would panic; a command-line tool should end quietly,
    // as the default action does.
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match Rotor::parse().command {
        Command::Check(args) => cli::check::run(args),
        Command::Replay(args) => cli::replay::run(args),
        Command::Login(args) => cli::login::run(args),
        Command::Logout(args) => cli::logout::run(args),
        Command::Token(args) => cli::token::run(args),
        Command::Exec(args) => cli::exec::run(args),
        Command::Status(args) => cli::status::run(args),
        Command::GitCredential(args) => cli::git_credential::run(args),
        Command::Completions(args) => cli::completions::run(args, Rotor::command()),
        Command::Man(args) => cli::man::run(args, Rotor::command()),
    }
}
