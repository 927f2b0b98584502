//! rotor's tables inside its schema, named once.
//!
//! - `rotor_schema`: one row, the schema version (module `schema`);
//! - `stores`: one JSON store document per agent (`main` is the main store),
//!   with a revision bumped by every write;
//! - `refresh_locks`: one row per lock key ever taken: the lock epoch (the
//!   fencing token every acquisition advances) and the last holder (pid,
//!   host, agent, since, its server session), for `rotor status`.

/// Qualified table names of one schema (the schema was checked by
/// [`crate::url::check_schema`], so quoting it is enough).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    /// The schema.
    pub schema: String,
    /// `"schema".rotor_schema`.
    pub version: String,
    /// `"schema".stores`.
    pub stores: String,
    /// `"schema".refresh_locks`.
    pub locks: String,
}

impl Tables {
    /// The tables of `schema`.
    pub fn new(schema: &str) -> Tables {
        let qualified = |table: &str| format!("\"{schema}\".{table}");
        Tables {
            schema: schema.to_owned(),
            version: qualified("rotor_schema"),
            stores: qualified("stores"),
            locks: qualified("refresh_locks"),
        }
    }
}
