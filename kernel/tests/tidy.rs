//! Tidy (TigerBeetle's habit): the kernel has no I/O, clock, threads or
//! ambient randomness, and that is checked on its source, not promised.
//!
//! Every `.rs` file under `kernel/src` is scanned, comments included: the
//! kernel has no reason to name these even in prose, and a scanner that
//! skips comments can be fooled by one. This file lives in `kernel/tests`, so
//! the patterns below do not flag themselves.

use std::fs;
use std::path::{Path, PathBuf};

/// What the kernel must never name, and why.
const FORBIDDEN: [(&str, &str); 5] = [
    (
        "std::",
        "the kernel is no_std: I/O, threads and clocks live in hosts",
    ),
    ("extern crate std", "the kernel is no_std"),
    ("Instant::now", "time comes in as `now_ms`"),
    ("SystemTime", "time comes in as `now_ms`"),
    ("thread_rng", "randomness comes from a seed in the config"),
];

/// One forbidden name found at `file:line`.
#[derive(Debug, PartialEq, Eq)]
struct Hit {
    location: String,
    pattern: &'static str,
    why: &'static str,
    text: String,
}

fn scan(name: &str, text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for (pattern, why) in FORBIDDEN {
            if line.contains(pattern) {
                hits.push(Hit {
                    location: format!("{name}:{}", index + 1),
                    pattern,
                    why,
                    text: line.trim().to_string(),
                });
            }
        }
    }
    hits
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn kernel_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn kernel_src_names_no_std_clock_or_ambient_randomness() {
    let root = kernel_src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    assert!(
        files.len() >= 10 && files.iter().any(|f| f.ends_with("machine/mod.rs")),
        "the scan must see the whole kernel, saw {files:?}"
    );
    let mut hits = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(file);
        hits.extend(scan(&name.display().to_string(), &text));
    }
    let report: Vec<String> = hits
        .iter()
        .map(|hit| {
            format!(
                "{}: `{}` ({}): {}",
                hit.location, hit.pattern, hit.why, hit.text
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "kernel/src is not tidy:\n{}",
        report.join("\n")
    );
}

#[test]
fn lib_rs_declares_no_std_and_forbids_unsafe() {
    let lib = fs::read_to_string(kernel_src().join("lib.rs")).expect("kernel/src/lib.rs");
    let attributes: Vec<&str> = lib.lines().map(str::trim).collect();
    assert!(
        attributes.contains(&"#![no_std]"),
        "lib.rs must say #![no_std]"
    );
    assert!(
        attributes.contains(&"#![forbid(unsafe_code)]"),
        "lib.rs must say #![forbid(unsafe_code)]"
    );
}

#[test]
fn the_scanner_reports_file_and_line_of_each_hit() {
    // The check above could pass by scanning nothing; prove it finds things.
    let text = "//! ok\nuse std::fs;\nlet t = Instant::now();\nlet r = rand::thread_rng();\nlet s = std::time::SystemTime::now();\nuse core::fmt;\n";
    let hits = scan("src/bad.rs", text);
    let found: Vec<(&str, &str)> = hits
        .iter()
        .map(|hit| (hit.location.as_str(), hit.pattern))
        .collect();
    assert_eq!(
        found,
        [
            ("src/bad.rs:2", "std::"),
            ("src/bad.rs:3", "Instant::now"),
            ("src/bad.rs:4", "thread_rng"),
            ("src/bad.rs:5", "std::"),
            ("src/bad.rs:5", "SystemTime"),
        ]
    );
    assert!(scan("src/fine.rs", "#![no_std]\nuse alloc::string::String;\n").is_empty());
}
