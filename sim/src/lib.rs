//! rotor-sim (skeleton; filled by the simulator issue).
