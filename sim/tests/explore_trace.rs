//! Explorer trace files (`explore/file.rs`) with the shipped host: a file
//! that is not a trace is a typed error, a simulator trace still reads as
//! one, and a hand-made counterexample the shipped host does not have does
//! not reproduce. Broken hosts' files round-trip in `explore_bugs.rs`.

use std::sync::Arc;

use rotor_sim::explore::{
    read_trace_file, replay, AnyTraceFile, ExploreConfig, ExploreTraceFile, NotReproduced,
    TraceFileError,
};
use rotor_sim::{run_seed, Guarantee, Overrides, RunOptions, Shipped, TraceFile, TraceMode};

/// A file claiming G8 at the end of a real path of the shipped host's
/// crash-faults world (the shipped host violates nothing there).
fn hand_made_g8() -> serde_json::Value {
    let config = ExploreConfig::preset("crash-faults").expect("a preset");
    let path = [0u32, 0, 0];
    let (lines, _) = replay(&config, Arc::new(Shipped), &path).expect("the path replays");
    serde_json::json!({
        "rotor_explore_trace": 1,
        "world": "crash-faults",
        "config": config,
        "host": "shipped",
        "guarantee": "G8",
        "violations": [{ "guarantee": "G8", "detail": "hand-made", "expected": false }],
        "path": path,
        "lines": lines,
        "replay": "rotor replay --exhaustive crash-faults --path 0,0,0",
    })
}

#[test]
fn a_hand_made_g8_file_does_not_reproduce_on_the_shipped_host_g8() {
    let text = hand_made_g8().to_string();
    let Ok(AnyTraceFile::Explorer(file)) = read_trace_file(&text) else {
        panic!(
            "not read as an explorer trace: {:?}",
            read_trace_file(&text)
        );
    };
    assert_eq!(file.guarantee, Guarantee::G8);
    assert_eq!(
        file.replay(Arc::new(Shipped)),
        Err(NotReproduced::Violations {
            recorded: vec![Guarantee::G8],
            replayed: vec![],
        })
    );
}

#[test]
fn a_file_that_is_not_an_explorer_trace_is_a_typed_error() {
    assert!(matches!(
        read_trace_file("garbage, not JSON"),
        Err(TraceFileError::NotJson(_))
    ));
    assert_eq!(read_trace_file("[1, 2]"), Err(TraceFileError::NotATrace));
    assert_eq!(
        ExploreTraceFile::from_json("{\"rotor_trace\": 1}"),
        Err(TraceFileError::NotATrace)
    );
    let mut other_version = hand_made_g8();
    other_version["rotor_explore_trace"] = 2.into();
    assert_eq!(
        read_trace_file(&other_version.to_string()),
        Err(TraceFileError::Version { found: 2 })
    );
    let mut cases = Vec::new();
    let mut no_path = hand_made_g8();
    no_path.as_object_mut().expect("an object").remove("path");
    cases.push(("no path", no_path));
    let mut mistyped = hand_made_g8();
    mistyped["path"] = "0,0,0".into();
    cases.push(("a mistyped path", mistyped));
    let mut short = hand_made_g8();
    short["lines"].as_array_mut().expect("lines").pop();
    cases.push(("fewer lines than steps", short));
    let mut other_guarantee = hand_made_g8();
    other_guarantee["guarantee"] = "G1".into();
    cases.push(("a guarantee not among its violations", other_guarantee));
    let mut marker = hand_made_g8();
    marker["rotor_explore_trace"] = "one".into();
    cases.push(("a marker that is no version", marker));
    for (what, value) in cases {
        match read_trace_file(&value.to_string()) {
            Err(TraceFileError::Malformed(error)) => eprintln!("{what}: {error}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn a_simulator_trace_file_still_reads_as_one() {
    let options = RunOptions::default().with_trace(TraceMode::Full);
    let outcome = run_seed(7, &Overrides::default(), &options);
    let file = TraceFile::from_outcome(&outcome, None);
    match read_trace_file(&file.to_json()) {
        Ok(AnyTraceFile::Simulator(read)) => assert_eq!(*read, file),
        other => panic!("a simulator trace read as {other:?}"),
    }
    assert!(matches!(
        read_trace_file("{\"rotor_trace\": 99}"),
        Err(TraceFileError::Simulator(_))
    ));
}
