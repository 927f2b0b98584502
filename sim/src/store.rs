//! A simulated store file: pending versus durable contents, torn writes, and
//! the reference document the G4 checker compares against.
//!
//! The model follows what a filesystem does (turmoil's rule: faults must match
//! real semantics):
//! - rotor's host writes a temp file, fsyncs it, renames it over the store and
//!   fsyncs the directory: readers see the old or the new document, never a
//!   mix. After the fsync the contents are durable.
//! - a *lost fsync* reports success but persists nothing: the new contents are
//!   visible, not durable, until a later fsync of the same file; if the
//!   writer's process crashes first, the store reverts to its durable contents.
//! - a writer that does not replace the file by rename (an in-place writer)
//!   can die mid-write and leave a torn prefix: the file is corrupt for every
//!   reader until someone repairs it; rotor's host keeps such a file aside and
//!   never overwrites it (G10).
//!
//! `version` counts every change of the contents. A read-modify-write that
//! writes back a document read at an older version overwrites a concurrent
//! write: a lost update (G4).

use std::sync::Arc;

use rotor_kernel::{
    Credential, DecodeError, Fence, ProfileView, StoreDoc, StoreFault, StoreFaultKind,
};

/// What a store file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A decodable document, shared: a writer that read it holds the same
    /// one, and a copy is made only when both would differ.
    Doc(Arc<StoreDoc>),
    /// Bytes that do not decode (a torn in-place write).
    Torn(Vec<u8>),
}

/// What one write replaced in a document: one profile's credential and
/// fences (all a store mutation may touch), to rebuild the contents before
/// it without having copied the whole document.
#[derive(Clone, Debug)]
pub struct Undo {
    /// The profile written.
    pub profile: &'static str,
    /// Its credential before the write (shared with the document it was in).
    pub credential: Option<Arc<Credential>>,
    /// Its fences before the write.
    pub fences: Option<Vec<Fence>>,
}

impl Undo {
    /// Puts the profile's entries of `doc` back as they were.
    pub fn restore(&self, doc: &mut StoreDoc) {
        match &self.credential {
            Some(credential) => doc
                .profiles
                .insert(self.profile.into(), Arc::clone(credential)),
            None => doc.profiles.remove(self.profile),
        };
        match &self.fences {
            Some(fences) => doc.fences.insert(self.profile.into(), fences.clone()),
            None => doc.fences.remove(self.profile),
        };
    }
}

/// Who holds a store's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// An agent, by index.
    Agent(u16),
    /// A background actor, by index.
    Actor(u8),
}

/// One store file.
///
/// The durable contents are kept only while they differ from the visible
/// ones (after a lost fsync): a synced write costs no copy.
#[derive(Clone, Debug)]
pub struct SimStore {
    /// What readers see.
    pub visible: Content,
    /// What survives a crash, when it differs from `visible`.
    durable_behind: Option<Content>,
    /// The process whose lost-fsync write is visible but not durable.
    pub unsynced_by: Option<u8>,
    /// Bumped by every change of the contents (G4).
    pub version: u64,
    /// The store lock's holder (the lock every read-modify-write takes).
    pub lock: Option<Owner>,
    /// Agents waiting for the store lock: (agent, epoch).
    pub waiters: Vec<(u16, u32)>,
    /// Ground truth (oracle): the last crash that freed the store lock, as
    /// (process, instant): a holder gone before a wait ran out.
    pub freed_by_crash: Option<(u8, u64)>,
    /// Highest entry generation seen since the last revert (G5).
    pub generation_seen: i64,
    /// True once an in-place writer's torn write replaced the contents
    /// (decodable or not): whatever rotor had stored there is gone.
    pub destroyed: bool,
    /// Families below this id may not come back (a login or logout), G11.
    pub banned_below: u32,
    /// The same, as of the durable contents.
    pub banned_below_durable: u32,
}

impl SimStore {
    /// A store holding `doc`, durable.
    pub fn new(doc: StoreDoc) -> Self {
        let generation_seen = doc
            .profiles
            .values()
            .map(|c| c.generation as i64)
            .max()
            .unwrap_or(-1);
        SimStore {
            visible: Content::Doc(Arc::new(doc)),
            durable_behind: None,
            unsynced_by: None,
            version: 0,
            lock: None,
            waiters: Vec::new(),
            freed_by_crash: None,
            generation_seen,
            destroyed: false,
            banned_below: 0,
            banned_below_durable: 0,
        }
    }

    /// The visible document, if it decodes.
    pub fn doc(&self) -> Option<&StoreDoc> {
        match &self.visible {
            Content::Doc(doc) => Some(doc),
            Content::Torn(_) => None,
        }
    }

    /// A lock-free read of one profile, as rotor's host does it.
    pub fn read(&self, profile: &str, name: &str) -> Result<ProfileView, StoreFault> {
        match &self.visible {
            Content::Doc(doc) => Ok(doc.view(profile)),
            Content::Torn(bytes) => match StoreDoc::from_json(bytes) {
                Ok(doc) => Ok(doc.view(profile)),
                Err(error) => Err(corrupt(name, &error)),
            },
        }
    }

    /// The document a read-modify-write starts from, decoded like the host
    /// decodes it.
    pub fn load(&self, name: &str) -> Result<Arc<StoreDoc>, StoreFault> {
        match &self.visible {
            Content::Doc(doc) => Ok(Arc::clone(doc)),
            Content::Torn(bytes) => StoreDoc::from_json(bytes)
                .map(Arc::new)
                .map_err(|e| corrupt(name, &e)),
        }
    }

    /// What survives a crash.
    pub fn durable(&self) -> &Content {
        self.durable_behind.as_ref().unwrap_or(&self.visible)
    }

    /// Replaces the contents by rename. `synced` false models a lost fsync
    /// by `process`; true makes everything durable.
    pub fn replace(&mut self, doc: Arc<StoreDoc>, synced: bool, process: u8) {
        let previous = std::mem::replace(&mut self.visible, Content::Doc(doc));
        self.written(synced, Some(previous), process);
    }

    /// Bookkeeping of a write by `process` that replaced `previous`: a
    /// synced write makes everything durable; a lost fsync keeps the oldest
    /// durable contents (the first lost write's `previous`).
    fn written(&mut self, synced: bool, previous: Option<Content>, process: u8) {
        self.version += 1;
        if synced {
            self.durable_behind = None;
            self.banned_below_durable = self.banned_below;
            self.unsynced_by = None;
        } else {
            if self.durable_behind.is_none() {
                self.durable_behind = previous;
            }
            self.unsynced_by = Some(process);
        }
    }

    /// The visible document, for a write applied in place and then synced
    /// (call [`SimStore::synced_in_place`] after a change).
    pub fn doc_mut(&mut self) -> Option<&mut StoreDoc> {
        match &mut self.visible {
            Content::Doc(doc) => Some(Arc::make_mut(doc)),
            Content::Torn(_) => None,
        }
    }

    /// Replaces the contents by rename with `doc`, a document read earlier,
    /// changed by `change`, like [`SimStore::replace`]. When the old contents
    /// need not be kept (synced, or an earlier lost write keeps the durable
    /// ones) and `doc` is still the visible document, it changes in place:
    /// no copy.
    pub fn replace_changed(
        &mut self,
        mut doc: Arc<StoreDoc>,
        change: impl FnOnce(&mut StoreDoc),
        synced: bool,
        process: u8,
    ) {
        let previous = std::mem::replace(&mut self.visible, Content::Torn(Vec::new()));
        let keep = !synced && self.durable_behind.is_none();
        let previous = keep.then_some(previous);
        change(Arc::make_mut(&mut doc));
        self.visible = Content::Doc(doc);
        self.written(synced, previous, process);
    }

    /// Records a change made through [`SimStore::doc_mut`] as written by
    /// rename and fsynced: everything is durable.
    pub fn synced_in_place(&mut self) {
        self.written(true, None, 0);
    }

    /// Records a change made through [`SimStore::doc_mut`] as written by
    /// rename whose fsync was lost: visible, not durable. The durable
    /// contents, unless an earlier lost write already kept them, are the
    /// visible document with `undo` put back.
    pub fn unsynced_in_place(&mut self, undo: &Undo, process: u8) {
        let previous = match &self.visible {
            Content::Doc(doc) if self.durable_behind.is_none() => {
                let mut previous = StoreDoc::clone(doc);
                undo.restore(&mut previous);
                Some(Content::Doc(Arc::new(previous)))
            }
            _ => None,
        };
        self.written(false, previous, process);
    }

    /// An in-place writer died after writing `bytes` (a prefix of its
    /// document): the file is torn, durably. A prefix that still decodes
    /// (an empty file) becomes the new baseline.
    pub fn tear(&mut self, bytes: Vec<u8>) {
        // The store's history (fences, logins, tombstones) is gone with it.
        self.destroyed = true;
        self.version += 1;
        self.banned_below = 0;
        self.banned_below_durable = 0;
        match StoreDoc::from_json(&bytes) {
            Ok(doc) => {
                self.generation_seen = -1;
                self.visible = Content::Doc(Arc::new(doc));
            }
            Err(_) => {
                self.visible = Content::Torn(bytes);
            }
        }
        self.durable_behind = None;
        self.unsynced_by = None;
    }

    /// `process` crashed: a write of its that was never made durable is lost.
    /// Returns true when the store reverted.
    pub fn crash(&mut self, process: u8) -> bool {
        if self.unsynced_by != Some(process) {
            return false;
        }
        if let Some(content) = self.durable_behind.take() {
            self.visible = content;
            self.version += 1;
        }
        self.banned_below = self.banned_below_durable;
        self.unsynced_by = None;
        self.generation_seen = match &self.visible {
            Content::Doc(doc) => doc
                .profiles
                .values()
                .map(|c| c.generation as i64)
                .max()
                .unwrap_or(-1),
            Content::Torn(_) => -1,
        };
        true
    }
}

fn corrupt(name: &str, error: &DecodeError) -> StoreFault {
    StoreFault {
        kind: StoreFaultKind::Corrupt,
        detail: format!(
            "{name} is corrupt ({error}); kept aside as {name}.corrupt, not overwritten"
        ),
    }
}

/// A store I/O failure as the host reports it.
pub fn io_fault(name: &str, disk_full: bool) -> StoreFault {
    StoreFault {
        kind: StoreFaultKind::Io,
        detail: if disk_full {
            format!("writing {name}: no space left on device")
        } else {
            format!("writing {name}: input/output error")
        },
    }
}

/// The store lock was not acquired within its budget.
pub fn lock_fault(name: &str, waited_ms: u64) -> StoreFault {
    StoreFault {
        kind: StoreFaultKind::LockTimeout,
        detail: format!("store lock of {name} not acquired after {waited_ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotor_kernel::Credential;

    fn doc(generation: u64) -> StoreDoc {
        let mut doc = StoreDoc::default();
        doc.profiles.insert(
            "p".into(),
            Credential::oauth("acme", "a", "r", 1).with_generation(generation),
        );
        doc
    }

    #[test]
    fn a_lost_fsync_is_visible_until_its_writer_crashes() {
        let mut store = SimStore::new(doc(1));
        store.replace(Arc::new(doc(2)), false, 3);
        assert_eq!(store.doc(), Some(&doc(2)));
        assert!(!store.crash(1), "another process's crash loses nothing");
        assert!(store.crash(3));
        assert_eq!(store.doc(), Some(&doc(1)));
    }

    #[test]
    fn an_in_place_write_whose_fsync_was_lost_reverts_exactly_on_crash() {
        let mut original = doc(1);
        original
            .profiles
            .insert("q".into(), Credential::oauth("other", "k", "", 0));
        let mut store = SimStore::new(original.clone());
        // Two lost writes in place: the durable contents stay the first
        // write's "before", the document as it was.
        for (generation, fence_fp) in [(2, "aaaaaaaaaaaa"), (3, "bbbbbbbbbbbb")] {
            let live = store.doc_mut().unwrap();
            let undo = Undo {
                profile: "p",
                credential: live.profiles.get_shared("p").cloned(),
                fences: live.fences.get("p").cloned(),
            };
            live.profiles.insert(
                "p".into(),
                Credential::oauth("acme", "a2", "r2", 1).with_generation(generation),
            );
            live.fences.entry("p".into()).or_default().push(Fence {
                generation,
                refresh_fp: rotor_kernel::Fingerprint::parse(fence_fp).unwrap(),
                holder: rotor_kernel::Holder {
                    pid: 1,
                    host: "h".into(),
                    agent: "a".into(),
                },
                started_at_ms: 0,
                attempt: 0,
                rotated: false,
            });
            store.unsynced_in_place(&undo, 2);
        }
        assert_eq!(store.doc().unwrap().profiles["p"].generation, 3);
        assert_eq!(store.doc().unwrap().fences["p"].len(), 2);
        assert!(store.crash(2));
        assert_eq!(store.doc(), Some(&original));
    }

    #[test]
    fn a_synced_write_survives_and_a_torn_file_reads_as_corrupt() {
        let mut store = SimStore::new(doc(1));
        store.replace(Arc::new(doc(2)), true, 3);
        assert!(!store.crash(3));
        let bytes = doc(3).to_json();
        store.tear(bytes[..bytes.len() / 2].to_vec());
        let error = store.read("p", "main").unwrap_err();
        assert_eq!(error.kind, StoreFaultKind::Corrupt);
        assert!(error.detail.contains("kept aside"), "{}", error.detail);
        store.tear(Vec::new());
        assert_eq!(store.read("p", "main").unwrap(), ProfileView::default());
    }
}
