//! The threads of a run that are not agents: background writers (usage
//! statistics, an editing tool rewriting entries) and re-logins.
//!
//! Each takes the locks a real one takes (the store lock for a background
//! writer; the refresh lock, then main's store lock, for a login), so what
//! they race with is the protocol, not a missing lock.

use rotor_fs::sync::Arc;
use rotor_kernel::driver::RefreshLock;
use rotor_kernel::{Credential, LockKey, Mutation};

use crate::gate_check::WriteKind;
use crate::lock::ModelLock;
use crate::scenario::{LoginSpec, WriterKind, WriterSpec};
use crate::store::Snapshot;
use crate::world::{World, MAIN_STORE, PROFILE};

/// One background writer's thread: `writer.writes` updates of its store.
pub fn run_writer(world: &World, writer: &WriterSpec) {
    let store = &world.stores[writer.store];
    for _ in 0..writer.writes {
        match writer.kind {
            WriterKind::Usage => store.bump_usage(&writer.name, &world.log),
            WriterKind::Rewrite => {
                let _store_lock = store.lock();
                let Snapshot { mut doc, version } = store.read();
                if let Some(credential) = doc.profiles.get_mut(PROFILE) {
                    rewrite(credential);
                }
                store.write_back(version, doc, &writer.name, WriteKind::Tool, &world.log);
            }
        }
    }
}

/// What the editing tool does to an entry: the same identity in another
/// spelling (SPEC §5 normalizes both away), and a field of its own.
fn rewrite(credential: &mut Credential) {
    if let Some(email) = &mut credential.email {
        *email = if email.chars().any(char::is_lowercase) {
            email.to_uppercase()
        } else {
            email.to_lowercase()
        };
    }
    if let Some(account_id) = &mut credential.account_id {
        *account_id = if account_id.starts_with(' ') {
            account_id.trim().to_string()
        } else {
            format!(" {account_id} ")
        };
    }
    credential
        .extra
        .insert("edited_by".to_string(), serde_json::json!("tool"));
}

/// One re-login's thread: like `rotor login`, the refresh lock, then main's
/// store lock, then `Mutation::Login` with the account's fresh credential.
pub fn run_login(world: &Arc<World>, login: &LoginSpec, index: usize) {
    let credential = world.login_credentials[index].clone();
    let key = LockKey::new(&credential.provider, PROFILE);
    let mut lock = ModelLock::new(
        world.clone(),
        world.flight(login.pid),
        login.pid,
        &login.name,
    );
    if lock.acquire(&key, u64::MAX).is_err() {
        world.log.violation(
            crate::check::Guarantee::G8,
            format!("{} could not take the refresh lock to log in", login.name),
        );
        return;
    }
    let main = &world.stores[MAIN_STORE];
    {
        let _store_lock = main.lock();
        let Snapshot { mut doc, version } = main.read();
        doc.apply(PROFILE, &Mutation::Login { credential });
        main.write_back(version, doc, &login.name, WriteKind::Login, &world.log);
    }
    lock.release(&key);
}
