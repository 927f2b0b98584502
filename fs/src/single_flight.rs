//! In-process single-flight (filled by the model issue).
