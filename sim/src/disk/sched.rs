//! A deterministic scheduler for threads that run shipped host code.
//!
//! Each simulated process is an OS thread running `rotor-fs` as users run
//! it. Only one of them runs at a time: at every I/O call on the simulated
//! disk, and around every endpoint call, the running thread stops at a
//! *switch point* and the scheduler picks, from one seeded stream, which
//! thread goes on. Between switch points a thread runs alone, so a run is a
//! function of its seed (shuttle's and FoundationDB's idea, with the
//! shipped code inside).
//!
//! A thread that is not registered (the test's own thread, setting a disk
//! up) passes switch points without stopping.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::rng::Rng;

thread_local! {
    static ME: Cell<Option<usize>> = const { Cell::new(None) };
}

#[derive(Debug)]
struct State {
    rng: Rng,
    /// Threads started and not finished.
    live: BTreeSet<usize>,
    /// Threads registered but not yet arrived at their first switch.
    expected: usize,
    /// The thread allowed to run.
    running: Option<usize>,
}

/// Picks which thread runs next, from a seed.
#[derive(Debug)]
pub struct Scheduler {
    state: Mutex<State>,
    turn: Condvar,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Scheduler {
    /// A scheduler for `threads` threads, drawing from `seed`.
    pub fn new(seed: u64, threads: usize) -> Scheduler {
        Scheduler {
            state: Mutex::new(State {
                rng: Rng::new(seed).fork(0x5C4E_D01E),
                live: BTreeSet::new(),
                expected: threads,
                running: None,
            }),
            turn: Condvar::new(),
        }
    }

    /// Called first on thread `id`: waits until every thread has started,
    /// then until the scheduler picks this one.
    pub fn enter(&self, id: usize) {
        ME.with(|me| me.set(Some(id)));
        let mut state = lock(&self.state);
        state.live.insert(id);
        state.expected = state.expected.saturating_sub(1);
        if state.expected == 0 {
            Scheduler::pick(&mut state);
            self.turn.notify_all();
        }
        self.wait_turn(state, id);
    }

    /// Called last on the current thread: hands the turn on.
    pub fn leave(&self) {
        let Some(id) = ME.with(|me| me.take()) else {
            return;
        };
        let mut state = lock(&self.state);
        state.live.remove(&id);
        Scheduler::pick(&mut state);
        self.turn.notify_all();
    }

    /// A switch point: the scheduler may let another thread run first.
    pub fn switch(&self) {
        let Some(id) = ME.with(|me| me.get()) else {
            return;
        };
        let mut state = lock(&self.state);
        Scheduler::pick(&mut state);
        self.turn.notify_all();
        self.wait_turn(state, id);
    }

    fn pick(state: &mut State) {
        if state.live.is_empty() {
            state.running = None;
            return;
        }
        let index = state.rng.below(state.live.len() as u64) as usize;
        state.running = state.live.iter().nth(index).copied();
    }

    fn wait_turn(&self, mut state: MutexGuard<'_, State>, id: usize) {
        while state.running != Some(id) {
            state = self
                .turn
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}
