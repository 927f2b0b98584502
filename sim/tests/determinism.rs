//! One seed derives everything: the same seed twice gives a byte-identical
//! trace, and a trace file replays to the same trace.

use rotor_sim::{run_seed, Overrides, RunOptions, TraceFile, TraceMode};

#[test]
fn the_same_seed_twice_gives_byte_identical_traces() {
    let options = RunOptions::default().with_trace(TraceMode::Full);
    for seed in [0u64, 1, 7, 42, 0xdead_beef, u64::MAX] {
        let a = TraceFile::from_outcome(&run_seed(seed, &Overrides::default(), &options), None);
        let b = TraceFile::from_outcome(&run_seed(seed, &Overrides::default(), &options), None);
        assert!(
            !a.events.is_empty(),
            "seed {seed:#x}: an empty trace proves nothing"
        );
        assert_eq!(a.to_json(), b.to_json(), "seed {seed:#x}: traces differ");
    }
}

#[test]
fn hash_mode_agrees_with_full_mode_and_differs_across_seeds() {
    let full = RunOptions::default().with_trace(TraceMode::Full);
    let hash = RunOptions::default().with_trace(TraceMode::Hash);
    let mut hashes = std::collections::BTreeSet::new();
    for seed in 0..40u64 {
        let a = run_seed(seed, &Overrides::default(), &full);
        let b = run_seed(seed, &Overrides::default(), &hash);
        assert_eq!(a.trace.hash(), b.trace.hash(), "seed {seed}");
        assert_eq!(a.trace.len(), b.trace.len(), "seed {seed}");
        hashes.insert(a.trace.hash());
    }
    assert_eq!(hashes.len(), 40, "distinct seeds gave identical traces");
}

#[test]
fn a_trace_file_round_trips_and_replays_to_the_same_hash() {
    let options = RunOptions::default().with_trace(TraceMode::Full);
    let outcome = run_seed(3, &Overrides::default(), &options);
    let file = TraceFile::from_outcome(&outcome, None);
    let read = TraceFile::from_json(&file.to_json()).expect("a trace file reads back");
    assert_eq!(read, file);
    let again = rotor_sim::run_config(read.config.clone(), &options);
    assert_eq!(format!("{:016x}", again.trace.hash()), read.hash);
    assert!(TraceFile::from_json("{}").is_err());
    let mut future = file.clone();
    future.rotor_trace = 99;
    let error = TraceFile::from_json(&future.to_json()).unwrap_err();
    assert!(error.contains("version 99"), "{error}");
}
