//! The schema rotor owns: created and migrated by rotor itself, at first use.
//!
//! `rotor_schema` holds one row with the version. Opening checks it with one
//! statement (the fast path). When it is missing or older, the migration
//! runs in one transaction under `pg_advisory_xact_lock` on the schema's
//! own lock id, so that many processes starting at once migrate once: the
//! first does the work, the others wait for its commit, then find the
//! version current and do nothing. Every step is idempotent (`IF NOT
//! EXISTS`), and a version newer than this build knows is refused without
//! touching anything (a downgrade must not write a format it does not know).

use postgres::Client;
use sha2::{Digest, Sha256};

use crate::error::{Error, Fault};
use crate::tables::Tables;
use crate::url::StoreUrl;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i32 = 1;

/// Migration `n` takes the schema from version `n - 1` to `n`.
fn migration(tables: &Tables, version: i32) -> String {
    match version {
        1 => format!(
            "CREATE TABLE IF NOT EXISTS {stores} (
                 agent text PRIMARY KEY,
                 doc jsonb NOT NULL,
                 revision bigint NOT NULL,
                 updated_at_ms bigint NOT NULL
             );
             CREATE TABLE IF NOT EXISTS {locks} (
                 key text PRIMARY KEY,
                 advisory bigint NOT NULL,
                 epoch bigint NOT NULL,
                 holder_pid bigint NOT NULL,
                 holder_host text NOT NULL,
                 holder_agent text NOT NULL,
                 since_ms bigint NOT NULL,
                 backend_pid integer NOT NULL
             );",
            stores = tables.stores,
            locks = tables.locks
        ),
        _ => unreachable!("no migration to version {version}"),
    }
}

/// The id of an advisory lock, from a label and the schema: the first 8
/// bytes of sha256, so that two schemas in one database never share a lock.
pub fn advisory_id(schema: &str, label: &str) -> i64 {
    let mut hasher = Sha256::new();
    hasher.update(b"rotor-pg\0");
    hasher.update(schema.as_bytes());
    hasher.update(b"\0");
    hasher.update(label.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The version recorded in the schema, `None` when rotor never ran there
/// (no schema or no version table yet).
fn current_version(client: &mut Client, tables: &Tables) -> Result<Option<i32>, postgres::Error> {
    match client.query_opt(&format!("SELECT version FROM {}", tables.version), &[]) {
        Ok(row) => Ok(row.and_then(|row| row.try_get(0).ok())),
        // undefined_table, invalid_schema_name
        Err(error)
            if error
                .as_db_error()
                .is_some_and(|db| matches!(db.code().code(), "42P01" | "3F000")) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Makes sure the schema exists at [`SCHEMA_VERSION`]; refuses a newer one.
pub fn ensure(client: &mut Client, url: &StoreUrl, tables: &Tables) -> Result<(), Error> {
    let too_new = |found: i32| Error::SchemaTooNew {
        url: url.redacted().to_owned(),
        schema: tables.schema.clone(),
        found,
        supported: SCHEMA_VERSION,
    };
    let fault =
        |error: postgres::Error| Error::from(Fault::of(url, "migrating the schema", &error));
    match current_version(client, tables).map_err(fault)? {
        Some(found) if found == SCHEMA_VERSION => return Ok(()),
        Some(found) if found > SCHEMA_VERSION => return Err(too_new(found)),
        _ => {}
    }
    let mut tx = client.transaction().map_err(fault)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&advisory_id(&tables.schema, "schema")],
    )
    .map_err(fault)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         CREATE TABLE IF NOT EXISTS {version} (
             id integer PRIMARY KEY CHECK (id = 1),
             version integer NOT NULL,
             migrated_at timestamptz NOT NULL DEFAULT now()
         );",
        schema = tables.schema,
        version = tables.version
    ))
    .map_err(fault)?;
    let found: i32 = tx
        .query_opt(
            &format!("SELECT version FROM {} FOR UPDATE", tables.version),
            &[],
        )
        .map_err(fault)?
        .map_or(0, |row| row.get(0));
    if found > SCHEMA_VERSION {
        return Err(too_new(found));
    }
    for version in found + 1..=SCHEMA_VERSION {
        tx.batch_execute(&migration(tables, version))
            .map_err(fault)?;
        tracing::info!(schema = %tables.schema, version, "schema migrated");
    }
    tx.execute(
        &format!(
            "INSERT INTO {} (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, migrated_at = now()",
            tables.version
        ),
        &[&SCHEMA_VERSION],
    )
    .map_err(fault)?;
    tx.commit().map_err(fault)
}
