//! Store files: lock-free reads, read-modify-writes under a sidecar lock,
//! atomic durable replacement, and corrupt files kept aside (G4, G6, G10).
//!
//! A reader opens the file (no-follow) and decodes it: writers only ever
//! replace the file by rename, so a reader sees a whole old or a whole new
//! document. A writer takes an exclusive `flock` on `<store>.lock` (bounded
//! wait), reads the document, applies its change, and replaces the file with
//! [`safe_fs::write_atomic`]. Every writer of a store goes through that lock,
//! rotor's own and any other tool that uses [`StoreFile::update`] (usage
//! statistics, ordering), so no update is lost (G4).
//!
//! A file that does not decode is never overwritten: it is copied to
//! `<store>.corrupt-<fingerprint>` (the first 12 hex digits of the sha256 of
//! its bytes, so repeated reads make one copy) and every read and write of
//! that store fails with a [`StoreFaultKind::Corrupt`] fault naming both
//! paths, until a person moves the file away (G10).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rotor_kernel::driver::Stores;
use rotor_kernel::{
    Mutation, ProfileView, StoreDoc, StoreFault, StoreFaultKind, StoreRef, WriteOutcome,
};
use sha2::{Digest, Sha256};

use crate::failpoint;
use crate::io::{Io, OsIo};
use crate::lock::{self, HolderMeta};
use crate::paths::{store_lock_path, AgentId, Layout};
use crate::safe_fs;

/// One store file and its sidecar lock, over an [`Io`] (the real file
/// system unless built with [`StoreFile::with_io`]).
#[derive(Clone, Debug)]
pub struct StoreFile {
    io: Arc<dyn Io>,
    root: PathBuf,
    agent: AgentId,
    path: PathBuf,
    lock_path: PathBuf,
    store_lock_wait_ms_max: u64,
}

impl StoreFile {
    /// The store of `agent` under `layout`, whose writers wait at most
    /// `store_lock_wait_ms_max` for the store lock. Nothing is touched yet.
    pub fn new(layout: &Layout, agent: &AgentId, store_lock_wait_ms_max: u64) -> StoreFile {
        StoreFile::with_io(Arc::new(OsIo), layout, agent, store_lock_wait_ms_max)
    }

    /// The same store over another [`Io`] (a simulated file system, or a
    /// test's wrapper that breaks one rule of the real one).
    pub fn with_io(
        io: Arc<dyn Io>,
        layout: &Layout,
        agent: &AgentId,
        store_lock_wait_ms_max: u64,
    ) -> StoreFile {
        let path = layout.store_path(agent);
        StoreFile {
            io,
            root: layout.root().to_path_buf(),
            agent: agent.clone(),
            lock_path: store_lock_path(&path),
            path,
            store_lock_wait_ms_max,
        }
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sidecar lock's path.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Checks the directories on the way (no symlinks, safe modes); with
    /// `create`, makes them. `false` when a directory is missing.
    fn check_dirs(&self, create: bool) -> Result<bool, StoreFault> {
        let io = self.io.as_ref();
        if !create && io.lstat(&self.root).is_err() {
            return Ok(false);
        }
        safe_fs::check_root_on(io, &self.root, create)?;
        let components = Layout::agent_dir_components(&self.agent);
        Ok(safe_fs::dir_chain_on(io, &self.root, &components, create)?.is_some())
    }

    /// Reads the document without a lock. A missing file is `None`; a
    /// corrupt one is kept aside and reported.
    pub fn read_doc(&self) -> Result<Option<StoreDoc>, StoreFault> {
        if !self.check_dirs(false)? {
            return Ok(None);
        }
        let Some(bytes) = safe_fs::read_file_on(self.io.as_ref(), &self.path)? else {
            return Ok(None);
        };
        self.decode(&bytes).map(Some)
    }

    fn decode(&self, bytes: &[u8]) -> Result<StoreDoc, StoreFault> {
        StoreDoc::from_json(bytes).map_err(|error| {
            let fingerprint: String = Sha256::digest(bytes)
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect();
            let mut name = self.path.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".corrupt-{fingerprint}"));
            let backup = self.path.with_file_name(name);
            let io = self.io.as_ref();
            let kept = match safe_fs::read_file_on(io, &backup) {
                Ok(Some(existing)) if existing == bytes => Ok(()),
                _ => safe_fs::write_atomic_on(io, &backup, bytes, "corrupt-copy"),
            };
            let kept = match kept {
                Ok(()) => format!("a copy is kept at {}", backup.display()),
                Err(fault) => format!("could not keep a copy ({})", fault.detail),
            };
            tracing::error!(store = %self.path.display(), %error, "corrupt store");
            StoreFault {
                kind: StoreFaultKind::Corrupt,
                detail: format!(
                    "store {} is corrupt ({error}); {kept}; rotor will not overwrite it: \
                     repair it or move it away, then run `rotor login`",
                    self.path.display()
                ),
            }
        })
    }

    /// One profile, read without a lock.
    pub fn read_view(&self, profile: &str) -> Result<ProfileView, StoreFault> {
        Ok(self
            .read_doc()?
            .map(|doc| doc.view(profile))
            .unwrap_or_default())
    }

    /// Read-modify-write under the store lock: `change` gets the current
    /// document (empty when the file is missing) and returns a value and
    /// whether to write the document back. The write is atomic and durable;
    /// `label` names it for failpoints. This is the one door for every
    /// writer of a store, rotor's and others' (G4).
    pub fn update<T>(
        &self,
        label: &str,
        change: impl FnOnce(&mut StoreDoc) -> (T, bool),
    ) -> Result<T, StoreFault> {
        self.check_dirs(true)?;
        let meta = HolderMeta::current(self.agent.as_str());
        let io = self.io.as_ref();
        let _held = io
            .lock_exclusive(&self.lock_path, self.store_lock_wait_ms_max, &meta)
            .map_err(|wait| match wait.error {
                Some(fault) => fault,
                None => StoreFault {
                    kind: StoreFaultKind::LockTimeout,
                    detail: format!(
                        "store lock {} not acquired after {} ms{}",
                        self.lock_path.display(),
                        wait.waited_ms,
                        wait.holder
                            .map(|h| format!("; held by {}", h.describe(lock::now_ms())))
                            .unwrap_or_default()
                    ),
                },
            })?;
        let mut doc = match safe_fs::read_file_on(io, &self.path)? {
            Some(bytes) => self.decode(&bytes)?,
            None => StoreDoc::default(),
        };
        let before = doc.clone();
        let (value, write) = change(&mut doc);
        if write && doc != before {
            failpoint::hit(&format!("before-write:{label}"));
            safe_fs::write_atomic_on(io, &self.path, &doc.to_json(), label)?;
            failpoint::hit(&format!("after-write:{label}"));
            // Under the store lock: a writer that died mid-write left its
            // temp file; nobody else will.
            let removed = safe_fs::remove_stale_temps_on(io, &self.path);
            if removed > 0 {
                tracing::debug!(store = %self.path.display(), removed, "stale temp files removed");
            }
        }
        Ok(value)
    }

    /// Applies a kernel mutation to `profile` (see [`StoreDoc::apply`]).
    pub fn apply(&self, profile: &str, mutation: &Mutation) -> Result<WriteOutcome, StoreFault> {
        let label = failpoint::mutation_label(mutation);
        let outcome = self.update(label, |doc| {
            let outcome = doc.apply(profile, mutation);
            let write = !matches!(outcome, WriteOutcome::Conflict(_));
            (outcome, write)
        })?;
        tracing::debug!(store = %self.path.display(), profile, mutation = label, ?outcome, "store write");
        Ok(outcome)
    }
}

/// The two stores one agent sees (the kernel's [`Stores`]): its own and
/// main. For the main agent both are the main store.
#[derive(Clone, Debug)]
pub struct FsStores {
    own: StoreFile,
    main: StoreFile,
}

impl FsStores {
    /// The stores of `agent` under `layout`.
    pub fn new(layout: &Layout, agent: &AgentId, store_lock_wait_ms_max: u64) -> FsStores {
        FsStores::with_io(Arc::new(OsIo), layout, agent, store_lock_wait_ms_max)
    }

    /// The same stores over another [`Io`].
    pub fn with_io(
        io: Arc<dyn Io>,
        layout: &Layout,
        agent: &AgentId,
        store_lock_wait_ms_max: u64,
    ) -> FsStores {
        FsStores {
            own: StoreFile::with_io(io.clone(), layout, agent, store_lock_wait_ms_max),
            main: StoreFile::with_io(io, layout, &AgentId::main(), store_lock_wait_ms_max),
        }
    }

    /// One of the two store files.
    pub fn file(&self, store: StoreRef) -> &StoreFile {
        match store {
            StoreRef::Own => &self.own,
            StoreRef::Main => &self.main,
        }
    }
}

impl Stores for FsStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        self.file(store).read_view(profile)
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        self.file(store).apply(profile, mutation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotor_kernel::Credential;

    fn store(temp: &tempfile::TempDir) -> StoreFile {
        StoreFile::new(&Layout::new(temp.path().join("s")), &AgentId::main(), 1_000)
    }

    #[test]
    fn missing_store_reads_empty_and_update_creates_it_g6() {
        let temp = tempfile::tempdir().unwrap();
        let file = store(&temp);
        assert_eq!(file.read_view("p").unwrap(), ProfileView::default());
        let login = Mutation::Login {
            credential: Credential::oauth("prov", "a", "r", 5).into(),
        };
        assert_eq!(file.apply("p", &login).unwrap(), WriteOutcome::Applied);
        let view = file.read_view("p").unwrap();
        assert_eq!(view.credential.unwrap().generation, 1);
    }

    #[test]
    fn state_and_other_profiles_survive_a_mutation_g4() {
        let temp = tempfile::tempdir().unwrap();
        let file = store(&temp);
        file.update("update", |doc| {
            doc.state = Some(serde_json::json!({"usage": {"n": 7}}));
            doc.extra.insert("lastGood".into(), serde_json::json!("x"));
            doc.profiles
                .insert("other".into(), Credential::oauth("q", "a2", "r2", 9));
            ((), true)
        })
        .unwrap();
        let login = Mutation::Login {
            credential: Credential::oauth("prov", "a", "r", 5).into(),
        };
        file.apply("p", &login).unwrap();
        let doc = file.read_doc().unwrap().unwrap();
        assert_eq!(doc.state, Some(serde_json::json!({"usage": {"n": 7}})));
        assert_eq!(doc.extra["lastGood"], serde_json::json!("x"));
        assert!(doc.profiles.contains_key("other"));
    }

    #[test]
    fn a_corrupt_store_is_kept_aside_and_never_overwritten_g10() {
        let temp = tempfile::tempdir().unwrap();
        let file = store(&temp);
        file.update("update", |_| ((), false)).unwrap();
        std::fs::write(file.path(), b"{\"profiles\": [1,").unwrap();
        let fault = file.read_view("p").unwrap_err();
        assert_eq!(fault.kind, StoreFaultKind::Corrupt);
        assert!(fault.detail.contains(&file.path().display().to_string()));
        let backup = std::fs::read_dir(file.path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains(".corrupt-"))
            .expect("a backup");
        assert!(
            fault.detail.contains(&backup.display().to_string()),
            "{}",
            fault.detail
        );
        assert_eq!(std::fs::read(&backup).unwrap(), b"{\"profiles\": [1,");
        let login = Mutation::Login {
            credential: Credential::oauth("prov", "a", "r", 5).into(),
        };
        assert_eq!(
            file.apply("p", &login).unwrap_err().kind,
            StoreFaultKind::Corrupt
        );
        assert_eq!(std::fs::read(file.path()).unwrap(), b"{\"profiles\": [1,");
        // A second read makes no second copy.
        file.read_view("p").unwrap_err();
        let copies = std::fs::read_dir(file.path().parent().unwrap())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".corrupt-")
            })
            .count();
        assert_eq!(copies, 1);
    }
}
