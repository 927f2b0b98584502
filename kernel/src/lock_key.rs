//! The refresh-lock key (SPEC §4, guarantee G9: lock names are an injective
//! hash of (provider, profile), and no id names a path outside the lock
//! directory).
//!
//! ```text
//! key = "sha256-" + hex(sha256(u32be(len(provider)) || provider || u32be(len(profile)) || profile))
//! ```
//!
//! Each field is prefixed with its length in bytes, so the encoding can be
//! read back unambiguously and two different (provider, profile) pairs never
//! feed sha256 the same bytes. The seed system joined the two with NUL, which
//! is not injective: `("a", "\0b")` and `("a\0", "b")` both became `a\0\0b`.
//! The key is always `sha256-` plus 64 lowercase hex digits (71 bytes): no
//! separator, no dot segment, whatever the ids contain. The same key names the
//! lock file (`<key>.lock`, never deleted) and the in-process single-flight slot.

use alloc::string::String;
use core::fmt;
use sha2::{Digest, Sha256};

use crate::shared_str::SharedStr;

/// The name of the refresh lock for one (provider, profile). Derived once
/// per resolve and then named by every lock effect: a clone is a
/// reference-count increment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey(SharedStr);

impl LockKey {
    /// Derives the key of `(provider, profile)`.
    pub fn new(provider: &str, profile: &str) -> Self {
        let mut hasher = Sha256::new();
        for field in [provider, profile] {
            let (prefix, used) = length_prefix(field.len());
            hasher.update(&prefix[..used]);
            hasher.update(field.as_bytes());
        }
        let mut key = String::with_capacity(71);
        key.push_str("sha256-");
        for byte in hasher.finalize() {
            key.push(char::from(HEX[usize::from(byte >> 4)]));
            key.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        LockKey(SharedStr::from(key))
    }

    /// The key: `sha256-` and 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lock file's name inside the lock directory: the key plus `.lock`.
    pub fn file_name(&self) -> String {
        let mut name = String::from(self.0.as_str());
        name.push_str(".lock");
        name
    }
}

impl fmt::Display for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `u32be(len)` as SPEC §4 says. A field of 4 GiB or more cannot be written
/// that way; rather than truncate (which would break injectivity) it is
/// written as `u32::MAX` followed by `u64be(len)`. Every length below
/// `u32::MAX` keeps the SPEC encoding, and the prefix stays unambiguous.
fn length_prefix(length: usize) -> ([u8; 12], usize) {
    let mut prefix = [0u8; 12];
    match u32::try_from(length) {
        Ok(short) if short != u32::MAX => {
            prefix[..4].copy_from_slice(&short.to_be_bytes());
            (prefix, 4)
        }
        _ => {
            prefix[..4].copy_from_slice(&u32::MAX.to_be_bytes());
            prefix[4..].copy_from_slice(&(length as u64).to_be_bytes());
            (prefix, 12)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn assert_well_formed(key: &LockKey, input: &dyn fmt::Debug) {
        let text = key.as_str();
        let hex = text.strip_prefix("sha256-").unwrap_or("");
        let ok = text.len() == 71
            && hex.len() == 64
            && hex.bytes().all(|b| HEX.contains(&b))
            && !text.contains(['/', '\\', '.', '\0', '\n', ':']);
        assert!(ok, "G9: malformed key {text:?} for {input:?}");
        assert_eq!(key.file_name(), alloc::format!("{text}.lock"));
    }

    #[test]
    fn g9_known_answer_pins_the_encoding() {
        // python: hashlib.sha256(struct.pack('>I',6)+b'openai'+struct.pack('>I',7)+b'default')
        let key = LockKey::new("openai", "default");
        let expected = "sha256-85c0190aa925a05ab277e4b68cba33c4e486f3fd47bf89269b969474b0b9f2d8";
        assert_eq!(key.as_str(), expected);
        assert_eq!(key.to_string(), expected);
        assert_eq!(
            LockKey::new("", "").as_str(),
            "sha256-af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc"
        );
    }

    #[test]
    fn g9_seed_colliding_pairs_differ() {
        assert_ne!(LockKey::new("a", "\0b"), LockKey::new("a\0", "b"));
        assert_ne!(LockKey::new("a", "b:c"), LockKey::new("a:b", "c"));
        assert_ne!(
            LockKey::new("openai", "work/test"),
            LockKey::new("openai_work", "test")
        );
        assert_ne!(LockKey::new("openai", "p"), LockKey::new("anthropic", "p"));
        assert_ne!(LockKey::new("p", "q"), LockKey::new("q", "p"));
        assert_ne!(LockKey::new("x", "\u{ab}c"), LockKey::new("x", "\u{abc}"));
    }

    #[test]
    fn g9_hostile_ids_give_a_plain_71_char_name() {
        let long = "x".repeat(10_000);
        let hostile = [
            "",
            "..",
            ".",
            "/",
            "\\",
            "../etc/passwd",
            "../../../../secrets",
            "a\\b\\..\\c",
            "\0",
            "a\0b",
            "line\nbreak",
            "\r\n",
            " spaced out ",
            long.as_str(),
            "Ελληνικά-русский-日本語-עברית",
            "😀𝔘𐍈\u{10FFFF}",
            "\u{0F00}\u{0F3A}",
            "C:\\Windows",
        ];
        for provider in hostile {
            for profile in hostile {
                let key = LockKey::new(provider, profile);
                assert_well_formed(&key, &(provider, profile));
                assert_eq!(key, LockKey::new(provider, profile), "G9: deterministic");
            }
        }
    }

    #[test]
    fn g9_length_prefix_escape_is_unambiguous() {
        assert_eq!(length_prefix(0), ([0; 12], 4));
        assert_eq!(length_prefix(258).0[..4], [0, 0, 1, 2]);
        assert_eq!(length_prefix(u32::MAX as usize - 1).1, 4);
        let (escaped, used) = length_prefix(u32::MAX as usize);
        assert_eq!((&escaped[..4], used), (&[0xff; 4][..], 12));
        assert_eq!(escaped[4..], (u64::from(u32::MAX)).to_be_bytes());
    }

    /// A short string over an alphabet that makes collisions of naive
    /// encodings likely: separators, NUL, control, multi-byte and
    /// supplementary-plane characters.
    fn random_id(rng: &mut ChaCha8Rng, length_max: usize) -> String {
        const ALPHABET: [char; 14] = [
            'a',
            'b',
            ':',
            '/',
            '.',
            '\0',
            '\n',
            '\\',
            '«',
            'c',
            '઼',
            '\u{0F00}',
            '😀',
            '\u{10FFFF}',
        ];
        let length = rng.random_range(0..=length_max);
        (0..length)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect()
    }

    #[test]
    fn g9_injective_over_seeded_random_and_adversarial_pairs() {
        const SEED: u64 = 0x2026_0417;
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let mut seen: BTreeMap<LockKey, (String, String)> = BTreeMap::new();
        let mut distinct_inputs = 0usize;
        let mut insert = |provider: String, profile: String, seen: &mut BTreeMap<_, _>| {
            let key = LockKey::new(&provider, &profile);
            assert_well_formed(&key, &(&provider, &profile));
            match seen.get(&key) {
                Some(earlier) => assert_eq!(
                    earlier,
                    &(provider, profile),
                    "G9 collision: seed {SEED:#x}, key {key}"
                ),
                None => {
                    distinct_inputs += 1;
                    seen.insert(key, (provider, profile));
                }
            }
        };
        // Independent random pairs (short, so that equal inputs also recur).
        for _ in 0..10_000 {
            let provider = random_id(&mut rng, 4);
            let profile = random_id(&mut rng, 4);
            insert(provider, profile, &mut seen);
        }
        // Adversarial: one concatenation split at every char boundary, and the
        // same pieces joined by NUL or ':' on either side of the split.
        for _ in 0..1_000 {
            let whole = random_id(&mut rng, 8);
            let boundaries: Vec<usize> = (0..=whole.len())
                .filter(|&at| whole.is_char_boundary(at))
                .collect();
            for at in boundaries {
                let (left, right) = whole.split_at(at);
                insert(left.into(), right.into(), &mut seen);
                for glue in ["\0", ":"] {
                    insert(alloc::format!("{left}{glue}"), right.into(), &mut seen);
                    insert(left.into(), alloc::format!("{glue}{right}"), &mut seen);
                }
            }
        }
        assert!(
            distinct_inputs > 10_000,
            "only {distinct_inputs} distinct inputs"
        );
    }
}
