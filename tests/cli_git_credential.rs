//! `rotor git-credential` end to end: a real git (`git credential fill`,
//! `approve`, `reject`) runs the real rotor binary as its credential helper
//! against a real state directory and a local OAuth token endpoint.
mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{force_expiry, login, rotor, run_with_stdin, state_dir, status_json, TokenServer};

const PROFILE: &str = "acme:default";
const HOST: &str = "git.example.com";

/// Every git on this machine (the newest first); fails when there is none.
fn gits() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let candidates = [
        std::env::var_os("ROTOR_TEST_GIT").map(PathBuf::from),
        Some("/usr/local/bin/git".into()),
        Some("/usr/bin/git".into()),
    ];
    for path in candidates.into_iter().flatten() {
        let runs = Command::new(&path)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if runs && !found.contains(&path) {
            found.push(path);
        }
    }
    if found.is_empty() {
        if let Ok(output) = Command::new("git").arg("--version").output() {
            if output.status.success() {
                found.push("git".into());
            }
        }
    }
    assert!(
        !found.is_empty(),
        "these tests need git: install it (Debian/Ubuntu: `apt-get install git`) \
         or point ROTOR_TEST_GIT at one"
    );
    found
}

fn git() -> PathBuf {
    gits().remove(0)
}

/// (major, minor) of a git binary.
fn git_version(git: &Path) -> (u32, u32) {
    let output = Command::new(git).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut numbers = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("git --version printed {text:?}"))
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// The helper as git's config names it: a shell snippet running this rotor.
fn helper(state: &Path, extra: &str) -> String {
    format!(
        "!'{}' git-credential --state-dir '{}' {extra}",
        env!("CARGO_BIN_EXE_rotor"),
        state.display()
    )
}

/// `git -c credential.helper= -c credential.helper=<helper> credential <action>`
/// with `input` on stdin, isolated from the user's and the system's git
/// configuration, never prompting.
fn git_credential(git: &Path, helper: &str, action: &str, input: &str, config: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(git);
    command
        .env("HOME", home.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .env_remove("ROTOR_LOG")
        .env_remove("ROTOR_STATE_DIR")
        .args(["-c", "credential.helper="])
        .args(["-c", &format!("credential.helper={helper}")]);
    for item in config {
        command.args(["-c", item]);
    }
    command.args(["credential", action]);
    run_with_stdin(&mut command, input)
}

fn fill(git: &Path, helper: &str, input: &str) -> Output {
    git_credential(git, helper, "fill", input, &[])
}

fn https(host: &str) -> String {
    format!("protocol=https\nhost={host}\n\n")
}

/// The `key=value` lines of git's answer.
fn answer(output: &Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value(output: &Output, key: &str) -> Option<String> {
    answer(output)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_config(state: &Path, json: &str) -> PathBuf {
    let path = state.join("git-credentials.json");
    std::fs::write(&path, json).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A state directory logged in to `PROFILE` (at-0 / rt-0, an hour left)
/// with `HOST` mapped to it, and the token server that rotates rt-0.
fn mapped() -> (tempfile::TempDir, PathBuf, TokenServer) {
    let server = TokenServer::start("rt-0", 3600);
    let (temp, state) = state_dir();
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    write_config(
        &state,
        &format!(
            r#"{{"hosts": {{"{HOST}": {{"profile": "{PROFILE}", "username": "x-access-token"}}}}}}"#
        ),
    );
    (temp, state, server)
}

/// The helper run directly, as git would run it, with `input` on stdin.
fn helper_direct(state: &Path, args: &[&str], input: &str) -> Output {
    let mut command = rotor();
    command
        .args(["git-credential", "--state-dir"])
        .arg(state)
        .args(args);
    run_with_stdin(&mut command, input)
}

#[test]
fn git_fill_gets_the_stored_token_of_a_mapped_host_from_every_git() {
    let (_temp, state, server) = mapped();
    for git in gits() {
        let output = fill(&git, &helper(&state, ""), &https(HOST));
        assert!(output.status.success(), "{}: {output:?}", git.display());
        assert_eq!(
            value(&output, "password").as_deref(),
            Some("at-0"),
            "{output:?}"
        );
        assert_eq!(
            value(&output, "username").as_deref(),
            Some("x-access-token")
        );
        assert_eq!(value(&output, "host").as_deref(), Some(HOST));
        // git >= 2.41 understands the expiry and passes it on.
        if git_version(&git) >= (2, 41) {
            let expiry: i64 = value(&output, "password_expiry_utc")
                .unwrap_or_else(|| {
                    panic!("no password_expiry_utc from {}: {output:?}", git.display())
                })
                .parse()
                .unwrap();
            let now_s = rotor_fs::lock::now_ms() / 1000;
            assert!(
                (now_s + 3500..=now_s + 3601).contains(&expiry),
                "expiry {expiry}, now {now_s}"
            );
        }
        assert!(!String::from_utf8_lossy(&output.stdout).contains("rt-0"));
    }
    assert!(server.exchanges().is_empty(), "a fresh token was refreshed");
}

#[test]
fn an_expired_token_is_refreshed_once_and_the_new_one_given_to_git() {
    let (_temp, state, server) = mapped();
    force_expiry(&state, "main", PROFILE);
    let git = git();
    let output = fill(&git, &helper(&state, ""), &https(HOST));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        value(&output, "password").as_deref(),
        Some("at-1"),
        "{output:?}"
    );
    assert_eq!(server.exchanges(), vec![("rt-0".into(), "at-1".into())]);
    // The next fill is served from the store: still one exchange.
    let again = fill(&git, &helper(&state, ""), &https(HOST));
    assert_eq!(
        value(&again, "password").as_deref(),
        Some("at-1"),
        "{again:?}"
    );
    assert_eq!(server.exchanges().len(), 1);
    server.assert_each_token_presented_once();
}

#[test]
fn an_unknown_host_gets_no_answer_so_git_falls_through() {
    let (_temp, state, server) = mapped();
    let git = git();
    let output = fill(&git, &helper(&state, ""), &https("other.example.com"));
    assert!(!output.status.success(), "git got a credential: {output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("at-0") && !stdout.contains("password="),
        "{stdout}"
    );
    assert!(
        !stderr(&output).contains("rotor"),
        "rotor spoke about a host it does not know at the default log level: {}",
        stderr(&output)
    );
    // Run directly: exit 0 and nothing on stdout (the protocol's "no answer"),
    // and a note on stderr only at debug level.
    let direct = helper_direct(&state, &["get"], &https("other.example.com"));
    assert_eq!(direct.status.code(), Some(0), "{direct:?}");
    assert!(
        direct.stdout.is_empty() && direct.stderr.is_empty(),
        "{direct:?}"
    );
    let mut command = rotor();
    command
        .env("ROTOR_LOG", "debug")
        .args(["git-credential", "--state-dir"])
        .arg(&state)
        .arg("get");
    let debug = run_with_stdin(&mut command, &https("other.example.com"));
    assert_eq!(debug.status.code(), Some(0));
    assert!(debug.stdout.is_empty());
    assert!(
        stderr(&debug).contains("not in git-credentials.json"),
        "{}",
        stderr(&debug)
    );
    // Plain http to a remote host never gets the token, even when mapped.
    let http = helper_direct(&state, &["get"], &format!("protocol=http\nhost={HOST}\n\n"));
    assert_eq!(http.status.code(), Some(0));
    assert!(http.stdout.is_empty(), "{http:?}");
    assert!(server.exchanges().is_empty());
}

#[test]
fn the_profile_option_answers_without_a_host_map() {
    let server = TokenServer::start("rt-0", 3600);
    let (_temp, state) = state_dir();
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    // The non-! form: an absolute path, options before the action git appends.
    let helper = format!(
        "{} git-credential --state-dir {} --profile {PROFILE} --username oauth2",
        env!("CARGO_BIN_EXE_rotor"),
        state.display()
    );
    let git = git();
    let output = fill(&git, &helper, &https("any.example.org"));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(value(&output, "password").as_deref(), Some("at-0"));
    assert_eq!(value(&output, "username").as_deref(), Some("oauth2"));
    // Without --username, the one git sends (from the URL) is kept.
    let bare = format!(
        "{} git-credential --state-dir {} --profile {PROFILE}",
        env!("CARGO_BIN_EXE_rotor"),
        state.display()
    );
    let output = fill(&git, &bare, "url=https://bob@any.example.org/r.git\n\n");
    assert_eq!(
        value(&output, "username").as_deref(),
        Some("bob"),
        "{output:?}"
    );
    assert_eq!(value(&output, "password").as_deref(), Some("at-0"));
}

#[test]
fn a_path_prefix_picks_its_profile_when_git_sends_paths() {
    let server = TokenServer::start("rt-0", 3600);
    let (_temp, state) = state_dir();
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    login(
        &state,
        "main",
        "acme:tools",
        &server.url,
        "at-tools",
        "rt-tools",
    );
    write_config(
        &state,
        &format!(
            r#"{{"hosts": {{"{HOST}": {{"profile": "{PROFILE}"}},
                           "{HOST}/acme/tools": {{"profile": "acme:tools"}}}}}}"#
        ),
    );
    let git = git();
    let with_path = |url: &str| {
        git_credential(
            &git,
            &helper(&state, ""),
            "fill",
            &format!("url={url}\n\n"),
            &["credential.useHttpPath=true"],
        )
    };
    let tools = with_path("https://git.example.com/acme/tools/x.git");
    assert_eq!(
        value(&tools, "password").as_deref(),
        Some("at-tools"),
        "{tools:?}"
    );
    let other = with_path("https://git.example.com/acme/toolsmith.git");
    assert_eq!(
        value(&other, "password").as_deref(),
        Some("at-0"),
        "{other:?}"
    );
    // Without useHttpPath git sends no path: the host entry answers.
    let hostwide = fill(
        &git,
        &helper(&state, ""),
        "url=https://git.example.com/acme/tools/x.git\n\n",
    );
    assert_eq!(value(&hostwide, "password").as_deref(), Some("at-0"));
    // A mapping that names a user does not answer for another user.
    write_config(
        &state,
        &format!(r#"{{"hosts": {{"{HOST}": {{"profile": "{PROFILE}", "username": "ci-bot"}}}}}}"#),
    );
    let alice = fill(
        &git,
        &helper(&state, ""),
        "url=https://alice@git.example.com/r.git\n\n",
    );
    assert!(!alice.status.success(), "{alice:?}");
    assert!(!String::from_utf8_lossy(&alice.stdout).contains("at-0"));
}

#[test]
fn a_missing_credential_gives_the_token_exit_code_and_git_shows_why() {
    let (_temp, state, _server) = mapped();
    let unknown = helper_direct(&state, &["--profile", "acme:nobody", "get"], &https(HOST));
    assert_eq!(unknown.status.code(), Some(3), "{unknown:?}");
    assert!(unknown.stdout.is_empty());
    assert!(
        stderr(&unknown).contains("rotor login"),
        "{}",
        stderr(&unknown)
    );
    assert!(
        stderr(&unknown).contains("acme:nobody"),
        "{}",
        stderr(&unknown)
    );

    let git = git();
    let output = fill(&git, &helper(&state, "--profile acme:nobody"), &https(HOST));
    assert!(!output.status.success(), "{output:?}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("password="));
    assert!(
        stderr(&output).contains("rotor git-credential: profile acme:nobody"),
        "git did not pass rotor's message on: {}",
        stderr(&output)
    );
}

#[test]
fn a_refused_refresh_token_gives_needs_reauth_directly_and_through_git() {
    // The server never issued rt-stale: the refresh is refused (invalid_grant).
    let server = TokenServer::start("rt-0", 3600);
    let (_temp, state) = state_dir();
    login(&state, "main", PROFILE, &server.url, "at-stale", "rt-stale");
    write_config(
        &state,
        &format!(r#"{{"hosts": {{"{HOST}": {{"profile": "{PROFILE}"}}}}}}"#),
    );
    force_expiry(&state, "main", PROFILE);
    let direct = helper_direct(&state, &["get"], &https(HOST));
    assert_eq!(direct.status.code(), Some(4), "{direct:?}");
    assert!(direct.stdout.is_empty(), "{direct:?}");
    assert!(
        stderr(&direct).contains("needs a new login"),
        "{}",
        stderr(&direct)
    );
    let output = fill(&git(), &helper(&state, ""), &https(HOST));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("needs a new login"),
        "{}",
        stderr(&output)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("at-stale"));
}

#[test]
fn approve_and_reject_leave_the_credential_alone() {
    let (_temp, state, server) = mapped();
    let git = git();
    let rejected =
        format!("protocol=https\nhost={HOST}\nusername=x-access-token\npassword=at-0\n\n");
    for action in ["approve", "reject"] {
        let output = git_credential(&git, &helper(&state, ""), action, &rejected, &[]);
        assert!(output.status.success(), "{action}: {output:?}");
        assert!(
            output.stdout.is_empty() && output.stderr.is_empty(),
            "{action}: {output:?}"
        );
    }
    // Directly too, with the action last, and an action git may add later.
    for action in ["store", "erase", "future-action"] {
        let output = helper_direct(&state, &[action], &rejected);
        assert_eq!(output.status.code(), Some(0), "{action}: {output:?}");
        assert!(output.stdout.is_empty(), "{action}: {output:?}");
    }
    let profile = &status_json(&state)["stores"][0]["profiles"][PROFILE];
    assert_eq!(profile["type"], "oauth", "{profile}");
    assert_eq!(profile["generation"], 1, "{profile}");
    let again = fill(&git, &helper(&state, ""), &https(HOST));
    assert_eq!(
        value(&again, "password").as_deref(),
        Some("at-0"),
        "{again:?}"
    );
    assert!(server.exchanges().is_empty());
}

#[test]
fn an_unsafe_or_malformed_host_map_is_refused_with_what_to_do() {
    let (_temp, state, _server) = mapped();
    let path = state.join("git-credentials.json");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let writable = helper_direct(&state, &["get"], &https(HOST));
    assert_eq!(writable.status.code(), Some(9), "{writable:?}");
    assert!(writable.stdout.is_empty());
    assert!(
        stderr(&writable).contains("chmod 600"),
        "{}",
        stderr(&writable)
    );

    let elsewhere = state.parent().unwrap().join("elsewhere.json");
    std::fs::rename(&path, &elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    symlink(&elsewhere, &path).unwrap();
    let linked = helper_direct(&state, &["get"], &https(HOST));
    assert_eq!(linked.status.code(), Some(9), "{linked:?}");
    assert!(linked.stdout.is_empty());
    assert!(
        stderr(&linked).contains("symbolic link"),
        "{}",
        stderr(&linked)
    );

    std::fs::remove_file(&path).unwrap();
    write_config(
        &state,
        r#"{"hosts": {"git.example.com": {"profle": "acme:default"}}}"#,
    );
    let typo = helper_direct(&state, &["get"], &https(HOST));
    assert_eq!(typo.status.code(), Some(2), "{typo:?}");
    assert!(
        stderr(&typo).contains("unknown key \"profle\""),
        "{}",
        stderr(&typo)
    );
}
