//! rotor's store write, as the shipped host performs it: under the store
//! lock, read the document, apply the kernel's mutation, replace the file by
//! rename and fsync. The faults a write can meet are drawn here: I/O error,
//! disk full, lost fsync; a corrupt file is reported and never overwritten.

use std::sync::Arc;

use rotor_kernel::{Mutation, StoreFault, WriteOutcome};

use super::World;
use crate::config::FaultKind;
use crate::store::{io_fault, Undo};
use crate::world::setup::PROFILE;

impl World {
    /// Applies `mutation` to store `s` for a writer in `process`. Returns the
    /// result and whether the write is durable (false after a lost fsync).
    pub(crate) fn rotor_write(
        &mut self,
        process: u8,
        s: usize,
        mutation: &Mutation,
    ) -> (Result<WriteOutcome, StoreFault>, bool) {
        let Some(mut twin) = self.twin.take() else {
            return self.model_write(process, s, mutation);
        };
        // The shipped fs store code makes the same write on the same
        // contents and must come to the same (`twin.rs`).
        twin.before_write(s, &self.stores[s]);
        let faults_before = self.write_faults;
        let (result, synced) = self.model_write(process, s, mutation);
        let injected = self.write_faults > faults_before;
        let disagreement = twin.check_write(s, mutation, injected, &result, &self.stores[s]);
        self.twin = Some(twin);
        if let Some((guarantee, detail)) = disagreement {
            self.violate(guarantee, || detail);
        }
        (result, synced)
    }

    /// The store model's write.
    fn model_write(
        &mut self,
        process: u8,
        s: usize,
        mutation: &Mutation,
    ) -> (Result<WriteOutcome, StoreFault>, bool) {
        if let Some(kind) = self.draw_write_fault(process) {
            let disk_full = kind == FaultKind::DiskFull;
            return (Err(io_fault(&self.store_names[s], disk_full)), true);
        }
        let lost_fsync_possible = self.lost_fsync_possible();
        if let Some(doc) = self.stores[s].doc_mut() {
            // Applied in place, sparing a copy of the document; a lost fsync
            // rebuilds the durable contents from what the mutation replaced
            // (`HostHooks::apply` touches only the profile's entries).
            let before = doc.profiles.get_shared(PROFILE).cloned();
            let fences_before = if lost_fsync_possible {
                Some(doc.fences.get(PROFILE).cloned())
            } else {
                None
            };
            let outcome = self.hooks.apply(doc, PROFILE, mutation);
            if matches!(outcome, WriteOutcome::Conflict(_)) {
                // `apply` changes nothing when it reports a conflict.
                return (Ok(outcome), true);
            }
            let synced = !(lost_fsync_possible && self.draw_lost_fsync(process));
            match fences_before {
                Some(fences) if !synced => {
                    let undo = Undo {
                        profile: PROFILE,
                        credential: before.clone(),
                        fences,
                    };
                    self.stores[s].unsynced_in_place(&undo, process);
                }
                _ => self.stores[s].synced_in_place(),
            }
            self.check_after_write(s, before.as_deref(), mutation);
            return (Ok(outcome), synced);
        }
        let mut doc = match self.stores[s].load(&self.store_names[s]) {
            Ok(doc) => doc,
            Err(fault) => return (Err(fault), true),
        };
        let before = doc.profiles.get_shared(PROFILE).cloned();
        let outcome = self.hooks.apply(Arc::make_mut(&mut doc), PROFILE, mutation);
        if matches!(outcome, WriteOutcome::Conflict(_)) {
            return (Ok(outcome), true);
        }
        let synced = !self.draw_lost_fsync(process);
        self.stores[s].replace(doc, synced, process);
        self.check_after_write(s, before.as_deref(), mutation);
        (Ok(outcome), synced)
    }
}
