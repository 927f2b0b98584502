//! `rotor git-credential`: a git credential helper (gitcredentials(7),
//! git-credential(1)) that answers git's `get` with a rotor access token,
//! refreshed safely like `rotor token`.
//!
//! git runs the helper with the action (`get`, `store`, `erase`) as its last
//! argument and writes `key=value` lines on its stdin, ended by a blank line
//! or EOF. The host (and, with `credential.useHttpPath`, the path) is mapped
//! to a profile by `--profile` or by `<state>/git-credentials.json`:
//!
//! ```json
//! {"hosts": {"git.example.com": {"profile": "acme:default", "username": "x-access-token"},
//!            "git.example.com/acme": {"profile": "acme:ci", "agent": "ci"}}}
//! ```
//!
//! The file is read like a store (G9): without following a symlink, and
//! refused when it or the state directory is writable by group or others
//! or owned by another user. A host nobody mapped gets no answer (exit 0),
//! so git asks its next helper, as the protocol wants. The token goes to
//! stdout only, never to argv or logs.
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rotor_fs::safe_fs::{self, unsafe_path};
use rotor_kernel::StoreFault;
use serde_json::Value;

use super::backend::{Backend, BackendError};
use super::token::{exit, init_logs, resolve_settings, usage_error, PolicyArgs, StateDirArgs};

/// The host map's file name inside the state directory.
pub const CONFIG_FILE: &str = "git-credentials.json";

/// The username given to git when neither the mapping nor git names one.
pub const DEFAULT_USERNAME: &str = "x-access-token";

const HELP: &str = concat!(
    "git runs the helper with its action last: get prints username=, password= (the access\n",
    "token, refreshed if needed) and password_expiry_utc= for a mapped host. store and erase\n",
    "do nothing: rotor owns the token's lifecycle. git calls erase after any 401 (a missing\n",
    "scope or repository permission as well as a dead token), and logging out there would\n",
    "cut off every agent sharing the credential; if the credential is really dead,\n",
    "`rotor token` says so and `rotor login` replaces it. Other actions are ignored.\n\n",
    "Which profile: --profile answers every host git asks this helper about (scope it with\n",
    "git's credential.<url>.helper); without it, the host is looked up in\n",
    "<state dir>/git-credentials.json (one entry per host, or host/path-prefix when git sends\n",
    "paths: credential.useHttpPath true; the longest match wins):\n",
    "  {\"hosts\": {\"git.example.com\": {\"profile\": \"acme:default\", \"agent\": \"main\",\n",
    "                                  \"provider\": \"acme\", \"username\": \"x-access-token\"}}}\n",
    "Only profile is required. The file must not be writable by group or others.\n",
    "A host with no entry gets no answer (exit 0), so git tries its next helper;\n",
    "ROTOR_LOG=debug says why on stderr. Tokens go only to https URLs, or http on a\n",
    "loopback host.\n\n",
    "Examples:\n",
    "  git config --global credential.https://git.example.com.helper \\\n",
    "      '!rotor git-credential --profile acme:default'\n",
    "  git config --global credential.helper '!rotor git-credential'   # hosts from the file\n",
    "  printf 'protocol=https\\nhost=git.example.com\\n\\n' | rotor git-credential get\n\n",
    "Exit codes: those of `rotor token` (see `rotor token --help`): 0 answered or nothing\n",
    "to answer, 2 usage or a malformed git-credentials.json, 3 no credential (run\n",
    "`rotor login`), 4 needs a new login, 9 an unsafe or unreadable state directory or file, ..."
);

/// Arguments of `rotor git-credential`.
#[derive(clap::Args)]
#[command(after_help = HELP)]
pub struct GitCredentialArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Answer every host with this profile (default: look the host up in
    /// <state dir>/git-credentials.json).
    #[arg(long)]
    pub profile: Option<String>,
    /// With --profile: the agent asking ("main" or a sub-agent id).
    #[arg(long, requires = "profile")]
    pub agent: Option<String>,
    /// With --profile: the provider id (default: the one stored for the profile).
    #[arg(long, requires = "profile")]
    pub provider: Option<String>,
    /// With --profile: the username given to git (default: the one git sent,
    /// else x-access-token).
    #[arg(long, requires = "profile")]
    pub username: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// What git asks: get, store or erase (git appends it last).
    #[arg(value_name = "ACTION")]
    pub action: String,
}

/// Where a host's token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub profile: String,
    pub agent: String,
    pub provider: Option<String>,
    pub username: Option<String>,
}

/// Why the host map could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// Unsafe (symlink, permissions, owner) or unreadable: exit STORE.
    Store(StoreFault),
    /// Not the expected JSON: exit USAGE, the message says what to fix.
    Malformed { path: PathBuf, problem: String },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Store(fault) => f.write_str(&fault.detail),
            ConfigError::Malformed { path, problem } => write!(
                f,
                "{}: {problem}; expected {{\"hosts\": {{\"HOST[/PATH]\": {{\"profile\": \"ID\", \
                 \"agent\"?, \"provider\"?, \"username\"?}}}}}} (see `rotor git-credential --help`)",
                path.display()
            ),
        }
    }
}

impl ConfigError {
    fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Store(_) => exit::STORE,
            ConfigError::Malformed { .. } => exit::USAGE,
        }
    }
}

/// The host map: keys are `host` or `host/path-prefix` (lowercased host,
/// prefix without surrounding slashes).
#[derive(Debug, Default)]
pub struct HostMap {
    entries: BTreeMap<String, Mapping>,
}

/// A value git may put in a `key=value` line of ours: no newline or NUL.
fn protocol_safe(value: &str) -> bool {
    !value.contains(['\n', '\r', '\0'])
}

impl HostMap {
    /// Parses the file's JSON; `path` names it in messages.
    pub fn parse(path: &Path, text: &[u8]) -> Result<HostMap, ConfigError> {
        let malformed = |problem: String| ConfigError::Malformed {
            path: path.to_path_buf(),
            problem,
        };
        let value: Value = serde_json::from_slice(text)
            .map_err(|error| malformed(format!("not JSON ({error})")))?;
        let root = value
            .as_object()
            .ok_or_else(|| malformed("not a JSON object".into()))?;
        if let Some(key) = root.keys().find(|key| *key != "hosts") {
            return Err(malformed(format!("unknown key {key:?}")));
        }
        let hosts = match root.get("hosts") {
            None => return Ok(HostMap::default()),
            Some(hosts) => hosts
                .as_object()
                .ok_or_else(|| malformed("\"hosts\" is not an object".into()))?,
        };
        let mut entries = BTreeMap::new();
        for (key, entry) in hosts {
            let at = |problem: &str| malformed(format!("hosts.{key:?}: {problem}"));
            let entry = entry.as_object().ok_or_else(|| at("not an object"))?;
            let mut fields = BTreeMap::new();
            for (name, value) in entry {
                if !["profile", "agent", "provider", "username"].contains(&name.as_str()) {
                    return Err(at(&format!(
                        "unknown key {name:?} (known: profile, agent, provider, username)"
                    )));
                }
                let text = value
                    .as_str()
                    .filter(|text| !text.is_empty() && protocol_safe(text))
                    .ok_or_else(|| at(&format!("{name} is not a non-empty one-line string")))?;
                fields.insert(name.as_str(), text.to_owned());
            }
            let mapping = Mapping {
                profile: fields
                    .remove("profile")
                    .ok_or_else(|| at("no \"profile\""))?,
                agent: fields.remove("agent").unwrap_or_else(|| "main".into()),
                provider: fields.remove("provider"),
                username: fields.remove("username"),
            };
            let normalized =
                normalize_key(key).ok_or_else(|| at("the key is not HOST or HOST/PATH"))?;
            if entries.insert(normalized, mapping).is_some() {
                return Err(at("the same host and path as another entry"));
            }
        }
        Ok(HostMap { entries })
    }

    /// The mapping of `host` (as git sends it, with any port) and `path`
    /// (sent only with credential.useHttpPath): the longest matching key.
    pub fn lookup(&self, host: &str, path: Option<&str>) -> Option<&Mapping> {
        let host = host.to_ascii_lowercase();
        let path = path.map(|p| p.trim_matches('/')).unwrap_or("");
        let mut best: Option<(usize, &Mapping)> = None;
        for (key, mapping) in &self.entries {
            let (key_host, prefix) = key.split_once('/').unwrap_or((key, ""));
            if key_host != host {
                continue;
            }
            let matches = prefix.is_empty()
                || path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'));
            if matches && best.is_none_or(|(length, _)| prefix.len() > length) {
                best = Some((prefix.len(), mapping));
            }
        }
        best.map(|(_, mapping)| mapping)
    }
}

/// `HOST` or `HOST/PATH-PREFIX` → lowercased host, prefix without slashes.
fn normalize_key(key: &str) -> Option<String> {
    let (host, prefix) = key.split_once('/').unwrap_or((key, ""));
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let prefix = prefix.trim_matches('/');
    let host = host.to_ascii_lowercase();
    Some(if prefix.is_empty() {
        host
    } else {
        format!("{host}/{prefix}")
    })
}

/// Reads `<state>/git-credentials.json` like a store: the state directory
/// must be safe (not a symlink, ours, not group/other-writable), the file
/// is opened without following a symlink, must be a regular file owned by
/// the state directory's owner and not writable by group or others.
/// `None` when the directory or the file does not exist.
pub fn read_host_map(state_dir: &Path) -> Result<Option<HostMap>, ConfigError> {
    match std::fs::symlink_metadata(state_dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => safe_fs::check_root(state_dir, false).map_err(ConfigError::Store)?,
    }
    let path = state_dir.join(CONFIG_FILE);
    let Some(mut file) = safe_fs::open_read(&path).map_err(ConfigError::Store)? else {
        return Ok(None);
    };
    let io_error =
        |error: std::io::Error| ConfigError::Store(safe_fs::io_fault(&path, "reading", &error));
    let meta = file.metadata().map_err(io_error)?;
    let owner = std::fs::symlink_metadata(state_dir)
        .map_err(io_error)?
        .uid();
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(ConfigError::Store(unsafe_path(
            &path,
            &format!(
                "it is writable by group or others (mode {mode:04o}); run `chmod 600 {}`",
                path.display()
            ),
        )));
    }
    if meta.uid() != owner {
        return Err(ConfigError::Store(unsafe_path(
            &path,
            &format!(
                "it is owned by uid {}, not by the state directory's owner (uid {owner})",
                meta.uid()
            ),
        )));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io_error)?;
    HostMap::parse(&path, &bytes).map(Some)
}

/// What git wrote on stdin: the `key=value` lines up to a blank line or
/// EOF. Multi-valued keys (`key[]`) keep their last value; nothing here is
/// ever logged (store and erase carry the password).
pub fn read_request(input: &mut impl BufRead) -> std::io::Result<BTreeMap<String, String>> {
    let mut request = BTreeMap::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once('=') {
            request.insert(key.to_owned(), value.to_owned());
        }
    }
    Ok(request)
}

/// Whether a token may be sent to `protocol://host`: https, or http to a
/// loopback host (a local proxy or test server).
fn protocol_allowed(protocol: &str, host: &str) -> bool {
    match protocol {
        "https" => true,
        "http" => {
            let name = match host.strip_prefix('[') {
                Some(rest) => rest.split(']').next().unwrap_or(""),
                None => host.split(':').next().unwrap_or(""),
            };
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// Runs `rotor git-credential`.
pub fn run(args: GitCredentialArgs) -> ExitCode {
    init_logs();
    // Read git's request whatever the action: git writes it before reading
    // anything back, and a helper that leaves early breaks its pipe.
    let request = match read_request(&mut std::io::stdin().lock()) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("rotor git-credential: reading git's request from stdin: {error}");
            return ExitCode::from(exit::USAGE);
        }
    };
    match args.action.as_str() {
        "get" => get(&args, &request),
        "store" | "erase" => {
            tracing::debug!(action = %args.action, "nothing to do: rotor owns the token's lifecycle");
            ExitCode::from(exit::OK)
        }
        other => {
            // gitcredentials(7): unknown actions are ignored, for future ones.
            tracing::debug!(action = other, "unknown action ignored");
            ExitCode::from(exit::OK)
        }
    }
}

fn get(args: &GitCredentialArgs, request: &BTreeMap<String, String>) -> ExitCode {
    let (state_dir, policy) =
        match resolve_settings("git-credential", &args.state, &args.policy, false) {
            Ok(settings) => settings,
            Err(code) => return code,
        };
    let (Some(protocol), Some(host)) = (request.get("protocol"), request.get("host")) else {
        tracing::debug!("git sent no protocol or host: nothing to answer");
        return ExitCode::from(exit::OK);
    };
    if !protocol_allowed(protocol, host) {
        tracing::debug!(
            protocol,
            host,
            "not https (nor http to a loopback host): no token sent"
        );
        return ExitCode::from(exit::OK);
    }
    let path = request.get("path").map(String::as_str);
    let mapping = match &args.profile {
        Some(profile) => Mapping {
            profile: profile.clone(),
            agent: args.agent.clone().unwrap_or_else(|| "main".into()),
            provider: args.provider.clone(),
            username: args.username.clone(),
        },
        None => {
            let map = match read_host_map(&state_dir) {
                Ok(Some(map)) => map,
                Ok(None) => {
                    tracing::debug!(
                        file = %state_dir.join(CONFIG_FILE).display(),
                        "no host map and no --profile: nothing to answer"
                    );
                    return ExitCode::from(exit::OK);
                }
                Err(error) => {
                    eprintln!("rotor git-credential: {error}");
                    return ExitCode::from(error.exit_code());
                }
            };
            match map.lookup(host, path) {
                Some(mapping) => mapping.clone(),
                None => {
                    tracing::debug!(
                        host,
                        path,
                        "host not in git-credentials.json: nothing to answer"
                    );
                    return ExitCode::from(exit::OK);
                }
            }
        }
    };
    // A mapping that names a user answers only for that user (git sends the
    // one in the URL, e.g. https://alice@host/), like git's own helpers.
    let username = match (&mapping.username, request.get("username")) {
        (Some(mine), Some(asked)) if mine != asked => {
            tracing::debug!(
                host,
                "git asks for another username than the mapping's: nothing to answer"
            );
            return ExitCode::from(exit::OK);
        }
        (Some(mine), _) => mine.clone(),
        (None, Some(asked)) => asked.clone(),
        (None, None) => DEFAULT_USERNAME.to_owned(),
    };
    if !protocol_safe(&username) {
        return usage_error("git-credential", "the username has a line break", false);
    }
    let store = match args.state.store_url() {
        Ok(store) => store,
        Err(message) => return usage_error("git-credential", &message, false),
    };
    let granted = match token(store.as_deref(), &state_dir, policy, &mapping) {
        Ok(granted) => granted,
        Err(error) => {
            let (code, _) = error.exit();
            eprintln!(
                "rotor git-credential: profile {} (agent {}) for {host}: {error}",
                mapping.profile, mapping.agent
            );
            return ExitCode::from(code);
        }
    };
    for warning in &granted.warnings {
        eprintln!("rotor git-credential: warning: {warning}");
    }
    let access = granted.access.expose();
    if !protocol_safe(access) {
        eprintln!("rotor git-credential: the access token has a line break; not giving it to git");
        return ExitCode::from(exit::INTERNAL);
    }
    let mut answer = format!("username={username}\npassword={access}\n");
    if let Some(ms) = granted.expires_at_ms {
        answer.push_str(&format!("password_expiry_utc={}\n", ms.div_euclid(1000)));
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(answer.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            eprintln!("rotor git-credential: writing the answer failed: {error}");
            ExitCode::from(exit::INTERNAL)
        }
    }
}

/// The token for `mapping`, from the PostgreSQL store at `store` (the host
/// map, if any, still comes from the state directory) or the state directory.
fn token(
    store: Option<&str>,
    state_dir: &Path,
    policy: rotor_kernel::Policy,
    mapping: &Mapping,
) -> Result<rotor_kernel::Granted, BackendError> {
    let rotor = Backend::open_with(store, state_dir, policy)?;
    let provider = rotor.provider(
        mapping.provider.as_deref(),
        &mapping.agent,
        &mapping.profile,
    )?;
    rotor.token(&mapping.agent, &provider, &mapping.profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> Result<HostMap, ConfigError> {
        HostMap::parse(Path::new("git-credentials.json"), json.as_bytes())
    }

    #[test]
    fn the_longest_host_and_path_prefix_wins_and_hosts_ignore_case() {
        let map = map(r#"{"hosts": {
            "Git.Example.com": {"profile": "a:host"},
            "git.example.com/acme/": {"profile": "a:acme", "agent": "ci"},
            "git.example.com/acme/tools": {"profile": "a:tools"},
            "git.example.com:8443": {"profile": "a:port"}}}"#)
        .unwrap();
        let profile =
            |host: &str, path: Option<&str>| map.lookup(host, path).map(|m| m.profile.as_str());
        assert_eq!(profile("git.example.com", None), Some("a:host"));
        assert_eq!(
            profile("GIT.example.com", Some("other/x.git")),
            Some("a:host")
        );
        assert_eq!(
            profile("git.example.com", Some("acme/x.git")),
            Some("a:acme")
        );
        assert_eq!(profile("git.example.com", Some("acme")), Some("a:acme"));
        // A prefix matches whole path components only.
        assert_eq!(
            profile("git.example.com", Some("acmecorp/x.git")),
            Some("a:host")
        );
        assert_eq!(
            profile("git.example.com", Some("acme/tools/y.git")),
            Some("a:tools")
        );
        assert_eq!(profile("git.example.com:8443", None), Some("a:port"));
        assert_eq!(profile("example.com", None), None);
        assert_eq!(
            map.lookup("git.example.com", Some("acme/x")).unwrap().agent,
            "ci"
        );
    }

    #[test]
    fn malformed_maps_name_the_problem() {
        for (json, needle) in [
            ("[]", "not a JSON object"),
            (r#"{"host": {}}"#, "unknown key \"host\""),
            (
                r#"{"hosts": {"h": {"profle": "x"}}}"#,
                "unknown key \"profle\"",
            ),
            (r#"{"hosts": {"h": {"agent": "x"}}}"#, "no \"profile\""),
            (r#"{"hosts": {"h": {"profile": 3}}}"#, "profile is not"),
            (r#"{"hosts": {"h": {"profile": "a\nb"}}}"#, "profile is not"),
            (
                r#"{"hosts": {"h": {"profile": "a"}, "H/": {"profile": "b"}}}"#,
                "another entry",
            ),
            ("{", "not JSON"),
        ] {
            let error = map(json).unwrap_err().to_string();
            assert!(error.contains(needle), "{json}: {error}");
            assert!(error.contains("git-credentials.json"), "{error}");
        }
    }

    #[test]
    fn requests_end_at_a_blank_line_and_keep_everything_after_the_first_equals() {
        let input =
            "protocol=https\nhost=h\nwwwauth[]=Basic realm=\"x\"\npassword=a=b\n\nhost=late\n";
        let request = read_request(&mut input.as_bytes()).unwrap();
        assert_eq!(request["host"], "h");
        assert_eq!(request["password"], "a=b");
        assert_eq!(request["wwwauth[]"], "Basic realm=\"x\"");
    }

    #[test]
    fn tokens_go_only_to_https_or_loopback_http() {
        assert!(protocol_allowed("https", "git.example.com"));
        assert!(!protocol_allowed("http", "git.example.com"));
        assert!(!protocol_allowed("http", "127.0.0.1.example.com"));
        assert!(protocol_allowed("http", "127.0.0.1:8080"));
        assert!(protocol_allowed("http", "localhost"));
        assert!(protocol_allowed("http", "[::1]:80"));
        assert!(!protocol_allowed("ssh", "git.example.com"));
    }
}
