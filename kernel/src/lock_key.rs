//! STUB (replaced by helper)
use alloc::string::String;
use sha2::{Digest, Sha256};
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey(String);
impl LockKey {
    pub fn new(provider: &str, profile: &str) -> Self {
        let mut h = Sha256::new();
        h.update((provider.len() as u32).to_be_bytes());
        h.update(provider.as_bytes());
        h.update((profile.len() as u32).to_be_bytes());
        h.update(profile.as_bytes());
        let mut s = String::from("sha256-");
        for b in h.finalize() {
            s.push_str(&alloc::format!("{b:02x}"));
        }
        LockKey(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn file_name(&self) -> String {
        alloc::format!("{}.lock", self.0)
    }
}
impl core::fmt::Display for LockKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}
