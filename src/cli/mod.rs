//! One file per subcommand.
pub mod check;
pub mod login;
pub mod replay;
pub mod status;
pub mod token;
