//! One file per subcommand.
pub mod check;
pub mod completions;
pub mod exec;
pub mod git_credential;
pub mod login;
pub mod logout;
pub mod man;
pub mod replay;
pub mod status;
pub mod token;
