//! Citations stay inside the repository (docs/README.md).
//!
//! Scans every `*.rs`, `*.md` and `*.sh` file of the repository (not
//! `target/`, `node_modules/` or `.git/`) and fails when:
//!
//! - a file names a path a clone does not have: the shared spec directory
//!   outside the repository, or the spec files it used to hold;
//! - a `docs/<file>.md` path, or a relative Markdown link, names a file that
//!   does not exist;
//! - a "SPEC §N" citation names a section docs/SPEC.md does not have;
//! - a guarantee `G<n>` is named that docs/SPEC.md §1 does not define, or §1
//!   does not define exactly G1..G11.
//!
//! The checks are plain functions over (path, text), so
//! `the_checks_catch_what_they_guard_against` can feed them today-style
//! input. The patterns are spelled in pieces below so that this file does
//! not trip its own scan.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Paths that lived outside the repository, or in the spec directory there.
fn forbidden() -> Vec<String> {
    let dots = "..";
    vec![
        format!("{dots}/shared"),
        format!("shared/{}", "spec"),
        format!("spec/{}.md", "bugs"),
        format!("spec/{}.md", "SPEC"),
        format!("seed-{}.md", "system"),
        format!("{dots}/seed/"),
    ]
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every scanned file under `dir`, sorted.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !matches!(name.as_ref(), "target" | "node_modules" | ".git") {
                files(&path, out);
            }
        } else if kind.is_file() && [".rs", ".md", ".sh"].iter().any(|ext| name.ends_with(ext)) {
            out.push(path);
        }
    }
}

/// Section numbers `N` of the `## N. Title` headings of a SPEC text.
fn spec_sections(spec: &str) -> BTreeSet<u32> {
    spec.lines()
        .filter_map(|line| line.strip_prefix("## "))
        .filter_map(|rest| rest.split_once('.'))
        .filter_map(|(number, _)| number.trim().parse().ok())
        .collect()
}

/// Guarantees defined by rows `| G<n> | ...` of the SPEC text's §1 table.
fn spec_guarantees(spec: &str) -> BTreeSet<u32> {
    spec.lines()
        .filter_map(|line| line.strip_prefix("| G"))
        .filter_map(|rest| rest.split_once(' '))
        .filter_map(|(number, _)| number.parse().ok())
        .collect()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The numbers `n` of every `G<n>` in `text` that stands as a word.
fn guarantees_named(text: &str) -> Vec<(usize, u32)> {
    let mut found = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        for (index, c) in chars.iter().enumerate() {
            if *c != 'G' || (index > 0 && is_word(chars[index - 1])) {
                continue;
            }
            let digits: String = chars[index + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .collect();
            let after = chars.get(index + 1 + digits.len());
            if digits.is_empty() || after.is_some_and(|a| is_word(*a)) {
                continue;
            }
            if let Ok(number) = digits.parse() {
                found.push((line_index + 1, number));
            }
        }
    }
    found
}

/// The section numbers of every "SPEC §N" (or "SPEC.md §N") in `text`.
fn spec_citations(text: &str) -> Vec<(usize, u32)> {
    let mut found = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        for prefix in ["SPEC §", "SPEC.md §"] {
            for (start, _) in line.match_indices(prefix) {
                let digits: String = line[start + prefix.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(number) = digits.parse() {
                    found.push((line_index + 1, number));
                }
            }
        }
    }
    found
}

/// Every `docs/<path>.md` named in `text`.
fn docs_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        for (start, _) in line.match_indices("docs/") {
            let before = &line[..start];
            if before.ends_with(|c: char| is_word(c) || c == '-') {
                continue; // `foo-docs/…`, `mydocs/…`: not the repository's docs/
            }
            let token_start = before
                .rfind(|c: char| c.is_whitespace() || "(<`'\"".contains(c))
                .map_or(0, |index| index + 1);
            if before[token_start..].contains("://") {
                continue; // a URL's docs/ directory
            }
            let path: String = line[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "_-./".contains(*c))
                .collect();
            let path = path.trim_end_matches('.');
            if path.ends_with(".md") {
                found.push((line_index + 1, path.to_owned()));
            }
        }
    }
    found
}

/// Relative link targets `](target)` of a Markdown text, without anchors.
fn markdown_links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        for (start, _) in line.match_indices("](") {
            let rest = &line[start + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap_or_default().trim();
            let external =
                target.is_empty() || target.contains("://") || target.starts_with("mailto:");
            if !external {
                found.push((line_index + 1, target.to_owned()));
            }
        }
    }
    found
}

/// Everything wrong with one file, as `path:line: problem` lines. `exists`
/// answers for paths relative to the repository root.
fn problems(
    relative: &Path,
    text: &str,
    sections: &BTreeSet<u32>,
    guarantees: &BTreeSet<u32>,
    exists: &dyn Fn(&Path) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let shown = relative.display();
    for (line_index, line) in text.lines().enumerate() {
        for pattern in forbidden() {
            if line.contains(&pattern) {
                out.push(format!(
                    "{shown}:{}: names {pattern:?}, which a clone does not have; cite docs/ instead",
                    line_index + 1
                ));
            }
        }
    }
    for (line, path) in docs_paths(text) {
        if !exists(Path::new(&path)) {
            out.push(format!("{shown}:{line}: {path} does not exist"));
        }
    }
    if relative.extension().is_some_and(|ext| ext == "md") {
        let dir = relative.parent().unwrap_or(Path::new(""));
        for (line, target) in markdown_links(text) {
            if !exists(&dir.join(&target)) {
                out.push(format!(
                    "{shown}:{line}: link target {target} does not exist"
                ));
            }
        }
    }
    for (line, number) in spec_citations(text) {
        if !sections.contains(&number) {
            out.push(format!(
                "{shown}:{line}: cites SPEC \u{a7}{number}, which docs/SPEC.md does not have"
            ));
        }
    }
    for (line, number) in guarantees_named(text) {
        if !guarantees.contains(&number) {
            out.push(format!(
                "{shown}:{line}: names G{number}, which docs/SPEC.md \u{a7}1 does not define"
            ));
        }
    }
    out
}

/// Normalizes `a/b/../c` to `a/c` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn citations_point_into_the_repository() {
    let root = root();
    let spec = fs::read_to_string(root.join("docs/SPEC.md")).expect("docs/SPEC.md exists");
    let sections = spec_sections(&spec);
    let guarantees = spec_guarantees(&spec);
    assert_eq!(
        guarantees,
        (1..=11).collect::<BTreeSet<u32>>(),
        "docs/SPEC.md \u{a7}1 must define exactly G1..G11"
    );
    for number in 1..=8 {
        assert!(
            sections.contains(&number),
            "docs/SPEC.md lacks section {number}: \"SPEC \u{a7}N\" citations rely on \u{a7}1..\u{a7}8"
        );
    }
    let exists = |path: &Path| root.join(normalize(path)).exists();
    let mut scanned = Vec::new();
    files(&root, &mut scanned);
    assert!(
        scanned.len() > 50,
        "the scan found only {} files",
        scanned.len()
    );
    let mut all = Vec::new();
    for path in &scanned {
        let Ok(text) = fs::read_to_string(path) else {
            continue; // not UTF-8: nothing a person reads as a citation
        };
        let relative = path.strip_prefix(&root).unwrap_or(path);
        all.extend(problems(relative, &text, &sections, &guarantees, &exists));
    }
    assert!(
        all.is_empty(),
        "{} broken citation(s):\n{}",
        all.len(),
        all.join("\n")
    );
}

#[test]
fn the_checks_catch_what_they_guard_against() {
    let sections: BTreeSet<u32> = (1..=10).collect();
    let guarantees: BTreeSet<u32> = (1..=11).collect();
    let exists = |path: &Path| normalize(path) == Path::new("docs/SPEC.md");
    let section = '\u{a7}';
    let stale = [
        format!(
            "The guarantees are in `{}/shared/{}/SPEC.md`.",
            "..", "spec"
        ),
        format!("//! the historical bugs of spec/{}.md (B1)", "bugs"),
        format!("(spec/seed-{}.md {section}3.4)", "system"),
        format!("see docs/{}.md", "nowhere"),
        format!("SPEC {section}{}: a section that does not exist", 12),
        format!("/// checks G{} too", 12),
        format!("[the spec]({}.md)", "SPEC"),
    ];
    for line in &stale {
        let found = problems(
            Path::new("src/lib.rs"),
            line,
            &sections,
            &guarantees,
            &exists,
        );
        let found_md = problems(
            Path::new("README.md"),
            line,
            &sections,
            &guarantees,
            &exists,
        );
        assert!(
            !found.is_empty() || !found_md.is_empty(),
            "not caught: {line}"
        );
    }
    let fine = [
        format!(
            "The guarantees are in docs/{}.md (SPEC {section}1).",
            "SPEC"
        ),
        format!(
            "G1, G8 and G11; bugs B9 and B25; g3_row_{}; 0x9E37_79B9",
            "x"
        ),
        format!("rotor-trace-0x2a-G{}.json; REG1 is not a guarantee", 1),
        format!("[the spec](docs/{}.md#1-guarantees)", "SPEC"),
        format!(
            "https://example.com/docs/{}.md and rust-docs/{}.md",
            "a", "b"
        ),
    ];
    for line in &fine {
        let found = problems(
            Path::new("README.md"),
            line,
            &sections,
            &guarantees,
            &exists,
        );
        assert!(found.is_empty(), "false alarm on {line}: {found:?}");
    }
}
