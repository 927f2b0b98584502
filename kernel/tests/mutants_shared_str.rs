//! Tests added for mutants that survived `cargo mutants` in
//! `kernel/src/shared_str.rs` (docs/mutants.md): [`SharedStr`] must behave
//! as the `String` it replaced in every conversion and comparison, or a
//! provider, account, email or family would compare wrong and the identity
//! gate would let a copy through (G3) or refuse a good one (G2).

use std::borrow::Borrow;
use std::collections::BTreeMap;

use rotor_kernel::SharedStr;

/// `as_ref` and `borrow` give the text itself: a map keyed by `SharedStr`
/// is looked up by `&str` through `Borrow`, so an empty or wrong borrow
/// would lose every entry.
#[test]
fn a_shared_string_lends_its_own_text() {
    let text = SharedStr::from("acct-1");
    let lent: &str = text.as_ref();
    assert_eq!(lent, "acct-1");
    let borrowed: &str = text.borrow();
    assert_eq!(borrowed, "acct-1");
    let mut map = BTreeMap::new();
    map.insert(SharedStr::from("main"), 1);
    map.insert(SharedStr::from("sub"), 2);
    assert_eq!(map.get("main"), Some(&1));
    assert_eq!(map.get("sub"), Some(&2));
    assert_eq!(map.get(""), None);
}

/// Every conversion keeps the text.
#[test]
fn conversions_keep_the_text() {
    let owned = String::from("family-7");
    assert_eq!(SharedStr::from(&owned).as_str(), "family-7");
    assert_eq!(SharedStr::from(owned.clone()).as_str(), "family-7");
    let shared = SharedStr::from("family-7");
    assert_eq!(String::from(shared.clone()), owned);
    assert_eq!(String::from(&shared), owned);
}

/// Equality with `str`, `&str` and `String`, on either side, is the text's:
/// equal text is equal, other text is not.
#[test]
fn comparisons_with_strings_are_the_texts_both_ways_g3() {
    let shared = SharedStr::from("Acct-1");
    let same = String::from("Acct-1");
    let other = String::from("acct-1");

    assert!(shared == *"Acct-1");
    assert!(shared != *"acct-1");
    assert!(shared == "Acct-1");
    assert!(shared != "acct-1");
    assert!(shared == same);
    assert!(shared != other);

    assert!(*"Acct-1" == shared);
    assert!(*"acct-1" != shared);
    assert!("Acct-1" == shared);
    assert!("acct-1" != shared);
    assert!(same == shared);
    assert!(other != shared);
}
