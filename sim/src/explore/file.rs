//! Explorer trace files: a counterexample written to disk by `rotor check
//! --exhaustive <world>`, read back and re-walked by `rotor replay <file>`.
//!
//! A simulator trace ([`TraceFile`]) holds a seed and a configuration, from
//! which the simulator rebuilds the whole run. The explorer has no seed: its
//! counterexample is a *path*, the index chosen among the enabled steps at
//! each depth of one world. So an explorer trace holds the world (its name
//! and exact [`ExploreConfig`]), the path, the violations the path ends in,
//! and the printed lines. Replaying re-walks the path and must see the same
//! lines and the same violated guarantees; anything else means the kernel,
//! the explorer or the world changed since the file was written.
//!
//! The two formats are told apart by their marker field: `rotor_trace` for
//! the simulator, `rotor_explore_trace` for the explorer. [`read_trace_file`]
//! reads either, and says in a [`TraceFileError`] why a file is neither.
//!
//! ```
//! use rotor_sim::explore::{read_trace_file, TraceFileError};
//!
//! let error = read_trace_file("{\"hello\": 1}").unwrap_err();
//! assert_eq!(error, TraceFileError::NotATrace);
//! ```

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{violations_along, Counterexample, ExploreConfig, Found, PathError};
use crate::guarantee::Guarantee;
use crate::hooks::HostHooks;
use crate::run::TraceFile;

/// The explorer trace format version.
pub const EXPLORE_TRACE_VERSION: u32 = 1;

/// A counterexample of the explorer, as written to disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExploreTraceFile {
    /// Format marker and version ([`EXPLORE_TRACE_VERSION`]); a simulator
    /// trace has `rotor_trace` instead.
    pub rotor_explore_trace: u32,
    /// The named world (`rotor check --exhaustive <world>`), or a label for a
    /// world built in code.
    pub world: String,
    /// The exact world explored; the replay walks this one.
    pub config: ExploreConfig,
    /// The host explored ([`HostHooks::name`]).
    pub host: String,
    /// The guarantee this is the shortest counterexample of.
    pub guarantee: Guarantee,
    /// Every violation along the path, in the order the checkers saw them.
    pub violations: Vec<Found>,
    /// The step choices, from the initial state.
    pub path: Vec<u32>,
    /// One line per step, as printed.
    pub lines: Vec<String>,
    /// The command that replays the path without this file.
    pub replay: String,
}

/// A trace file of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyTraceFile {
    /// Written by the simulator (`rotor check`).
    Simulator(Box<TraceFile>),
    /// Written by the explorer (`rotor check --exhaustive`).
    Explorer(Box<ExploreTraceFile>),
}

/// Why a file is not a trace this rotor can replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceFileError {
    /// Not JSON.
    NotJson(String),
    /// JSON without a trace marker (`rotor_trace` or `rotor_explore_trace`).
    NotATrace,
    /// An explorer trace of another format version.
    Version {
        /// The version in the file.
        found: u64,
    },
    /// An explorer trace with a missing, mistyped or inconsistent field.
    Malformed(String),
    /// A simulator trace the simulator refused.
    Simulator(String),
}

impl fmt::Display for TraceFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceFileError::NotJson(error) => write!(f, "not a rotor trace file (not JSON: {error})"),
            TraceFileError::NotATrace => f.write_str(
                "not a rotor trace file (JSON without a rotor_trace or rotor_explore_trace field)",
            ),
            TraceFileError::Version { found } => write!(
                f,
                "explorer trace format version {found} is not supported (this rotor reads version {EXPLORE_TRACE_VERSION})"
            ),
            TraceFileError::Malformed(error) => write!(f, "a malformed explorer trace: {error}"),
            TraceFileError::Simulator(error) => f.write_str(error),
        }
    }
}

impl std::error::Error for TraceFileError {}

/// Reads a trace file of either kind, by its marker field.
pub fn read_trace_file(text: &str) -> Result<AnyTraceFile, TraceFileError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| TraceFileError::NotJson(e.to_string()))?;
    if value.get("rotor_explore_trace").is_some() {
        return ExploreTraceFile::from_value(value).map(|f| AnyTraceFile::Explorer(Box::new(f)));
    }
    if value.get("rotor_trace").is_some() {
        return TraceFile::from_json(text)
            .map(|f| AnyTraceFile::Simulator(Box::new(f)))
            .map_err(TraceFileError::Simulator);
    }
    Err(TraceFileError::NotATrace)
}

/// Why a replay did not reproduce the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReproduced {
    /// A choice was out of range.
    Path(PathError),
    /// The first line (1-based step) that differs; `None` past the end.
    Line {
        /// The step.
        step: usize,
        /// The file's line.
        recorded: Option<String>,
        /// The replay's line.
        replayed: Option<String>,
    },
    /// The same lines, other violations.
    Violations {
        /// The file's guarantees.
        recorded: Vec<Guarantee>,
        /// The replay's guarantees.
        replayed: Vec<Guarantee>,
    },
}

impl fmt::Display for NotReproduced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_end = |line: &Option<String>| line.clone().unwrap_or_else(|| "(no step)".into());
        match self {
            NotReproduced::Path(error) => write!(f, "the path does not replay: {error}"),
            NotReproduced::Line {
                step,
                recorded,
                replayed,
            } => write!(
                f,
                "step {step} differs: the file has {:?}, the replay {:?}",
                or_end(recorded),
                or_end(replayed)
            ),
            NotReproduced::Violations { recorded, replayed } => write!(
                f,
                "the file records violations of {recorded:?}, the replay found {replayed:?}"
            ),
        }
    }
}

impl std::error::Error for NotReproduced {}

fn guarantees(found: &[Found]) -> Vec<Guarantee> {
    found.iter().map(|f| f.guarantee).collect()
}

impl ExploreTraceFile {
    /// The file of `counterexample`, found by exploring `config` (named
    /// `world`) with `hooks`.
    pub fn new(
        world: &str,
        config: &ExploreConfig,
        hooks: Arc<dyn HostHooks>,
        counterexample: &Counterexample,
    ) -> Self {
        let host = hooks.name().to_string();
        let (lines, violations) = violations_along(config, hooks, &counterexample.choices)
            .unwrap_or_else(|error| {
                panic!("bug: the explorer cannot replay its own path: {error}")
            });
        ExploreTraceFile {
            rotor_explore_trace: EXPLORE_TRACE_VERSION,
            world: world.to_string(),
            config: config.clone(),
            host,
            guarantee: counterexample.found.guarantee,
            violations,
            path: counterexample.choices.clone(),
            lines,
            replay: format!(
                "rotor replay --exhaustive {world} --path {}{}",
                counterexample.path_arg(),
                if config.shipped_host {
                    " --shipped-host"
                } else {
                    ""
                }
            ),
        }
    }

    /// The file name `rotor check` writes it under:
    /// `rotor-explore-<world>-<guarantee>.json`.
    pub fn file_name(&self) -> String {
        let world: String = self
            .world
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("rotor-explore-{world}-{}.json", self.guarantee)
    }

    /// The path as `--path` takes it.
    pub fn path_arg(&self) -> String {
        self.path
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string_pretty(self).expect("bug: an explorer trace did not serialize")
    }

    /// Reads an explorer trace (a simulator trace is an error here; use
    /// [`read_trace_file`] for either).
    pub fn from_json(text: &str) -> Result<Self, TraceFileError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| TraceFileError::NotJson(e.to_string()))?;
        if value.get("rotor_explore_trace").is_none() {
            return Err(TraceFileError::NotATrace);
        }
        Self::from_value(value)
    }

    fn from_value(value: serde_json::Value) -> Result<Self, TraceFileError> {
        match value.get("rotor_explore_trace").and_then(|v| v.as_u64()) {
            Some(version) if version == u64::from(EXPLORE_TRACE_VERSION) => {}
            Some(found) => return Err(TraceFileError::Version { found }),
            None => {
                return Err(TraceFileError::Malformed(
                    "rotor_explore_trace is not a version number".into(),
                ))
            }
        }
        let file: ExploreTraceFile =
            serde_json::from_value(value).map_err(|e| TraceFileError::Malformed(e.to_string()))?;
        if file.lines.len() != file.path.len() {
            return Err(TraceFileError::Malformed(format!(
                "{} lines for a path of {} steps",
                file.lines.len(),
                file.path.len()
            )));
        }
        if !file
            .violations
            .iter()
            .any(|v| v.guarantee == file.guarantee)
        {
            return Err(TraceFileError::Malformed(format!(
                "the violations {:?} do not include its guarantee {}",
                guarantees(&file.violations),
                file.guarantee
            )));
        }
        Ok(file)
    }

    /// Re-walks the path on the file's world with `hooks`: the replay's
    /// lines and violations when they are the file's, else what differs.
    pub fn replay(
        &self,
        hooks: Arc<dyn HostHooks>,
    ) -> Result<(Vec<String>, Vec<Found>), NotReproduced> {
        let (lines, violations) =
            violations_along(&self.config, hooks, &self.path).map_err(NotReproduced::Path)?;
        let differs =
            (0..self.lines.len().max(lines.len())).find(|&i| self.lines.get(i) != lines.get(i));
        if let Some(i) = differs {
            return Err(NotReproduced::Line {
                step: i + 1,
                recorded: self.lines.get(i).cloned(),
                replayed: lines.get(i).cloned(),
            });
        }
        let (recorded, replayed) = (guarantees(&self.violations), guarantees(&violations));
        if recorded != replayed {
            return Err(NotReproduced::Violations { recorded, replayed });
        }
        Ok((lines, violations))
    }
}
