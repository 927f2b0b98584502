//! The state directory's layout, and the ids that name things in it (G9).
//!
//! ```text
//! <state>/                                  0700, owned by the user, never group/other-writable
//!   agents/main/auth-profiles.json          the main store
//!   agents/main/auth-profiles.json.lock     its sidecar store lock (never deleted)
//!   agents/<agent>/auth-profiles.json       one store per sub-agent
//!   locks/oauth-refresh/<key>.lock          refresh locks, <key> = LockKey (SPEC §4)
//! ```
//!
//! Only agent ids name a path, and they are checked against a strict
//! alphabet before use. Provider and profile ids never name a path: they are
//! hashed into the lock key (injective, SPEC §4) and used as JSON map keys.
//! They are still refused when empty, overlong, or carrying control
//! characters, which have no business in an id and would garble messages and
//! logs.

use std::fmt;
use std::path::{Path, PathBuf};

use rotor_kernel::LockKey;

/// The main agent's id; its store is the main store.
pub const MAIN_AGENT: &str = "main";

/// The file name of every store.
pub const STORE_FILE: &str = "auth-profiles.json";

/// Longest id accepted, in bytes.
pub const ID_BYTES_MAX: usize = 256;

/// Longest agent id accepted, in bytes.
pub const AGENT_ID_BYTES_MAX: usize = 64;

/// An id that was refused, and why (G9, G10).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} id {shown} refused: {reason}")]
pub struct IdError {
    /// Which kind of id: "agent", "provider", "profile".
    pub what: &'static str,
    /// The id, escaped for display (control characters made visible).
    pub shown: String,
    /// Why it was refused.
    pub reason: &'static str,
}

impl IdError {
    fn new(what: &'static str, id: &str, reason: &'static str) -> Self {
        let mut shown: String = id.chars().take(80).collect::<String>();
        if id.chars().count() > 80 {
            shown.push('…');
        }
        IdError {
            what,
            shown: format!("{shown:?}"),
            reason,
        }
    }
}

/// A checked agent id: 1..=64 bytes of `[A-Za-z0-9_.-]`, starting with a
/// letter or digit (so never `.`, `..`, hidden, or a path).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AgentId(String);

impl AgentId {
    /// Checks `id`.
    pub fn new(id: &str) -> Result<AgentId, IdError> {
        if id.is_empty() {
            return Err(IdError::new("agent", id, "it is empty"));
        }
        if id.len() > AGENT_ID_BYTES_MAX {
            return Err(IdError::new("agent", id, "it is longer than 64 bytes"));
        }
        if !id.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(IdError::new(
                "agent",
                id,
                "it must start with a letter or a digit",
            ));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(IdError::new(
                "agent",
                id,
                "only letters, digits, '_', '-' and '.' are allowed (it names a directory)",
            ));
        }
        Ok(AgentId(id.to_owned()))
    }

    /// The main agent.
    pub fn main() -> AgentId {
        AgentId(MAIN_AGENT.to_owned())
    }

    /// True for the main agent.
    pub fn is_main(&self) -> bool {
        self.0 == MAIN_AGENT
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a provider or profile id (`what` names which): non-empty, at most
/// 256 bytes, no control characters. Any other text is fine: these ids are
/// hashed, never joined into a path.
pub fn check_id(what: &'static str, id: &str) -> Result<(), IdError> {
    if id.trim().is_empty() {
        return Err(IdError::new(what, id, "it is empty"));
    }
    if id.len() > ID_BYTES_MAX {
        return Err(IdError::new(what, id, "it is longer than 256 bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(IdError::new(
            what,
            id,
            "it contains control characters (NUL, newline, escape…)",
        ));
    }
    Ok(())
}

/// Paths inside one state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root` (nothing is checked or created here).
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Components of an agent's store directory, relative to the root.
    pub fn agent_dir_components(agent: &AgentId) -> [&str; 2] {
        ["agents", agent.as_str()]
    }

    /// The directory holding every agent's store directory.
    pub fn agents_dir(&self) -> PathBuf {
        self.root.join("agents")
    }

    /// An agent's store file.
    pub fn store_path(&self, agent: &AgentId) -> PathBuf {
        self.agents_dir().join(agent.as_str()).join(STORE_FILE)
    }

    /// Components of the refresh-lock directory, relative to the root.
    pub const LOCK_DIR_COMPONENTS: [&'static str; 2] = ["locks", "oauth-refresh"];

    /// The refresh-lock directory.
    pub fn lock_dir(&self) -> PathBuf {
        self.root.join("locks").join("oauth-refresh")
    }

    /// The refresh-lock file of `key` (never deleted).
    pub fn lock_path(&self, key: &LockKey) -> PathBuf {
        self.lock_dir().join(key.file_name())
    }
}

/// The sidecar lock file of a store (`<store>.lock`, never deleted).
pub fn store_lock_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    store.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_agent_ids_are_refused_g9() {
        for id in [
            "", ".", "..", "../x", "a/b", "/abs", ".hidden", "a\0b", "a\nb", "-rf", "é", "a b",
            "a\\b",
        ] {
            let error = AgentId::new(id).unwrap_err();
            assert_eq!(error.what, "agent");
            assert!(error.to_string().contains("refused"), "{error}");
        }
        assert!(AgentId::new(&"a".repeat(65)).is_err());
        for id in ["main", "worker-1", "a.b_c", "7"] {
            assert_eq!(AgentId::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn provider_and_profile_ids_refuse_only_empty_long_and_control_g9() {
        assert!(check_id("profile", "").is_err());
        assert!(check_id("profile", "   ").is_err());
        assert!(check_id("profile", "a\0b").is_err());
        assert!(check_id("profile", "a\u{1b}[31m").is_err());
        assert!(check_id("profile", &"p".repeat(257)).is_err());
        // Path-like ids are fine: they are hashed, never joined into a path.
        assert!(check_id("profile", "../../etc/passwd").is_ok());
        assert!(check_id("profile", "acme:default").is_ok());
    }

    #[test]
    fn lock_paths_stay_inside_the_lock_dir_g9() {
        let layout = Layout::new("/state");
        let key = LockKey::new("../../..", "../../../etc/passwd");
        let path = layout.lock_path(&key);
        assert_eq!(path.parent().unwrap(), layout.lock_dir());
        assert!(path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("sha256-"));
        assert_eq!(
            store_lock_path(Path::new("/s/agents/main/auth-profiles.json")),
            Path::new("/s/agents/main/auth-profiles.json.lock")
        );
    }
}
