//! Tests added for mutants that survived `cargo mutants` in fs/src/store.rs
//! (docs/mutants.md).

use rotor_fs::{AgentId, Layout, StoreFile};
use rotor_kernel::StoreFaultKind;

/// The corrupt-copy named by a corrupt store's fault holds the corrupt
/// bytes, even when a file of that name already held something else (G10:
/// "a copy is kept at <path>" must be true; the store itself is never
/// overwritten).
#[test]
fn g10_the_kept_copy_of_a_corrupt_store_holds_its_bytes() {
    let temp = tempfile::tempdir().unwrap();
    let file = StoreFile::new(&Layout::new(temp.path().join("s")), &AgentId::main(), 1_000);
    file.update("update", |_| ((), false)).unwrap();
    let corrupt = b"{\"profiles\": [1,";
    std::fs::write(file.path(), corrupt).unwrap();
    let fault = file.read_view("p").unwrap_err();
    assert_eq!(fault.kind, StoreFaultKind::Corrupt);
    let backup = std::fs::read_dir(file.path().parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().contains(".corrupt-"))
        .expect("a kept copy");
    assert_eq!(std::fs::read(&backup).unwrap(), corrupt);
    // Something else now sits at the copy's name: the next read keeps the
    // corrupt bytes there again and says so.
    std::fs::write(&backup, b"not the corrupt store").unwrap();
    let fault = file.read_view("p").unwrap_err();
    assert!(
        fault.detail.contains(&backup.display().to_string()),
        "{}",
        fault.detail
    );
    assert_eq!(std::fs::read(&backup).unwrap(), corrupt);
    assert_eq!(std::fs::read(file.path()).unwrap(), corrupt);
}

/// Reading a corrupt store again does not rewrite its kept copy when the
/// copy already holds the same bytes (no write, no fsync on every read of a
/// broken store; the copy a person may be inspecting stays the same file).
#[test]
fn g10_a_kept_copy_that_already_holds_the_bytes_is_not_rewritten() {
    use std::os::unix::fs::MetadataExt;
    let temp = tempfile::tempdir().unwrap();
    let file = StoreFile::new(&Layout::new(temp.path().join("s")), &AgentId::main(), 1_000);
    file.update("update", |_| ((), false)).unwrap();
    std::fs::write(file.path(), b"[[[").unwrap();
    file.read_view("p").unwrap_err();
    let backup = std::fs::read_dir(file.path().parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().contains(".corrupt-"))
        .expect("a kept copy");
    let inode = std::fs::metadata(&backup).unwrap().ino();
    file.read_view("p").unwrap_err();
    assert_eq!(std::fs::metadata(&backup).unwrap().ino(), inode);
    assert_eq!(std::fs::read(&backup).unwrap(), b"[[[");
}

/// `update` writes only when the change asks for it and the document
/// changed: a change that returns `false` leaves the file as it was (a
/// compare-and-swap that lost, G4/G5), and an unchanged document is not
/// rewritten (no needless write or fsync).
#[test]
fn g4_update_writes_only_a_changed_document_it_was_asked_to_write() {
    use std::os::unix::fs::MetadataExt;
    let temp = tempfile::tempdir().unwrap();
    let file = StoreFile::new(&Layout::new(temp.path().join("s")), &AgentId::main(), 1_000);
    file.update("update", |doc| {
        doc.extra.insert("kept".into(), serde_json::json!(1));
        ((), true)
    })
    .unwrap();
    let bytes = std::fs::read(file.path()).unwrap();
    let inode = std::fs::metadata(file.path()).unwrap().ino();
    file.update("update", |doc| {
        doc.extra.insert("dropped".into(), serde_json::json!(2));
        ((), false)
    })
    .unwrap();
    assert_eq!(std::fs::read(file.path()).unwrap(), bytes);
    let doc = file.read_doc().unwrap().unwrap();
    assert!(!doc.extra.contains_key("dropped"));
    file.update("update", |_| ((), true)).unwrap();
    assert_eq!(std::fs::metadata(file.path()).unwrap().ino(), inode);
}
