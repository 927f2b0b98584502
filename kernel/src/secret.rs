//! Secrets that redact themselves, and their fingerprints.
//!
//! Tokens are bearer secrets: whoever reads a log line with one can act as the
//! user. [`Secret`]'s `Debug` and `Display` therefore print only a
//! [`Fingerprint`] (SPEC §2: first 12 hex digits of sha256 of the value), which
//! is enough to tell two tokens apart in a trace and useless to an attacker.

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A token value (access or refresh). The value is reachable only through
/// [`Secret::expose`], so every place that sends it somewhere is greppable.
///
/// The value is shared and its fingerprint computed once, when the secret
/// is made: a resolve copies credentials between views, stores and outcomes
/// many times and compares fingerprints at every step, so a clone is a
/// reference-count increment, [`Secret::fingerprint`] a copy of 12 bytes,
/// and a `Secret` one pointer wide (credentials move by value through every
/// effect and completion). Equality, ordering and hashing are the value's.
#[derive(Clone)]
pub struct Secret(Arc<Shared>);

struct Shared {
    fingerprint: Fingerprint,
    value: String,
}

impl Secret {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        let fingerprint = Fingerprint::of(&value);
        Secret(Arc::new(Shared { fingerprint, value }))
    }

    /// The raw value, for the one place that must send it (the endpoint call,
    /// the `rotor token` output).
    pub fn expose(&self) -> &str {
        &self.0.value
    }

    /// The value's fingerprint: safe to log, store in a fence, compare.
    pub fn fingerprint(&self) -> Fingerprint {
        self.0.fingerprint
    }

    /// True when the value is empty or only whitespace (an unusable token).
    pub fn is_blank(&self) -> bool {
        self.0.value.trim().is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl PartialOrd for Secret {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Secret {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.expose().cmp(other.expose())
    }
}

impl core::hash::Hash for Secret {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.expose().hash(state);
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret {}>", self.fingerprint())
    }
}

/// The first 12 hex digits of sha256(token): identifies a token without
/// revealing it. Stored in fences (SPEC §2) and printed in traces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 12]);

impl Fingerprint {
    /// Fingerprint of a token value.
    pub fn of(value: &str) -> Self {
        let digest = Sha256::digest(value.as_bytes());
        let mut hex = [0u8; 12];
        for (index, byte) in digest.iter().take(6).enumerate() {
            hex[2 * index] = HEX[(byte >> 4) as usize];
            hex[2 * index + 1] = HEX[(byte & 0x0f) as usize];
        }
        Fingerprint(hex)
    }

    /// The 12 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        // The bytes are always drawn from HEX, which is ASCII.
        core::str::from_utf8(&self.0).unwrap_or("????????????")
    }

    /// Parses 12 lowercase hex digits (as written in a stored fence).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 12 || !bytes.iter().all(|b| HEX.contains(b)) {
            return None;
        }
        let mut hex = [0u8; 12];
        hex.copy_from_slice(bytes);
        Some(Fingerprint(hex))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fp:{}", self.as_str())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Fingerprint::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("fingerprint must be 12 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn debug_and_display_never_print_the_value() {
        let secret = Secret::new("rt-very-secret-value");
        let debug = format!("{secret:?}");
        let display = format!("{secret}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(!display.contains("very-secret"), "{display}");
        assert!(debug.contains(secret.fingerprint().as_str()));
    }

    #[test]
    fn fingerprint_is_first_12_hex_of_sha256() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(Fingerprint::of("abc").as_str(), "ba7816bf8f01");
        assert_eq!(
            Fingerprint::parse("ba7816bf8f01"),
            Some(Fingerprint::of("abc"))
        );
        assert_eq!(Fingerprint::parse("BA7816BF8F01"), None);
        assert_eq!(Fingerprint::parse("ba78"), None);
    }

    #[test]
    fn a_secret_is_its_value_shared_with_its_fingerprint_kept() {
        let secret = Secret::new("abc");
        let copy = secret.clone();
        assert_eq!(secret.fingerprint(), Fingerprint::of("abc"));
        assert_eq!(copy.fingerprint().as_str(), "ba7816bf8f01");
        assert!(
            core::ptr::eq(secret.expose(), copy.expose()),
            "a clone shares"
        );
        assert_eq!(Secret::new(alloc::string::String::from("abc")), secret);
        assert!(Secret::new("abd") > secret);
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"abc\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (back.expose(), back.fingerprint()),
            ("abc", secret.fingerprint())
        );
    }
}
