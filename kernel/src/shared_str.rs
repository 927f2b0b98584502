//! [`SharedStr`]: an immutable string whose clone is a reference-count
//! increment.
//!
//! A resolve copies credentials many times: every store read hands the
//! kernel a view, every write installs a copy, every phase keeps what it
//! read. With `String` fields each of those copies allocated and freed the
//! provider id, account id, email, tenant and family name (the simulator
//! spent more time in `malloc` and `free` than in the kernel). These values
//! are written once (a login, a grant) and never edited in place, so they
//! are shared instead: a clone costs one atomic increment, and the string
//! is freed with its last holder.
//!
//! It reads and writes JSON exactly as a `String` does, prints as one
//! (`Display` and `Debug`), and compares with `str`, `&str` and `String`
//! directly, so code that used the `String` fields reads the same.

use alloc::string::String;
use alloc::sync::Arc;
use core::borrow::Borrow;
use core::fmt;
use core::ops::Deref;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable, reference-counted string (see the module docs).
/// Equality, ordering and hashing are the text's.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        SharedStr(Arc::from(text))
    }
}

impl From<&String> for SharedStr {
    fn from(text: &String) -> Self {
        SharedStr(Arc::from(text.as_str()))
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        SharedStr(Arc::from(text))
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        String::from(text.as_str())
    }
}

impl From<&SharedStr> for String {
    fn from(text: &SharedStr) -> Self {
        String::from(text.as_str())
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SharedStr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_prints_and_compares_as_a_string() {
        let text = SharedStr::from("acct-1");
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""acct-1""#);
        let again: SharedStr = serde_json::from_str(r#""acct-1""#).unwrap();
        assert_eq!(again, text);
        assert_eq!(alloc::format!("{text} {text:?}"), r#"acct-1 "acct-1""#);
        // Each comparison impl on its own: with `str`, `&str` both ways,
        // `String`, and the order of two shared strings.
        assert!(text == "acct-1");
        assert!("acct-1" == text);
        let owned = String::from("acct-1");
        assert!(text == owned);
        let (a, b) = (SharedStr::from("a"), SharedStr::from("b"));
        assert!(a < b);
    }

    #[test]
    fn a_clone_shares_the_text() {
        let text = SharedStr::from(String::from("family"));
        let copy = text.clone();
        assert!(core::ptr::eq(text.as_str(), copy.as_str()));
    }
}
