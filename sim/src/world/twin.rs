//! The shipped fs store code as the world's twin (`rotor check
//! --shipped-host`).
//!
//! The world keeps its stores in a fast in-memory model (`store.rs`,
//! `write.rs`): that is what lets it run 100,000 seeds in seconds. The model
//! is a statement of what the fs host does, and a statement can be wrong. So
//! in this mode every store file of the world also lives on a simulated disk
//! ([`SimDisk`]), and every read and every write the world's agents make is
//! made a second time by `rotor_fs::StoreFile`, the code users run (no-follow
//! opens, the store lock, decoding, a corrupt file kept aside, the atomic
//! replace with its fsyncs), over that disk. The two must agree, call by
//! call: the same view for a read, the same outcome and the same document
//! for a write, an error where the model has one. A disagreement is a
//! violation, named for what it would break: the document (G4), a
//! compare-and-swap's outcome (G5), a failure's kind (G10).
//!
//! The model still drives the world (the twin changes no draw and no
//! outcome: a run's trace hash is the same with and without it), so a
//! disagreement is reported at the very call where the shipped code would
//! have answered differently, with the seed's replay command.
//!
//! What only the model does stays the model's: durability (a lost fsync, a
//! crash's revert) and other programs' writes (actors, a torn in-place
//! write). Before each checked call the twin brings the file to the model's
//! contents when something other than a checked write changed them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rotor_fs::io::{FileHandle, ForwardIo, Io};
use rotor_fs::{AgentId, Layout, StoreFile};
use rotor_kernel::{Mutation, ProfileView, StoreFault, WriteOutcome};

use super::setup::PROFILE;
use crate::guarantee::Guarantee;
use crate::store::{Content, SimStore};

/// Where the twin's state directory lives on its disk.
pub(crate) const STATE_DIR: &str = "/srv/rotor-twin";
/// The twin's store locks are never contended (the world holds its own
/// store lock around every checked write): any budget will do.
const STORE_LOCK_WAIT_MS: u64 = 1_000;

/// A disagreement between the model and the shipped code.
pub(crate) type Disagreement = (Guarantee, String);

/// The shipped store files beside the world's store model.
#[derive(Debug)]
pub(crate) struct Twin {
    io: Arc<Faulty>,
    files: Vec<StoreFile>,
    /// The model's `version` of each store when its file last matched it.
    matched: Vec<Option<u64>>,
}

impl Twin {
    /// A twin of `stores` (store 0 is main) over `io` (the simulated disk,
    /// or a test's broken one), each file holding the store's contents.
    pub(crate) fn over(io: Arc<dyn Io>, stores: &[SimStore]) -> Twin {
        let io = Arc::new(Faulty {
            inner: io,
            fail_next_create: AtomicBool::new(false),
        });
        let layout = Layout::new(PathBuf::from(STATE_DIR));
        let files = (0..stores.len())
            .map(|s| {
                let agent = if s == 0 {
                    AgentId::main()
                } else {
                    AgentId::new(&format!("agent-{s}")).expect("a valid agent id")
                };
                StoreFile::with_io(io.clone(), &layout, &agent, STORE_LOCK_WAIT_MS)
            })
            .collect();
        let mut twin = Twin {
            io,
            files,
            matched: vec![None; stores.len()],
        };
        for (s, store) in stores.iter().enumerate() {
            twin.catch_up(s, store);
        }
        twin
    }

    /// Brings store `s`'s file to the model's contents if something other
    /// than a checked write changed them (an actor, a crash's revert, the
    /// world's set-up): bytes put in place, as another program would.
    pub(crate) fn catch_up(&mut self, s: usize, store: &SimStore) {
        if self.matched[s] == Some(store.version) {
            return;
        }
        let bytes = match &store.visible {
            Content::Doc(doc) => doc.to_json(),
            Content::Torn(bytes) => bytes.clone(),
        };
        let file = &self.files[s];
        if self.matched[s].is_none() {
            // The directories, made by the shipped code (an update of the
            // missing file that writes nothing).
            file.update("twin-dirs", |_| ((), false))
                .expect("the twin's disk takes the state directory");
        }
        // The bytes, by rename, as another program would put them.
        put(self.io.inner.as_ref(), file.path(), &bytes)
            .expect("the twin's disk takes a plain write");
        self.matched[s] = Some(store.version);
    }

    /// Reads store `s` through the shipped code and compares with the
    /// model's `model` read of the same contents.
    pub(crate) fn check_read(
        &mut self,
        s: usize,
        store: &SimStore,
        model: &Result<ProfileView, StoreFault>,
    ) -> Option<Disagreement> {
        self.catch_up(s, store);
        let shipped = self.files[s].read_view(PROFILE);
        match (model, &shipped) {
            (Ok(model), Ok(shipped)) if model == shipped => None,
            (Err(model), Err(shipped)) if model.kind == shipped.kind => None,
            (Ok(_), Ok(_)) => Some((
                Guarantee::G4,
                format!(
                    "store {s}: the shipped fs store read {shipped:?}, the simulator's store model read {model:?}"
                ),
            )),
            _ => Some((
                Guarantee::G10,
                format!(
                    "store {s}: the shipped fs store read {shipped:?}, the simulator's store model read {model:?}"
                ),
            )),
        }
    }

    /// Before a checked write: the file holds the model's contents.
    pub(crate) fn before_write(&mut self, s: usize, store: &SimStore) {
        self.catch_up(s, store);
    }

    /// Makes `mutation` with the shipped code on store `s` (its file as
    /// before the model's write) and compares with the model's `model`
    /// result and the contents `store` holds after it. `injected`: the
    /// model's write met an injected I/O fault, which the shipped write meets
    /// too, before anything is replaced.
    pub(crate) fn check_write(
        &mut self,
        s: usize,
        mutation: &Mutation,
        injected: bool,
        model: &Result<WriteOutcome, StoreFault>,
        store: &SimStore,
    ) -> Option<Disagreement> {
        self.io.fail_next_create.store(injected, Ordering::Relaxed);
        let shipped = self.files[s].apply(PROFILE, mutation);
        // Still armed: the shipped write created no file, because the
        // mutation changed nothing (a fence cleared that was never
        // written) and the shipped code writes only a changed document. The
        // model draws its fault for every write; here it had no call to hit.
        let no_call_to_fail = self.io.fail_next_create.swap(false, Ordering::Relaxed);
        let what = || format!("store {s}, {:?}", crate::world::agent::write_kind(mutation));
        let disagreement = match (model, &shipped) {
            (Ok(model), Ok(shipped)) if model != shipped => Some((
                Guarantee::G5,
                format!(
                    "{}: the shipped fs store answered {shipped:?}, the simulator's store model {model:?}",
                    what()
                ),
            )),
            (Ok(_), Ok(_)) => None,
            // An injected fault on a corrupt store: the model names the
            // fault, the shipped code the corruption it meets first.
            (Err(_), Err(_)) if injected => None,
            (Err(_), Ok(_)) if injected && no_call_to_fail => None,
            (Err(model), Err(shipped)) if model.kind == shipped.kind => None,
            _ => Some((
                Guarantee::G10,
                format!(
                    "{}: the shipped fs store answered {shipped:?}, the simulator's store model {model:?}",
                    what()
                ),
            )),
        };
        if disagreement.is_some() {
            return disagreement;
        }
        // Both wrote (or both refused): the files must hold the same.
        let shipped_doc = self.files[s].read_doc();
        let same = match (&store.visible, &shipped_doc) {
            (Content::Doc(model), Ok(Some(shipped))) => **model == *shipped,
            (Content::Doc(model), Ok(None)) => **model == rotor_kernel::StoreDoc::default(),
            (Content::Torn(_), Err(_)) => true,
            _ => false,
        };
        self.matched[s] = Some(store.version);
        if same {
            return None;
        }
        Some((
            Guarantee::G4,
            format!(
                "{}: after the write the shipped fs store holds {shipped_doc:?}, the simulator's store model {:?}",
                what(),
                store.visible
            ),
        ))
    }
}

/// `bytes` at `path`, by a temp file and a rename (no fsync: durability is
/// the model's).
fn put(io: &dyn Io, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".twin-tmp");
    let temp = path.with_file_name(name);
    let _ = io.remove(&temp);
    let mut file = io.create_new(&temp, 0o600)?;
    file.write_all(bytes)?;
    io.rename(&temp, path)
}

/// The twin's I/O: the disk, and an I/O error for the next file created
/// when the model's write met an injected fault (the shipped write then
/// fails before it replaces anything, as the model's does).
#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn Io>,
    fail_next_create: AtomicBool,
}

impl ForwardIo for Faulty {
    fn inner(&self) -> &dyn Io {
        &*self.inner
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        if self.fail_next_create.swap(false, Ordering::Relaxed) {
            return Err(io::Error::other("injected: input/output error"));
        }
        self.inner.create_new(path, mode)
    }
}

/// One store file holding `doc`, alone on a fresh simulated disk, for a
/// checker whose states branch (the explorer): every check starts from the
/// state's document.
fn file_holding(doc: &rotor_kernel::StoreDoc) -> StoreFile {
    let io: Arc<dyn Io> = Arc::new(crate::disk::SimDisk::new());
    let layout = Layout::new(PathBuf::from(STATE_DIR));
    let file = StoreFile::with_io(io.clone(), &layout, &AgentId::main(), STORE_LOCK_WAIT_MS);
    file.update("twin-dirs", |_| ((), false))
        .expect("a fresh disk takes the state directory");
    put(io.as_ref(), file.path(), &doc.to_json()).expect("a fresh disk takes a plain write");
    file
}

/// The shipped fs store code reads `doc`'s profile: the view must be
/// `model`'s (the explorer's read of the same document).
pub(crate) fn check_read_of(
    doc: &rotor_kernel::StoreDoc,
    model: &ProfileView,
) -> Option<Disagreement> {
    match file_holding(doc).read_view(PROFILE) {
        Ok(shipped) if shipped == *model => None,
        shipped => Some((
            Guarantee::G4,
            format!(
                "the shipped fs store read {shipped:?}, the explorer's store model read {model:?}"
            ),
        )),
    }
}

/// The shipped fs store code makes `mutation` on `before`: its outcome and
/// document must be the explorer's `model` outcome and `after`.
pub(crate) fn check_write_of(
    before: &rotor_kernel::StoreDoc,
    mutation: &Mutation,
    model: &WriteOutcome,
    after: &rotor_kernel::StoreDoc,
) -> Option<Disagreement> {
    let file = file_holding(before);
    let what = format!("{:?}", crate::world::agent::write_kind(mutation));
    match file.apply(PROFILE, mutation) {
        Ok(shipped) if shipped == *model => {}
        shipped => {
            return Some((
                Guarantee::G5,
                format!("{what}: the shipped fs store answered {shipped:?}, the explorer's store model {model:?}"),
            ))
        }
    }
    match file.read_doc() {
        Ok(Some(shipped)) if shipped == *after => None,
        shipped => Some((
            Guarantee::G4,
            format!("{what}: after the write the shipped fs store holds {shipped:?}, the explorer's store model {after:?}"),
        )),
    }
}
