//! rotor-model (skeleton; filled by the model issue).
