//! Running a model under loom or shuttle: counting what was explored, and
//! turning a failure into the command that replays it.
//!
//! - `loom_explore` (build with `RUSTFLAGS="--cfg loom"`): every
//!   interleaving within a preemption bound. loom is deterministic, so the
//!   replay command is the test command itself; `LOOM_LOG=1` traces it.
//! - `shuttle_check` (feature `shuttle`): PCT at a given depth (what
//!   `shuttle::check_pct` runs) or uniformly random schedules (what
//!   `shuttle::check_random` runs), built here with an explicit seed so that
//!   a failure can print it. The seed replays the whole run
//!   (`SHUTTLE_RANDOM_SEED`, honoured by shuttle's schedulers); the failing
//!   schedule alone replays through `shuttle::replay`
//!   (`ROTOR_SHUTTLE_SCHEDULE`).

/// Names the test so a failure can print the command that re-runs it.
#[derive(Clone, Copy, Debug)]
pub struct Replay {
    /// The test target (file name under `model/tests`, without `.rs`).
    pub test_binary: &'static str,
    /// The test function.
    pub test_name: &'static str,
}

impl Replay {
    /// The loom command that re-runs this test.
    pub fn loom_command(&self) -> String {
        format!(
            "RUSTFLAGS=\"--cfg loom\" CARGO_TARGET_DIR=target/loom cargo test -p rotor-model \
             --release --test {} -- --exact {} --nocapture",
            self.test_binary, self.test_name
        )
    }

    /// The shuttle command that re-runs this test, prefixed by `env`.
    pub fn shuttle_command(&self, env: &str) -> String {
        format!(
            "{env} cargo test -p rotor-model --features shuttle --release --test {} -- --exact {} \
             --nocapture",
            self.test_binary, self.test_name
        )
    }
}

/// The text of a panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else {
        "(a panic without a message)".to_string()
    }
}

/// What loom explored.
#[cfg(loom)]
#[derive(Clone, Copy, Debug)]
pub struct LoomStats {
    /// Interleavings (executions of the model closure).
    pub interleavings: usize,
    /// Wall time.
    pub elapsed: std::time::Duration,
}

/// Explores every interleaving of `model` with at most `preemption_bound`
/// preemptions, prints how many there were, and on failure re-panics with
/// the command that replays it.
#[cfg(loom)]
pub fn loom_explore<F>(replay: Replay, preemption_bound: usize, model: F) -> LoomStats
where
    F: Fn() + Send + Sync + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let interleavings = Arc::new(AtomicUsize::new(0));
    let counter = interleavings.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    // A resolve takes a few dozen scheduling points; leave room.
    builder.max_branches = 100_000;
    let started = std::time::Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            model();
        })
    }));
    let stats = LoomStats {
        interleavings: interleavings.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    };
    if let Err(payload) = outcome {
        let text = deadlock_is_g8(panic_text(&*payload));
        let how = format!(
            "loom found this in interleaving {} (preemption bound {preemption_bound}); \
             loom is deterministic, replay with:\n  {}\n(add LOOM_LOG=1 LOOM_LOCATION=1 for a trace)",
            stats.interleavings,
            replay.loom_command()
        );
        // The panic hook printed the failure itself; add how to replay it.
        eprintln!("{how}");
        std::panic::resume_unwind(Box::new(format!("{text}\n{how}")));
    }
    println!(
        "loom {}: {} interleavings explored, preemption bound {preemption_bound}, {:.1} s",
        replay.test_name,
        stats.interleavings,
        stats.elapsed.as_secs_f64()
    );
    stats
}

/// Which shuttle scheduler.
#[cfg(all(feature = "shuttle", not(loom)))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedules {
    /// Probabilistic concurrency testing at this bug depth (`check_pct`).
    Pct {
        /// The number of ordering constraints a bug may need (2 or 3 here).
        depth: usize,
    },
    /// Uniformly random scheduling choices (`check_random`).
    Random,
}

/// What a shuttle run did.
#[cfg(all(feature = "shuttle", not(loom)))]
#[derive(Clone, Copy, Debug)]
pub struct ShuttleStats {
    /// Iterations run.
    pub iterations: usize,
    /// Wall time.
    pub elapsed: std::time::Duration,
    /// The seed of the run.
    pub seed: u64,
}

#[cfg(all(feature = "shuttle", not(loom)))]
impl ShuttleStats {
    /// Iterations per second.
    pub fn iterations_per_s(&self) -> f64 {
        self.iterations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `model` for `iterations` schedules. On failure, prints and re-panics
/// with the seed and the two commands that replay it. With
/// `ROTOR_SHUTTLE_SCHEDULE` set, replays that one schedule instead.
#[cfg(all(feature = "shuttle", not(loom)))]
pub fn shuttle_check<F>(
    replay: Replay,
    schedules: Schedules,
    iterations: usize,
    model: F,
) -> ShuttleStats
where
    F: Fn() + Send + Sync + 'static,
{
    use shuttle::scheduler::{PctScheduler, RandomScheduler};
    use shuttle::{Config, Runner};

    if let Ok(schedule) = std::env::var("ROTOR_SHUTTLE_SCHEDULE") {
        let started = std::time::Instant::now();
        shuttle::replay(model, schedule.trim());
        return ShuttleStats {
            iterations: 1,
            elapsed: started.elapsed(),
            seed: 0,
        };
    }
    let seed = match std::env::var("SHUTTLE_RANDOM_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SHUTTLE_RANDOM_SEED must be a u64, got {text:?}")),
        Err(_) => fresh_seed(),
    };
    let started = std::time::Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match schedules {
        Schedules::Pct { depth } => {
            let scheduler = PctScheduler::new_from_seed(seed, depth, iterations);
            Runner::new(scheduler, Config::default()).run(model)
        }
        Schedules::Random => {
            let scheduler = RandomScheduler::new_from_seed(seed, iterations);
            Runner::new(scheduler, Config::default()).run(model)
        }
    }));
    let elapsed = started.elapsed();
    match outcome {
        Ok(iterations) => {
            let stats = ShuttleStats {
                iterations,
                elapsed,
                seed,
            };
            println!(
                "shuttle {} ({schedules:?}): {iterations} iterations in {:.1} s = {:.0} iterations/s, seed {seed}",
                replay.test_name,
                elapsed.as_secs_f64(),
                stats.iterations_per_s()
            );
            stats
        }
        Err(payload) => {
            let mut text = deadlock_is_g8(panic_text(&*payload));
            if failing_schedule(&text).is_none() {
                if let Some(schedule) = last_schedule() {
                    text.push_str(&format!("\nfailing schedule:\n\"\n{schedule}\n\""));
                }
            }
            let mut how = format!(
                "shuttle ({schedules:?}) seed {seed}; replay the whole run with:\n  {}",
                replay.shuttle_command(&format!("SHUTTLE_RANDOM_SEED={seed}"))
            );
            if let Some(schedule) = failing_schedule(&text) {
                how.push_str(&format!(
                    "\nor only the failing schedule with:\n  {}",
                    replay.shuttle_command(&format!("ROTOR_SHUTTLE_SCHEDULE='{schedule}'"))
                ));
            }
            // The panic hook printed the failure itself; add how to replay it.
            eprintln!("{how}");
            std::panic::resume_unwind(Box::new(format!("{text}\n{how}")));
        }
    }
}

/// loom and shuttle report a run in which every thread waits as a
/// "deadlock": that is a wedge of the refresh or store locks, named G8.
pub fn deadlock_is_g8(text: String) -> String {
    if text.contains("deadlock") {
        format!("G8 violated: every thread waits, nobody can release (the checker says: {text})")
    } else {
        text
    }
}

/// The encoded schedule in a failure message, if any, on one line (it may
/// be wrapped; shuttle's decoder ignores whitespace).
pub fn failing_schedule(text: &str) -> Option<String> {
    let start = text.find("failing schedule:\n\"\n")? + "failing schedule:\n\"\n".len();
    let length = text[start..].find("\n\"")?;
    let schedule = &text[start..start + length];
    Some(schedule.chars().filter(|c| !c.is_whitespace()).collect())
}

/// The encoded schedule of the last shuttle execution on this thread (the
/// one that just failed). shuttle 0.8 put it in the failure's message;
/// 0.9 only prints it from its panic hook, so it is read back here from the
/// engine, where the execution left it.
#[cfg(all(feature = "shuttle", not(loom)))]
fn last_schedule() -> Option<String> {
    use shuttle_engine::runtime::execution::CurrentSchedule;
    use shuttle_engine::scheduler::serialization::serialize_schedule;
    let schedule = CurrentSchedule::get_schedule();
    (!schedule.is_empty()).then(|| serialize_schedule(&schedule))
}

#[cfg(all(feature = "shuttle", not(loom)))]
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failing_schedule_is_cut_out_of_shuttle_s_message() {
        let text = "test panicked in task 'main-thread'\nfailing schedule:\n\"\n91022abc\n0d\n\"\npass that string";
        assert_eq!(failing_schedule(text).as_deref(), Some("91022abc0d"));
        assert_eq!(failing_schedule("no schedule here"), None);
    }

    #[test]
    fn replay_commands_name_the_test() {
        let replay = Replay {
            test_binary: "shuttle_models",
            test_name: "six_agents_pct_depth_2",
        };
        let command = replay.shuttle_command("SHUTTLE_RANDOM_SEED=7");
        assert!(
            command.starts_with("SHUTTLE_RANDOM_SEED=7 cargo test"),
            "{command}"
        );
        assert!(command.contains("--test shuttle_models -- --exact six_agents_pct_depth_2"));
        assert!(replay.loom_command().contains("--cfg loom"));
    }
}
