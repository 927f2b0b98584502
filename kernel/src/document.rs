//! The store document (SPEC §2) and the view of one profile the kernel reads.
//!
//! A store is `{ version, profiles: {id -> credential}, fences: {id -> [fence]},
//! state: {...} }`. rotor owns `profiles` and `fences`; `state` (usage
//! statistics, ordering, last-good markers) and any unknown top-level field
//! belong to other writers and are carried through every rewrite unchanged
//! (G4). Hosts decode bytes with [`StoreDoc::from_json`], hand the kernel a
//! [`ProfileView`], and apply the kernel's [`crate::Mutation`]s with
//! [`StoreDoc::apply`](crate::mutation) under the store's lock.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::credential::Credential;
use crate::secret::Fingerprint;
use crate::shared_str::SharedStr;

/// The store format version this kernel writes.
pub const STORE_VERSION: u32 = 1;

/// Who holds (or held) the refresh lock when a fence was written; for people
/// reading `rotor status` and for G10 messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Holder {
    /// Process id of the holder.
    pub pid: u32,
    /// Host name of the holder.
    pub host: SharedStr,
    /// Agent id of the holder.
    pub agent: SharedStr,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "agent {} (pid {} on {})",
            self.agent, self.pid, self.host
        )
    }
}

/// An in-doubt fence (G7): written durably before a refresh token is
/// presented, cleared when the outcome is known. A fence that survives means a
/// presentation whose outcome nobody knows: the token may already be consumed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fence {
    /// Generation of the credential whose refresh token was presented.
    pub generation: u64,
    /// Fingerprint of the presented refresh token.
    pub refresh_fp: Fingerprint,
    /// Who presented it.
    pub holder: Holder,
    /// When the presentation started, epoch ms (holder's clock).
    pub started_at_ms: i64,
    /// 0 for the first presentation, 1 for the one grace-window retry.
    pub attempt: u32,
    /// The outcome is known: the provider rotated this token, so it is spent,
    /// but its successor could not be stored here (a mirror into main that the
    /// identity gate or the generation rule refused). Kept so that another
    /// participant holding a copy of the spent token never presents it (G1):
    /// it reports `NeedsReauth` instead of revoking the family for everyone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rotated: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// At most this many fences are kept per profile in one store; past it the
/// oldest rotated ones are dropped first (in-doubt ones are never dropped).
pub const FENCES_PER_PROFILE_MAX: usize = 32;

/// A whole store document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreDoc {
    /// Format version.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Credentials by profile id.
    #[serde(default)]
    pub profiles: Profiles,
    /// In-doubt fences by profile id, at most one per presented refresh
    /// token. A list, not one slot: a sub-agent fences main too (every holder
    /// of a copy of its token must see the fence), and that must not erase a
    /// fence main already holds for another token of the same profile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fences: BTreeMap<String, Vec<Fence>>,
    /// Data rotor does not own; preserved on every write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// Unknown top-level fields; preserved on every write.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn default_version() -> u32 {
    STORE_VERSION
}

impl Default for StoreDoc {
    fn default() -> Self {
        StoreDoc {
            version: STORE_VERSION,
            profiles: Profiles::default(),
            fences: BTreeMap::new(),
            state: None,
            extra: BTreeMap::new(),
        }
    }
}

/// Why a store's bytes could not be decoded. The host keeps such a file aside
/// and reports it; it never overwrites it (G10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The decoder's message, with line and column.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a rotor store document: {}", self.message)
    }
}

impl StoreDoc {
    /// Decodes a store from JSON bytes. An empty file (or only whitespace) is an
    /// empty store: that is what a crash between create and first write leaves
    /// when a host does not write through rename.
    pub fn from_json(bytes: &[u8]) -> Result<StoreDoc, DecodeError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(StoreDoc::default());
        }
        serde_json::from_slice(bytes).map_err(|error| DecodeError {
            message: alloc::format!("{error}"),
        })
    }

    /// Encodes the store as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these types cannot fail: every map key is a string and no
        // value has a fallible Serialize impl.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// What the kernel needs to know about one profile.
    pub fn view(&self, profile: &str) -> ProfileView {
        ProfileView {
            credential: self.profiles.get_shared(profile).cloned(),
            fences: self.fences.get(profile).cloned().unwrap_or_default(),
        }
    }
}

/// A store's credentials by profile id: a map whose entries are shared
/// (`Arc<Credential>`), so that reading a profile ([`StoreDoc::view`]),
/// copying a document and applying a mutation that stores a credential
/// as it is do not copy credentials. It reads and writes JSON exactly as a
/// `BTreeMap<String, Credential>` does, and offers that map's methods
/// handing out `&Credential`; [`Profiles::get_shared`] hands out the
/// shared entry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Profiles(BTreeMap<String, Arc<Credential>>);

impl Profiles {
    /// An empty map.
    pub fn new() -> Self {
        Profiles(BTreeMap::new())
    }

    /// The credential of `profile`.
    pub fn get(&self, profile: &str) -> Option<&Credential> {
        self.0.get(profile).map(|credential| &**credential)
    }

    /// The credential of `profile`, shared.
    pub fn get_shared(&self, profile: &str) -> Option<&Arc<Credential>> {
        self.0.get(profile)
    }

    /// The credential of `profile`, to change in place (copied first when
    /// it is shared).
    pub fn get_mut(&mut self, profile: &str) -> Option<&mut Credential> {
        self.0.get_mut(profile).map(Arc::make_mut)
    }

    /// Stores `credential` (a `Credential` or an `Arc<Credential>`) under
    /// `profile`; returns the entry it replaced.
    pub fn insert(
        &mut self,
        profile: String,
        credential: impl Into<Arc<Credential>>,
    ) -> Option<Arc<Credential>> {
        self.0.insert(profile, credential.into())
    }

    /// Removes the entry of `profile`; returns it.
    pub fn remove(&mut self, profile: &str) -> Option<Arc<Credential>> {
        self.0.remove(profile)
    }

    /// Whether `profile` has an entry.
    pub fn contains_key(&self, profile: &str) -> bool {
        self.0.contains_key(profile)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, by profile id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Credential)> + '_ {
        self.0
            .iter()
            .map(|(profile, credential)| (profile, &**credential))
    }

    /// The profile ids, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> + '_ {
        self.0.keys()
    }

    /// The credentials, by profile id.
    pub fn values(&self) -> impl Iterator<Item = &Credential> + '_ {
        self.0.values().map(|credential| &**credential)
    }
}

impl fmt::Debug for Profiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl core::ops::Index<&str> for Profiles {
    type Output = Credential;

    /// The credential of `profile`; panics when there is none, like a map.
    fn index(&self, profile: &str) -> &Credential {
        &self.0[profile]
    }
}

impl<'a> IntoIterator for &'a Profiles {
    type Item = (&'a String, &'a Credential);
    type IntoIter = core::iter::Map<
        alloc::collections::btree_map::Iter<'a, String, Arc<Credential>>,
        fn((&'a String, &'a Arc<Credential>)) -> (&'a String, &'a Credential),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0
            .iter()
            .map(|(profile, credential)| (profile, &**credential))
    }
}

impl<K: Into<String>, C: Into<Arc<Credential>>> FromIterator<(K, C)> for Profiles {
    fn from_iter<I: IntoIterator<Item = (K, C)>>(entries: I) -> Self {
        Profiles(
            entries
                .into_iter()
                .map(|(profile, credential)| (profile.into(), credential.into()))
                .collect(),
        )
    }
}

impl Serialize for Profiles {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Profiles {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = BTreeMap::<String, Credential>::deserialize(deserializer)?;
        Ok(entries.into_iter().collect())
    }
}

/// One profile as read from one store: its credential and its fences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileView {
    /// The credential, if the store has an entry for the profile. Shared:
    /// the resolver keeps the views it read while it works, and hands the
    /// credential on in effects, without copying it.
    pub credential: Option<Arc<Credential>>,
    /// The in-doubt fences recorded for the profile.
    pub fences: Vec<Fence>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_unknown_fields_survive_a_round_trip() {
        let text =
            br#"{"version":1,"profiles":{"p:default":{"type":"api_key","provider":"p","key":"k"}},
            "state":{"usageStats":{"p:default":{"lastUsed":17}},"order":{"p":["p:default"]}},
            "lastGood":{"p":"p:default"}}"#;
        let doc = StoreDoc::from_json(text).unwrap();
        let again = StoreDoc::from_json(&doc.to_json()).unwrap();
        assert_eq!(again, doc);
        assert_eq!(again.extra.get("lastGood"), doc.extra.get("lastGood"));
        assert!(again.state.is_some());
    }

    #[test]
    fn empty_bytes_are_an_empty_store_and_garbage_is_an_error() {
        assert_eq!(StoreDoc::from_json(b"  \n").unwrap(), StoreDoc::default());
        let error = StoreDoc::from_json(b"{\"profiles\": [").unwrap_err();
        assert!(error.message.contains("line"), "{error}");
    }
}
