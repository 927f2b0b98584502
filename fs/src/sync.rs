//! sync facade (filled by the model issue).
