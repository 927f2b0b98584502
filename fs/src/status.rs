//! What `rotor status` shows: every store, its profiles (kind, provider,
//! expiry, generation, identity, needs-reauth marks, in-doubt fences) and
//! every refresh lock that is held or was left with a stale holder line.
//! Secrets appear only as fingerprints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rotor_kernel::{LockKey, StoreDoc};
use serde_json::{json, Value};

use crate::lock::{self, HolderMeta, LockState};
use crate::paths::{AgentId, Layout};
use crate::safe_fs;
use crate::settings::EndpointSettings;
use crate::store::StoreFile;

/// The whole report.
#[derive(Clone, Debug)]
pub struct Report {
    /// The state directory.
    pub state_dir: PathBuf,
    /// When the report was taken, epoch ms.
    pub now_ms: i64,
    /// One entry per agent directory.
    pub stores: Vec<StoreReport>,
    /// Refresh locks that are held, or carry a stale holder line.
    pub locks: Vec<LockReport>,
}

/// One store.
#[derive(Clone, Debug)]
pub struct StoreReport {
    /// The agent.
    pub agent: String,
    /// The store file.
    pub path: PathBuf,
    /// The document, or why it could not be read.
    pub doc: Result<Option<StoreDoc>, String>,
}

/// One refresh lock.
#[derive(Clone, Debug)]
pub struct LockReport {
    /// The lock file.
    pub path: PathBuf,
    /// The (provider, profile) it belongs to, when a store names it.
    pub profile: Option<(String, String)>,
    /// Held or free.
    pub state: LockState,
}

fn holder_json(holder: &HolderMeta, now_ms: i64) -> Value {
    json!({
        "pid": holder.pid,
        "host": holder.host,
        "agent": holder.agent,
        "since_ms": holder.since_ms,
        "held_ms": now_ms.saturating_sub(holder.since_ms).max(0),
        "alive": holder.is_alive(),
    })
}

/// Gathers the report (lock-free reads and lock probes only).
pub fn gather(layout: &Layout) -> Result<Report, rotor_kernel::StoreFault> {
    safe_fs::check_root(layout.root(), false)?;
    let now_ms = lock::now_ms();
    let mut agents: Vec<String> = Vec::new();
    if safe_fs::dir_chain(layout.root(), &["agents"], false)?.is_some() {
        let entries = std::fs::read_dir(layout.agents_dir())
            .map_err(|e| safe_fs::io_fault(&layout.agents_dir(), "listing", &e))?;
        for entry in entries.flatten() {
            agents.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    agents.sort();
    let mut stores = Vec::new();
    let mut keys: BTreeMap<String, (String, String)> = BTreeMap::new();
    for agent in agents {
        let Ok(id) = AgentId::new(&agent) else {
            continue;
        };
        let file = StoreFile::new(layout, &id, 0);
        let doc = file.read_doc().map_err(|fault| fault.detail);
        if let Ok(Some(doc)) = &doc {
            for (profile, credential) in &doc.profiles {
                let key = LockKey::new(&credential.provider, profile);
                keys.insert(
                    key.file_name(),
                    (credential.provider.to_string(), profile.clone()),
                );
            }
        }
        stores.push(StoreReport {
            agent,
            path: file.path().to_path_buf(),
            doc,
        });
    }
    let mut locks = Vec::new();
    if safe_fs::dir_chain(layout.root(), &Layout::LOCK_DIR_COMPONENTS, false)?.is_some() {
        let mut names: Vec<String> = std::fs::read_dir(layout.lock_dir())
            .map_err(|e| safe_fs::io_fault(&layout.lock_dir(), "listing", &e))?
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".lock"))
            .collect();
        names.sort();
        for name in names {
            let path = layout.lock_dir().join(&name);
            let state = lock::inspect(&path)?;
            let interesting = match &state {
                LockState::Held { .. } => true,
                LockState::Free { last } => last.is_some(),
                LockState::Absent => false,
            };
            if interesting {
                locks.push(LockReport {
                    profile: keys.get(&name).cloned(),
                    path,
                    state,
                });
            }
        }
    }
    Ok(Report {
        state_dir: layout.root().to_path_buf(),
        now_ms,
        stores,
        locks,
    })
}

impl Report {
    /// The report as JSON (what `rotor status --json` prints).
    pub fn to_json(&self) -> Value {
        let now_ms = self.now_ms;
        let stores: Vec<Value> = self
            .stores
            .iter()
            .map(|store| {
                let mut entry = json!({
                    "agent": store.agent,
                    "path": store.path.display().to_string(),
                });
                match &store.doc {
                    Err(error) => entry["error"] = json!(error),
                    Ok(None) => entry["missing"] = json!(true),
                    Ok(Some(doc)) => {
                        let profiles: BTreeMap<&String, Value> = doc
                            .profiles
                            .iter()
                            .map(|(id, c)| {
                                let endpoint = match EndpointSettings::of(c) {
                                    Ok(EndpointSettings::Http(h)) => json!({"token_url": h.token_url, "client_id": h.client_id, "auth_method": h.auth_method.as_str()}),
                                    Ok(EndpointSettings::Command(argv)) => json!({"refresh_command": argv[0]}),
                                    Err(_) => Value::Null,
                                };
                                let fences: Vec<Value> = doc.fences.get(id).into_iter().flatten().map(|f| {
                                    json!({
                                        "generation": f.generation,
                                        "refresh_fp": f.refresh_fp.as_str(),
                                        "holder": {"pid": f.holder.pid, "host": f.holder.host, "agent": f.holder.agent},
                                        "started_at_ms": f.started_at_ms,
                                        "age_ms": now_ms.saturating_sub(f.started_at_ms),
                                        "attempt": f.attempt,
                                        "rotated": f.rotated,
                                    })
                                }).collect();
                                (
                                    id,
                                    json!({
                                        "type": c.kind.as_str(),
                                        "provider": c.provider,
                                        "generation": c.generation,
                                        "expires_at_ms": c.expires_at_ms,
                                        "expires_in_ms": c.expires_at_ms.map(|e| e.saturating_sub(now_ms)),
                                        "needs_reauth": c.needs_reauth,
                                        "account_id": c.account_id,
                                        "email": c.email,
                                        "tenant": c.tenant,
                                        "access_fp": c.access.as_ref().map(|s| s.fingerprint().as_str().to_owned()),
                                        "refresh_fp": c.refresh_fingerprint().map(|f| f.as_str().to_owned()),
                                        "endpoint": endpoint,
                                        "in_doubt_fences": fences,
                                    }),
                                )
                            })
                            .collect();
                        entry["profiles"] = json!(profiles);
                        entry["has_state"] = json!(doc.state.is_some());
                    }
                }
                entry
            })
            .collect();
        let locks: Vec<Value> = self
            .locks
            .iter()
            .map(|lock| {
                let (held, holder) = match &lock.state {
                    LockState::Held { holder } => (true, holder.as_ref()),
                    LockState::Free { last } => (false, last.as_ref()),
                    LockState::Absent => (false, None),
                };
                json!({
                    "path": lock.path.display().to_string(),
                    "provider": lock.profile.as_ref().map(|p| &p.0),
                    "profile": lock.profile.as_ref().map(|p| &p.1),
                    "held": held,
                    "holder": holder.map(|h| holder_json(h, now_ms)),
                })
            })
            .collect();
        json!({
            "state_dir": self.state_dir.display().to_string(),
            "now_ms": now_ms,
            "stores": stores,
            "refresh_locks": locks,
        })
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let now_ms = self.now_ms;
        let mut out = String::new();
        let _ = writeln!(out, "state directory {}", self.state_dir.display());
        if self.stores.is_empty() {
            let _ = writeln!(out, "  no stores yet: run `rotor login`");
        }
        for store in &self.stores {
            let _ = writeln!(out, "agent {} ({})", store.agent, store.path.display());
            match &store.doc {
                Err(error) => {
                    let _ = writeln!(out, "  ERROR: {error}");
                }
                Ok(None) => {
                    let _ = writeln!(out, "  (no store file)");
                }
                Ok(Some(doc)) => {
                    for (id, c) in &doc.profiles {
                        let expiry = match c.expires_at_ms {
                            Some(at) if at > now_ms => {
                                format!("expires in {} s", (at - now_ms) / 1000)
                            }
                            Some(at) => format!("expired {} s ago", (now_ms - at) / 1000),
                            None => "no expiry (treated as expired)".into(),
                        };
                        let _ = writeln!(
                            out,
                            "  {id}: {} {} generation {}, {expiry}{}",
                            c.kind.as_str(),
                            c.provider,
                            c.generation,
                            if c.needs_reauth {
                                ", NEEDS REAUTH (run `rotor login`)"
                            } else {
                                ""
                            }
                        );
                        for fence in doc.fences.get(id).into_iter().flatten() {
                            let age_s = now_ms.saturating_sub(fence.started_at_ms) / 1000;
                            let _ = if fence.rotated {
                                writeln!(
                                    out,
                                    "    SPENT TOKEN: generation {} token {} was rotated by {} {age_s} s ago; its successor is not in this store, so copies of it will not be presented",
                                    fence.generation, fence.refresh_fp, fence.holder
                                )
                            } else {
                                writeln!(
                                    out,
                                    "    IN-DOUBT FENCE: generation {} token {} presented by {} {age_s} s ago; outcome unknown, the token will not be presented again",
                                    fence.generation, fence.refresh_fp, fence.holder
                                )
                            };
                        }
                    }
                }
            }
        }
        for lock in &self.locks {
            let name = lock
                .profile
                .as_ref()
                .map(|(provider, profile)| format!("{provider} / {profile}"))
                .unwrap_or_else(|| lock.path.display().to_string());
            let _ = match &lock.state {
                LockState::Held { holder: Some(h) } => {
                    writeln!(out, "refresh lock {name}: HELD by {}", h.describe(now_ms))
                }
                LockState::Held { holder: None } => writeln!(out, "refresh lock {name}: HELD"),
                LockState::Free { last: Some(h) } => writeln!(
                    out,
                    "refresh lock {name}: free (last holder pid {} did not clean up: it crashed?)",
                    h.pid
                ),
                _ => Ok(()),
            };
        }
        out
    }
}
