//! `rotor completions` and `rotor man` end to end, and that every
//! subcommand's `--help` shows an example.
mod common;

use std::process::{Command, Output};

use common::rotor;

/// The subcommands `rotor --help` lists (except `help`).
fn subcommands() -> Vec<String> {
    let output = rotor().arg("--help").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let names: Vec<String> = text
        .split("Commands:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: section in {text}"))
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    for expected in [
        "token",
        "login",
        "status",
        "git-credential",
        "completions",
        "man",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    names
}

fn completions(shell: &str) -> String {
    let output = rotor().args(["completions", shell]).output().unwrap();
    assert!(output.status.success(), "{shell}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn bash_completions_parse_and_name_every_subcommand() {
    let script = completions("bash");
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("rotor.bash");
    std::fs::write(&path, &script).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash is needed to check the bash completions");
    assert!(check.status.success(), "bash -n: {check:?}");
    for name in subcommands() {
        assert!(script.contains(&name), "bash completions miss {name}");
    }
    // Sourcing it registers the completion for `rotor`.
    let complete = Command::new("bash")
        .arg("-c")
        .arg(format!("source '{}' && complete -p rotor", path.display()))
        .output()
        .unwrap();
    assert!(
        stdout(&complete).contains("rotor"),
        "complete -p rotor: {complete:?}"
    );
}

#[test]
fn other_shells_get_scripts_naming_every_subcommand() {
    let names = subcommands();
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = completions(shell);
        for name in &names {
            assert!(
                script.contains(name.as_str()),
                "{shell} completions miss {name}"
            );
        }
    }
    assert!(completions("zsh").starts_with("#compdef rotor"));
    let unknown = rotor().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("possible values"));
}

/// The first request of a roff page that is not clap_mangen's portable
/// apostrophe preamble (`.ie`/`.el`).
fn first_request(page: &str) -> &str {
    page.lines()
        .find(|line| !line.starts_with(".ie ") && !line.starts_with(".el "))
        .unwrap_or("")
}

#[test]
fn man_prints_rotor_1_and_writes_one_page_per_subcommand() {
    let output = rotor().arg("man").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let page = stdout(&output);
    assert!(first_request(&page).starts_with(".TH rotor 1"), "{page}");
    for name in subcommands() {
        // roff escapes hyphens.
        let escaped = name.replace('-', "\\-");
        assert!(page.contains(&escaped), "rotor.1 does not list {name}");
    }

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("man1");
    let output = rotor()
        .arg("man")
        .arg("--out-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let rotor_1 = std::fs::read_to_string(dir.join("rotor.1")).unwrap();
    assert_eq!(rotor_1, page, "--out-dir's rotor.1 differs from stdout's");
    for name in subcommands() {
        let path = dir.join(format!("rotor-{name}.1"));
        let sub =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            first_request(&sub).starts_with(&format!(".TH rotor-{name} 1 ")),
            "{}: {sub}",
            path.display()
        );
    }
    let git_page = std::fs::read_to_string(dir.join("rotor-git-credential.1")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        first_request(&git_page).contains(&format!("\"rotor {version}\"")),
        "{git_page}"
    );
    assert!(git_page.contains("git\\-credentials.json"), "{git_page}");

    // man renders it, where man is installed (not required).
    let rendered = Command::new("man")
        .arg("-l")
        .arg(dir.join("rotor-git-credential.1"))
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output();
    match rendered {
        Ok(rendered) if rendered.status.success() => {
            let text = stdout(&rendered);
            assert!(text.contains("git-credentials.json"), "{text}");
            assert!(text.contains("--profile"), "{text}");
        }
        Ok(rendered) => eprintln!("man -l failed, not checked: {rendered:?}"),
        Err(error) => eprintln!("man is not installed, rendering not checked: {error}"),
    }

    let refused = rotor()
        .arg("man")
        .arg("--out-dir")
        .arg(dir.join("rotor.1").join("sub"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("writable --out-dir"));
}

#[test]
fn every_subcommand_help_shows_an_example() {
    for name in subcommands() {
        let output = rotor().args([name.as_str(), "--help"]).output().unwrap();
        assert!(output.status.success(), "{name} --help: {output:?}");
        let help = stdout(&output);
        assert!(
            help.contains("Example"),
            "`rotor {name} --help` shows no example:\n{help}"
        );
        assert!(
            help.contains(&format!("rotor {name}")),
            "`rotor {name} --help`'s example does not run rotor {name}:\n{help}"
        );
    }
}
