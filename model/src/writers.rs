//! The threads of a run that are not agents: background writers (usage
//! statistics, an editing tool rewriting entries) and re-logins.
//!
//! Each goes through the shipped fs host code a real one uses, over its own
//! view of the machine (a process of its own for a writer): a background
//! writer's update is `StoreFile::update` (the store lock around a
//! read-modify-write); a login takes the shipped refresh lock, then applies
//! `Mutation::Login` to main through `StoreFile::apply`. So what they race
//! with is the protocol, not a missing lock.

use rotor_fs::sync::Arc;
use rotor_kernel::driver::RefreshLock;
use rotor_kernel::{Credential, LockKey, Mutation};

use crate::gate_check::WriteKind;
use crate::scenario::{LoginSpec, WriterKind, WriterSpec};
use crate::store::usage_of;
use crate::world::{World, MAIN_STORE, PROFILE, WRITER_PID_BASE};

/// One background writer's thread (the scenario's writer `index`, alone in
/// its process): `writer.writes` updates of its store.
pub fn run_writer(world: &World, writer: &WriterSpec, index: usize) {
    let pid = WRITER_PID_BASE + u32::try_from(index).expect("few writers");
    let io = std::sync::Arc::new(world.io(pid, &writer.name, WriteKind::Tool));
    let store = world.store_file(io, writer.store);
    for _ in 0..writer.writes {
        let updated = store.update("update", |doc| {
            match writer.kind {
                WriterKind::Usage => {
                    let usage = usage_of(doc) + 1;
                    doc.state = Some(serde_json::json!({ "usage": usage }));
                }
                WriterKind::Rewrite => {
                    if let Some(credential) = doc.profiles.get_mut(PROFILE) {
                        rewrite(credential);
                    }
                }
            }
            ((), true)
        });
        if let Err(fault) = updated {
            panic!("{}: a store update failed: {}", writer.name, fault.detail);
        }
    }
}

/// What the editing tool does to an entry: the same identity in another
/// spelling (SPEC §5 normalizes both away), and a field of its own.
fn rewrite(credential: &mut Credential) {
    if let Some(email) = &mut credential.email {
        *email = if email.chars().any(char::is_lowercase) {
            email.to_uppercase().into()
        } else {
            email.to_lowercase().into()
        };
    }
    if let Some(account_id) = &mut credential.account_id {
        *account_id = if account_id.starts_with(' ') {
            account_id.trim().to_string().into()
        } else {
            format!(" {account_id} ").into()
        };
    }
    credential
        .extra
        .insert("edited_by".to_string(), serde_json::json!("tool"));
}

/// One re-login's thread: like `rotor login`, the refresh lock, then
/// `Mutation::Login` with the account's fresh credential applied to main.
pub fn run_login(world: &Arc<World>, login: &LoginSpec, index: usize) {
    let credential = world.login_credentials[index].clone();
    let key = LockKey::new(&credential.provider, PROFILE);
    let io: std::sync::Arc<dyn rotor_fs::io::Io> =
        std::sync::Arc::new(world.io(login.pid, &login.name, WriteKind::Login));
    let mut lock = world.refresh_lock(io.clone(), login.pid, &login.name);
    if lock.acquire(&key, u64::MAX).is_err() {
        world.log.violation(
            crate::check::Guarantee::G8,
            format!("{} could not take the refresh lock to log in", login.name),
        );
        return;
    }
    let main = world.store_file(io, MAIN_STORE);
    if let Err(fault) = main.apply(
        PROFILE,
        &Mutation::Login {
            credential: credential.into(),
        },
    ) {
        panic!(
            "{}: the login's store write failed: {}",
            login.name, fault.detail
        );
    }
    lock.release(&key);
}
