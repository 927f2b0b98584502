//! One file per subcommand (and `backend`: the store they work on).
pub mod backend;
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
