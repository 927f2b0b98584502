//! Symmetry reduction in the explorer (`sim/src/explore/symmetry.rs`):
//! which processes are interchangeable, that the canonical key identifies a
//! state with its renamings and nothing else, and what it saves. That it
//! finds the same violations at the same depths, for every broken host, is
//! `explore_bugs.rs`'s `symmetry_reduction_finds_the_same_violations_*`.
//! Figures print with `--nocapture`.

use std::sync::Arc;

use rotor_sim::explore::{
    explore, initial_state, CallFault, Ctx, ExploreConfig, State, Step, Symmetry,
};
use rotor_sim::{HostHooks, Shipped};

fn symmetry_of(config: &ExploreConfig, hooks: &dyn HostHooks) -> Symmetry {
    initial_state(config, hooks).1
}

fn shape(agents: &[u8]) -> ExploreConfig {
    ExploreConfig {
        agents_per_process: agents.to_vec(),
        time_steps_max: 0,
        ..ExploreConfig::default()
    }
}

/// A host whose lock slots tell p0's sub-agent apart: it locks alone, p1's
/// sub-agent shares the main agents' lock.
#[derive(Debug)]
struct FirstSubLocksAlone;
impl HostHooks for FirstSubLocksAlone {
    fn lock_slot(&self, own_store: u8) -> u8 {
        u8::from(own_store == 1)
    }
}

/// Processes are exchanged only when the world cannot tell them apart:
/// equal sizes, equal sub-agent stores (G3: not the one holding another
/// account), lock slots the host assigns alike; all of them otherwise.
#[test]
fn only_processes_the_world_cannot_tell_apart_are_exchanged() {
    let shipped = Shipped;
    let count = |config: &ExploreConfig| symmetry_of(config, &shipped).len();
    assert_eq!(count(&shape(&[1])), 1);
    assert_eq!(count(&shape(&[1, 1])), 2);
    assert_eq!(count(&shape(&[1, 1, 1])), 6);
    assert_eq!(count(&shape(&[2, 2])), 2);
    assert_eq!(count(&shape(&[2, 1])), 1, "single-flight: p0's pair");
    assert_eq!(count(&shape(&[2, 1, 2])), 2, "p0 and p2 only");
    let other_account = ExploreConfig {
        other_account_store: true,
        ..shape(&[2, 2])
    };
    assert_eq!(count(&other_account), 1, "p1's store holds account y");
    let copies = ExploreConfig {
        sub_stores_hold_copy: true,
        ..shape(&[2, 2])
    };
    assert_eq!(count(&copies), 2);
    let slots = symmetry_of(&shape(&[2, 2]), &FirstSubLocksAlone).len();
    assert_eq!(slots, 1, "p0's sub-agent has a lock of its own");
    let off = ExploreConfig {
        symmetry: false,
        ..shape(&[1, 1, 1])
    };
    assert_eq!(count(&off), 1);
}

/// Takes the first enabled step `pick` accepts, if any.
fn take(
    state: &mut State,
    ctx: &Ctx<'_>,
    taken: &mut Vec<Step>,
    pick: impl Fn(Step) -> bool,
) -> bool {
    let Some(step) = state.enabled(ctx).into_iter().find(|&s| pick(s)) else {
        return false;
    };
    let (_, found) = state.apply(ctx, step);
    assert!(found.is_empty(), "{step:?}: {found:?}");
    taken.push(step);
    true
}

/// Walks from the initial state until agent `first` has fenced (G7) and its
/// call reached the provider under the refresh lock (G8), the usage writer
/// (if any) holds a copy of main with that fence (G4), and agent `second`
/// started, read the fence and waits for the lock: every place a process's
/// name can hide. Returns the states along the way and the steps taken.
fn rich_path(config: &ExploreConfig, first: u8, second: u8) -> (Vec<State>, Vec<Step>) {
    let policy = config.policy();
    let (mut state, symmetry) = initial_state(config, &Shipped);
    let ctx = Ctx {
        config,
        policy: &policy,
        hooks: &Shipped,
        symmetry: &symmetry,
    };
    let mut states = vec![state.clone()];
    let mut taken = Vec::new();
    let mut record = |state: &State| states.push(state.clone());
    while state.agents[first as usize].call.is_none() {
        let mine = |s| {
            s == Step::Start(first)
                || s == Step::Effect(first)
                || s == Step::Send(first, CallFault::None)
        };
        assert!(take(&mut state, &ctx, &mut taken, mine), "{first} is stuck");
        record(&state);
    }
    if config.writer {
        assert!(take(&mut state, &ctx, &mut taken, |s| s == Step::Writer));
        record(&state);
    }
    while take(&mut state, &ctx, &mut taken, |s| {
        s == Step::Start(second) || s == Step::Effect(second)
    }) {
        record(&state);
    }
    assert!(take(&mut state, &ctx, &mut taken, |s| s == Step::Arrive(0)));
    record(&state);
    (states, taken)
}

/// Replays `steps` from the initial state; the state reached.
fn walk_steps(config: &ExploreConfig, steps: &[Step]) -> State {
    let policy = config.policy();
    let (mut state, symmetry) = initial_state(config, &Shipped);
    let ctx = Ctx {
        config,
        policy: &policy,
        hooks: &Shipped,
        symmetry: &symmetry,
    };
    for &step in steps {
        assert!(state.enabled(&ctx).contains(&step), "{step:?} not enabled");
        state.apply(&ctx, step);
    }
    state
}

/// The canonical key is invariant under exchanging the two processes of the
/// crash-faults shape, checked against the real mirrored run: the state
/// reached by the steps with p0 and p1 exchanged is a different state whose
/// key is exactly the first state's key under the swap, including p0's fence
/// holder in main (G7), in the usage writer's copy (G4), in the view p1's
/// resolver read, and the call in flight and lock holder (G8). States that
/// are not renamings of each other keep different keys: every state along
/// the path, and the state with only main's fence holder renamed.
#[test]
fn the_canonical_key_is_invariant_under_exchanging_interchangeable_processes() {
    let config = ExploreConfig {
        time_steps_max: 0,
        ..ExploreConfig::preset("crash-faults").expect("a preset")
    };
    let (states, steps) = rich_path(&config, 0, 1);
    let state = states.last().expect("a state");
    let symmetry = symmetry_of(&config, &Shipped);
    assert_eq!(symmetry.len(), 2);
    let swap = &symmetry.renamings()[1];
    assert_eq!(swap.processes(), &[1, 0]);
    let p0 = state.agents[0].holder();
    let fences = &state.stores[0].fences;
    assert!(
        fences.values().flatten().any(|f| f.holder == p0),
        "main holds p0's fence: {fences:?}"
    );
    let copy = state.writer_copy.as_ref().expect("the writer's copy");
    assert!(copy.fences.values().flatten().any(|f| f.holder == p0));
    assert!(state.locks[0] == vec![0] && state.calls[0].agent == 0);
    assert!(state.agents[1].resolver.is_some());

    let mirrored_steps: Vec<Step> = steps.iter().map(|&s| swap.step(s)).collect();
    let mirrored = walk_steps(&config, &mirrored_steps);
    assert_ne!(
        state.key(),
        mirrored.key(),
        "the mirrored state is another state"
    );
    assert_eq!(
        state.key_under(1, swap),
        mirrored.key(),
        "renaming p0 and p1 misses something the state holds"
    );
    assert_eq!(mirrored.key_under(1, swap), state.key());
    assert_eq!(
        state.canonical_key(&symmetry),
        mirrored.canonical_key(&symmetry)
    );

    let mut keys: Vec<u128> = states.iter().map(|s| s.canonical_key(&symmetry)).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(
        keys.len(),
        states.len(),
        "two states along the path share a key"
    );

    let mut fence_renamed = state.clone();
    let p1 = state.agents[1].holder();
    for fence in fence_renamed.stores[0].fences.values_mut().flatten() {
        fence.holder = p1.clone();
    }
    assert_ne!(
        fence_renamed.canonical_key(&symmetry),
        state.canonical_key(&symmetry),
        "a fence naming p1 while p0 holds the lock is another state"
    );
}

/// What the reduction saves (G1..G8, G11 all still checked): the
/// crash-faults shape (two interchangeable processes) visits strictly fewer
/// distinct states with it; worlds without interchangeable processes
/// (single-flight, identity) visit exactly as many. (relogin, one process,
/// has 250,665 states even without its time step: measured in release,
/// `sim/README.md`.)
#[test]
fn symmetry_reduction_shrinks_only_worlds_with_interchangeable_processes() {
    for name in ["crash-faults", "single-flight", "identity"] {
        let config = ExploreConfig {
            time_steps_max: 0,
            ..ExploreConfig::preset(name).expect("a preset")
        };
        let reduced = explore(&config, Arc::new(Shipped));
        let full = explore(
            &ExploreConfig {
                symmetry: false,
                ..config.clone()
            },
            Arc::new(Shipped),
        );
        eprintln!("{name}: reduced {reduced}\n{name}: full    {full}");
        assert!(reduced.violations.is_empty() && full.violations.is_empty());
        assert_eq!(reduced.depth, full.depth, "{name}");
        if name == "crash-faults" {
            assert_eq!(reduced.symmetry_permutations, 2);
            assert!(reduced.distinct_states < full.distinct_states, "{name}");
            assert!(reduced.transitions < full.transitions, "{name}");
        } else {
            assert_eq!(reduced.symmetry_permutations, 1, "{name}");
            assert_eq!(reduced.distinct_states, full.distinct_states, "{name}");
            assert_eq!(reduced.transitions, full.transitions, "{name}");
        }
    }
}

/// A configuration written before symmetry reduction existed (an explorer
/// trace file's `config`) reads with it on.
#[test]
fn a_configuration_without_the_symmetry_field_reads_as_on() {
    let mut value = serde_json::to_value(ExploreConfig::default()).expect("JSON");
    value
        .as_object_mut()
        .expect("an object")
        .remove("symmetry")
        .expect("the field is written");
    let read: ExploreConfig = serde_json::from_value(value).expect("still a configuration");
    assert!(read.symmetry);
}

/// The same with sub-agents: in two processes of a main agent and a
/// sub-agent each (sub-agent stores holding a copy of main's credential),
/// p0's sub-agent fences its own store and main (G7) and
/// holds the lock with a call in flight (G8) while p1's main agent waits.
/// Exchanging the processes exchanges the sub-agent stores too: the real
/// mirrored run's key is the first state's key under the swap.
#[test]
fn the_canonical_key_renames_sub_agent_stores_with_their_process() {
    let config = ExploreConfig {
        sub_stores_hold_copy: true,
        ..shape(&[2, 2])
    };
    let (states, steps) = rich_path(&config, 1, 2);
    let state = states.last().expect("a state");
    let symmetry = symmetry_of(&config, &Shipped);
    let swap = &symmetry.renamings()[1];
    let sub = state.agents[1].holder();
    for s in [0, 1] {
        let fences = &state.stores[s].fences;
        assert!(
            fences.values().flatten().any(|f| f.holder == sub),
            "store {s} holds p0's sub-agent's fence: {fences:?}"
        );
    }
    let mirrored_steps: Vec<Step> = steps.iter().map(|&s| swap.step(s)).collect();
    let mirrored = walk_steps(&config, &mirrored_steps);
    assert!(mirrored.stores[2].fences.values().flatten().count() > 0);
    assert_ne!(state.key(), mirrored.key());
    assert_eq!(
        state.key_under(1, swap),
        mirrored.key(),
        "renaming p0 and p1 misses something the state holds"
    );
    assert_eq!(
        state.canonical_key(&symmetry),
        mirrored.canonical_key(&symmetry)
    );
}
