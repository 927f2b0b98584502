//! What `rotor status --store postgres://…` shows: the same report as the fs
//! host (stores, profiles, expiry, generations, in-doubt fences, fingerprints
//! only), with the server named by its redacted URL, plus each refresh lock's
//! epoch and the server session that holds it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rotor_fs::lock::{HolderMeta, LockState};
use rotor_fs::status::{LockReport, Report, StoreReport};
use rotor_kernel::LockKey;
use serde_json::{json, Value};

use crate::error::Fault;
use crate::session::Target;

/// One refresh lock row.
#[derive(Clone, Debug)]
pub struct LockRow {
    /// The lock key.
    pub key: String,
    /// Its epoch: how many times it was taken.
    pub epoch: i64,
    /// The server session (backend pid) of the last holder.
    pub backend_pid: i32,
    /// Whether that session holds it now.
    pub held: bool,
}

/// The report, and the lock rows it was made from.
#[derive(Clone, Debug)]
pub struct PgReport {
    /// The fs-shaped report.
    pub report: Report,
    /// The lock rows, in the report's lock order.
    pub locks: Vec<LockRow>,
}

impl PgReport {
    /// `rotor status --json`: the fs report's shape, plus `backend`, and per
    /// lock `epoch` and `backend_pid`.
    pub fn to_json(&self) -> Value {
        let mut value = self.report.to_json();
        value["backend"] = json!("postgres");
        value["store"] = json!(self.report.state_dir.display().to_string());
        if let Some(locks) = value["refresh_locks"].as_array_mut() {
            for (lock, row) in locks.iter_mut().zip(&self.locks) {
                lock["key"] = json!(row.key);
                lock["epoch"] = json!(row.epoch);
                lock["backend_pid"] = json!(row.backend_pid);
            }
        }
        value
    }

    /// `rotor status`.
    pub fn to_text(&self) -> String {
        self.report
            .to_text()
            .replacen("state directory ", "store ", 1)
    }
}

/// Reads every store and lock row (no lock taken).
pub fn gather(target: &Target, client: &mut postgres::Client) -> Result<PgReport, Fault> {
    let url = &target.url;
    let tables = &target.tables;
    let fault = |error: postgres::Error| Fault::of(url, "reading the status", &error);
    let now_ms = rotor_fs::lock::now_ms();
    let rows = client
        .query(
            &format!(
                "SELECT agent, doc::text FROM {} ORDER BY agent",
                tables.stores
            ),
            &[],
        )
        .map_err(fault)?;
    let mut keys: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut stores = Vec::new();
    for row in rows {
        let agent: String = row.get(0);
        let text: String = row.get(1);
        let doc = rotor_kernel::StoreDoc::from_json(text.as_bytes()).map_err(|e| e.to_string());
        if let Ok(doc) = &doc {
            for (profile, credential) in &doc.profiles {
                let key = LockKey::new(&credential.provider, profile);
                keys.insert(
                    key.as_str().to_owned(),
                    (credential.provider.to_string(), profile.clone()),
                );
            }
        }
        stores.push(StoreReport {
            path: PathBuf::from(format!("{}/{agent}", tables.stores)),
            agent,
            doc: doc.map(Some),
        });
    }
    let rows = client
        .query(
            &format!(
                "SELECT l.key, l.epoch, l.holder_pid, l.holder_host, l.holder_agent, l.since_ms,
                        l.backend_pid,
                        EXISTS (SELECT 1 FROM pg_locks p
                            WHERE p.locktype = 'advisory' AND p.granted AND p.objsubid = 1
                              AND p.pid = l.backend_pid
                              AND p.classid::bigint = ((l.advisory >> 32) & 4294967295)
                              AND p.objid::bigint = (l.advisory & 4294967295))
                 FROM {} l ORDER BY l.key",
                tables.locks
            ),
            &[],
        )
        .map_err(fault)?;
    let mut locks = Vec::new();
    let mut lock_rows = Vec::new();
    for row in rows {
        let key: String = row.get(0);
        let holder = HolderMeta {
            pid: u32::try_from(row.get::<_, i64>(2)).unwrap_or(0),
            start_ticks: None,
            host: row.get(3),
            agent: row.get(4),
            since_ms: row.get(5),
        };
        let held: bool = row.get(7);
        locks.push(LockReport {
            path: PathBuf::from(format!("{}/{key}", tables.locks)),
            profile: keys.get(&key).cloned(),
            state: if held {
                LockState::Held {
                    holder: Some(holder),
                }
            } else {
                LockState::Free { last: None }
            },
        });
        lock_rows.push(LockRow {
            key,
            epoch: row.get(1),
            backend_pid: row.get(6),
            held,
        });
    }
    Ok(PgReport {
        report: Report {
            state_dir: PathBuf::from(format!("{url} (schema {})", tables.schema)),
            now_ms,
            stores,
            locks,
        },
        locks: lock_rows,
    })
}
