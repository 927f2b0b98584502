//! Hostile input through the real `rotor` binary: ids that try to escape,
//! pre-planted symlinks, a state directory others can write, and a corrupt
//! store (G9, G10). Every refusal must be a clear error with its own exit
//! code, and nothing outside the state directory may be created or changed.
mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::*;

const PROFILE: &str = "acme:default";

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn token_args(state: &Path, args: &[&str]) -> TokenRun {
    let child = rotor()
        .args(["token", "--json", "--state-dir"])
        .arg(state)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    finish(child)
}

#[test]
fn hostile_agent_ids_are_refused_with_a_clear_error_g9() {
    let (temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    let before = listing(temp.path());
    for agent in ["../../etc", "/tmp/x", "..", ".hidden", "a/b", "a\nb", ""] {
        let run = token_args(&state, &["--agent", agent, "--profile", PROFILE]);
        assert_eq!(run.code, Some(2), "G9: agent {agent:?} accepted: {run:?}");
        assert!(
            run.stderr.contains("agent id") && run.stderr.contains("refused"),
            "{}",
            run.stderr
        );
        assert_eq!(run.json["error"]["kind"], "invalid_id");
    }
    assert_eq!(
        listing(temp.path()),
        before,
        "G9: something was created outside"
    );
    assert_eq!(listing(&state.join("agents")), vec!["main"]);
}

#[test]
fn hostile_profile_ids_are_refused_or_kept_inside_g9() {
    let (temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    // NUL cannot pass through argv: the embedding API refuses it.
    let rotor = rotor_fs::Rotor::open(&state).unwrap();
    let error = rotor.token("main", "acme", "a\0b").unwrap_err();
    assert!(
        matches!(error, rotor_fs::Error::InvalidId(_)),
        "G9: {error}"
    );
    assert!(error.to_string().contains("control characters"), "{error}");
    for profile in ["a\nb", "\u{1b}[2J", "   ", &"p".repeat(300)] {
        let run = token_args(&state, &["--profile", profile, "--provider", "acme"]);
        assert_eq!(
            run.code,
            Some(2),
            "G9: profile {profile:?} accepted: {run:?}"
        );
        assert!(run.stderr.contains("profile id"), "{}", run.stderr);
    }
    // A path-like profile id is only ever hashed: its lock lands in the lock
    // directory under a sha256 name, and nothing escapes.
    let sneaky = "../../../../escaped";
    login(&state, "main", sneaky, &server.url, "at-x", "rt-0");
    force_expiry(&state, "main", sneaky);
    let run = token_args(&state, &["--profile", sneaky]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let locks = listing(&state.join("locks/oauth-refresh"));
    let expected = rotor_kernel::LockKey::new("acme", sneaky).file_name();
    assert!(locks.contains(&expected), "{locks:?}");
    assert!(
        locks
            .iter()
            .all(|l| l.starts_with("sha256-") && l.ends_with(".lock")),
        "{locks:?}"
    );
    assert_eq!(
        listing(temp.path()),
        vec!["state"],
        "G9: a file escaped the state dir"
    );
}

fn expect_unsafe(run: &TokenRun, what: &str) {
    assert_eq!(run.code, Some(9), "G9: {what} not refused: {run:?}");
    assert!(
        run.stderr.contains("symbolic link") || run.stderr.contains("writable"),
        "{what}: {}",
        run.stderr
    );
}

#[test]
fn a_symlinked_lock_directory_is_refused_g9_b25() {
    let (temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    let outside = temp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::remove_dir_all(state.join("locks")).unwrap();
    symlink(&outside, state.join("locks")).unwrap();
    let run = token_args(&state, &["--profile", PROFILE]);
    expect_unsafe(&run, "symlinked locks/");
    assert!(
        listing(&outside).is_empty(),
        "B25: a lock was created through the link"
    );
    assert_eq!(
        server.received(),
        0,
        "nothing may be presented without the lock"
    );
}

#[test]
fn a_symlinked_lock_file_is_refused_g9() {
    let (temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    force_expiry(&state, "main", PROFILE);
    let lock_dir = state.join("locks/oauth-refresh");
    let name = listing(&lock_dir).pop().unwrap();
    let victim = temp.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::remove_file(lock_dir.join(&name)).unwrap();
    symlink(&victim, lock_dir.join(&name)).unwrap();
    let run = token_args(&state, &["--profile", PROFILE]);
    expect_unsafe(&run, "symlinked lock file");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn symlinked_store_files_and_agent_dirs_are_refused_g9() {
    let (temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    // A store file replaced by a link to a file outside.
    let store_path = state.join("agents/main/auth-profiles.json");
    let victim = temp.path().join("victim.json");
    std::fs::rename(&store_path, &victim).unwrap();
    let original = std::fs::read(&victim).unwrap();
    symlink(&victim, &store_path).unwrap();
    let run = token_args(&state, &["--profile", PROFILE, "--provider", "acme"]);
    expect_unsafe(&run, "symlinked store file");
    assert_eq!(std::fs::read(&victim).unwrap(), original);
    // A sub-agent directory that is a link.
    let outside = temp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    symlink(&outside, state.join("agents/worker")).unwrap();
    let tokens = r#"{"access_token":"a","refresh_token":"r","expires_in":60}"#;
    let output = run_with_stdin(
        &mut login_command(&state, "worker", PROFILE, &server.url, "c"),
        tokens,
    );
    assert_eq!(
        output.status.code(),
        Some(9),
        "G9: login through a linked agent dir"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("symbolic link"));
    assert!(listing(&outside).is_empty());
}

#[test]
fn a_state_directory_writable_by_others_is_refused_g9() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = token_args(&state, &["--profile", PROFILE]);
    expect_unsafe(&run, "0777 state dir");
    assert!(run.stderr.contains("chmod 700"), "{}", run.stderr);
}

#[test]
fn a_corrupt_store_is_kept_aside_with_a_clear_error_g10() {
    let (_temp, state) = state_dir();
    let server = TokenServer::start("rt-0", 3600);
    login(&state, "main", PROFILE, &server.url, "at-0", "rt-0");
    let store_path = state.join("agents/main/auth-profiles.json");
    let garbage = b"{\"version\": 1, \"profiles\": {\"acme:default\": [truncated";
    std::fs::write(&store_path, garbage).unwrap();
    let run = token_args(&state, &["--profile", PROFILE, "--provider", "acme"]);
    assert_eq!(run.code, Some(9), "G10: {run:?}");
    assert_eq!(run.json["error"]["kind"], "store_corrupt");
    let backup = listing(store_path.parent().unwrap())
        .into_iter()
        .find(|name| name.starts_with("auth-profiles.json.corrupt-"))
        .expect("G10: a backup copy");
    let backup = store_path.with_file_name(backup);
    assert!(
        run.stderr.contains(&store_path.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&backup.display().to_string()),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&backup).unwrap(), garbage);
    // A login does not overwrite it either.
    let tokens = r#"{"access_token":"a","refresh_token":"r","expires_in":60}"#;
    let output = run_with_stdin(
        &mut login_command(&state, "main", PROFILE, &server.url, "c"),
        tokens,
    );
    assert_eq!(output.status.code(), Some(9));
    assert_eq!(
        std::fs::read(&store_path).unwrap(),
        garbage,
        "G10: overwritten"
    );
    // `rotor status` reports it too.
    let status = rotor()
        .args(["status", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("corrupt") && text.contains(".corrupt-"),
        "{text}"
    );
}
