//! The identity gate (SPEC §5, guarantee G3: an agent bound to one account
//! never receives another account's token).
//!
//! Every copy of a credential between stores (adopt from main, mirror into
//! main, import) asks [`may_copy`]`(existing, incoming)` first, where
//! `existing` is the credential about to be replaced. The gate is deliberately
//! asymmetric: an `existing` without identity may be upgraded by any incoming
//! credential (otherwise old stores never converge, bug B16), but identity
//! evidence that `existing` carries (tenant, account id, email) must be
//! matched, never dropped or changed (bug B14). [`same_identity`] is the strict,
//! symmetric relation, used where two credentials must be the same principal.
//!
//! SPEC §5 is stricter than the seed system in three rows: dropping an account
//! id is refused even when the emails match, and a tenant must be kept and
//! matched. [`copy_refusal`] says which rule refused, for an actionable
//! message (G10).

use alloc::string::String;
use core::fmt;

use crate::credential::Credential;
use crate::shared_str::SharedStr;

/// The identity fields of a credential, normalized: trimmed with the
/// JavaScript whitespace set, blank values absent, emails lowercased.
///
/// A resolve builds the identities of the credentials it compares at every
/// step; a stored value that is already normalized (the usual case) is
/// shared with the credential ([`SharedStr`]), not copied.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Identity {
    /// Account id, exact after trim.
    pub account_id: Option<SharedStr>,
    /// Email, lowercased after trim.
    pub email: Option<SharedStr>,
    /// Tenant (enterprise URL, organisation id), exact after trim.
    pub tenant: Option<SharedStr>,
}

impl Identity {
    /// Builds a normalized identity from raw field values.
    pub fn new(account_id: Option<&str>, email: Option<&str>, tenant: Option<&str>) -> Self {
        Identity {
            account_id: normalize_exact(account_id).map(SharedStr::from),
            email: normalize_email(email).map(SharedStr::from),
            tenant: normalize_exact(tenant).map(SharedStr::from),
        }
    }

    /// The normalized identity of a stored credential.
    pub fn of(credential: &Credential) -> Self {
        let account_id = credential.account_id.as_ref();
        let email = credential.email.as_ref();
        let tenant = credential.tenant.as_ref();
        Identity {
            account_id: normalize_exact(account_id.map(|v| v.as_str()))
                .map(|normal| shared_or_copied(account_id, normal)),
            email: normalize_email(email.map(|v| v.as_str()))
                .map(|normal| shared_or_copied(email, normal)),
            tenant: normalize_exact(tenant.map(|v| v.as_str()))
                .map(|normal| shared_or_copied(tenant, normal)),
        }
    }

    /// True when no identity field is present.
    pub fn is_empty(&self) -> bool {
        self.account_id.is_none() && self.email.is_none() && self.tenant.is_none()
    }
}

/// The whitespace that JavaScript's `String.prototype.trim` strips: the Unicode
/// space separators (Zs), TAB, VT, FF, LF, CR, U+2028, U+2029 and U+FEFF
/// (not U+180E, which left Zs in Unicode 6.3; current engines keep it).
///
/// Not Rust's `str::trim`, which also strips U+0085 and keeps U+FEFF: stores
/// written by the seed system were compared with the JavaScript set, so an id
/// like `"\u{FEFF}acct"` must mean `"acct"` here too, and `"acct\u{85}"` must
/// stay distinct from `"acct"`, or the two systems would disagree about which
/// copies are allowed on the same files.
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'..='\u{000D}'
            | '\u{0020}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
            | '\u{FEFF}'
    )
}

/// A normalized value: borrowed from the raw one when normalizing only
/// trimmed it (or left it as it was), owned when it had to be lowercased.
enum Normal<'a> {
    Borrowed(&'a str),
    Lowercased(String),
}

impl From<Normal<'_>> for SharedStr {
    fn from(normal: Normal<'_>) -> Self {
        match normal {
            Normal::Borrowed(text) => SharedStr::from(text),
            Normal::Lowercased(text) => SharedStr::from(text),
        }
    }
}

/// `raw` itself when normalizing changed nothing, else a new string.
fn shared_or_copied(raw: Option<&SharedStr>, normal: Normal<'_>) -> SharedStr {
    match (raw, normal) {
        (Some(raw), Normal::Borrowed(text)) if text.len() == raw.len() => raw.clone(),
        (_, normal) => SharedStr::from(normal),
    }
}

/// Trims with the JavaScript set; blank means absent; case is kept.
fn normalize_exact(value: Option<&str>) -> Option<Normal<'_>> {
    let trimmed = value?.trim_matches(is_js_whitespace);
    (!trimmed.is_empty()).then_some(Normal::Borrowed(trimmed))
}

/// Trimmed and lowercased; an ASCII email without capitals (the usual case)
/// is not lowercased into a second string.
fn normalize_email(value: Option<&str>) -> Option<Normal<'_>> {
    let trimmed = value?.trim_matches(is_js_whitespace);
    if trimmed.is_empty() {
        return None;
    }
    let unchanged = trimmed
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase());
    Some(if unchanged {
        Normal::Borrowed(trimmed)
    } else {
        Normal::Lowercased(trimmed.to_lowercase())
    })
}

/// Why [`may_copy`] refused a copy. The fields hold normalized values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityRefusal {
    /// Rule 1: `existing` belongs to a tenant that `incoming` does not match.
    TenantMismatch {
        existing: String,
        incoming: Option<String>,
    },
    /// Rule 2: both carry account ids, and they differ.
    AccountMismatch { existing: String, incoming: String },
    /// Rule 3: `existing` has an account id, `incoming` has none.
    AccountDropped { existing: String },
    /// Rule 4: `existing` has no account id, both carry emails, and they differ.
    EmailMismatch { existing: String, incoming: String },
    /// Rule 5: `existing` has an email (and no account id), `incoming` has no email.
    EmailDropped { existing: String },
}

impl fmt::Display for IdentityRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let advice = "log in again with the intended account, or remove the stale entry";
        match self {
            IdentityRefusal::TenantMismatch {
                existing,
                incoming: Some(incoming),
            } => write!(
                f,
                "identity gate (G3): stored credential belongs to tenant {existing:?}, \
                 incoming one to tenant {incoming:?}; {advice}"
            ),
            IdentityRefusal::TenantMismatch {
                existing,
                incoming: None,
            } => write!(
                f,
                "identity gate (G3): stored credential belongs to tenant {existing:?}, \
                 incoming one names no tenant; {advice}"
            ),
            IdentityRefusal::AccountMismatch { existing, incoming } => write!(
                f,
                "identity gate (G3): stored credential is account {existing:?}, \
                 incoming one is account {incoming:?}; {advice}"
            ),
            IdentityRefusal::AccountDropped { existing } => write!(
                f,
                "identity gate (G3): stored credential is account {existing:?}, \
                 incoming one names no account id, so it cannot be shown to be the same; {advice}"
            ),
            IdentityRefusal::EmailMismatch { existing, incoming } => write!(
                f,
                "identity gate (G3): stored credential is {existing:?}, \
                 incoming one is {incoming:?}; {advice}"
            ),
            IdentityRefusal::EmailDropped { existing } => write!(
                f,
                "identity gate (G3): stored credential is {existing:?}, \
                 incoming one names no email, so it cannot be shown to be the same; {advice}"
            ),
        }
    }
}

/// SPEC §5 rules 1..6: `None` when `incoming` may replace `existing`, else the
/// first rule that refuses.
pub fn copy_refusal(existing: &Identity, incoming: &Identity) -> Option<IdentityRefusal> {
    if let Some(tenant) = &existing.tenant {
        if incoming.tenant.as_ref() != Some(tenant) {
            return Some(IdentityRefusal::TenantMismatch {
                existing: tenant.into(),
                incoming: incoming.tenant.as_ref().map(String::from),
            });
        }
    }
    match (&existing.account_id, &incoming.account_id) {
        (Some(mine), Some(theirs)) if mine == theirs => return None,
        (Some(mine), Some(theirs)) => {
            return Some(IdentityRefusal::AccountMismatch {
                existing: mine.into(),
                incoming: theirs.into(),
            })
        }
        (Some(mine), None) => {
            return Some(IdentityRefusal::AccountDropped {
                existing: mine.into(),
            })
        }
        (None, _) => {}
    }
    match (&existing.email, &incoming.email) {
        (Some(mine), Some(theirs)) if mine != theirs => Some(IdentityRefusal::EmailMismatch {
            existing: mine.into(),
            incoming: theirs.into(),
        }),
        (Some(mine), None) => Some(IdentityRefusal::EmailDropped {
            existing: mine.into(),
        }),
        _ => None,
    }
}

/// The copy gate (SPEC §5): may `incoming` replace `existing`?
pub fn may_copy(existing: &Identity, incoming: &Identity) -> bool {
    copy_refusal(existing, incoming).is_none()
}

/// The strict, symmetric relation: equal tenants and account ids (as optional
/// values) and, when neither has an account id, equal emails.
pub fn same_identity(a: &Identity, b: &Identity) -> bool {
    a.tenant == b.tenant
        && a.account_id == b.account_id
        && (a.account_id.is_some() || a.email == b.email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn id(account_id: Option<&str>, email: Option<&str>, tenant: Option<&str>) -> Identity {
        Identity::new(account_id, email, tenant)
    }

    /// One row of the SPEC §5 table: `may_copy` and `same_identity`, both asserted.
    macro_rules! row {
        ($name:ident: $existing:expr => $incoming:expr, copy $copy:expr, same $same:expr) => {
            #[test]
            fn $name() {
                let (existing, incoming) = ($existing, $incoming);
                assert_eq!(
                    may_copy(&existing, &incoming),
                    $copy,
                    "G3 may_copy {existing:?} -> {incoming:?}"
                );
                assert_eq!(
                    same_identity(&existing, &incoming),
                    $same,
                    "G3 same_identity {existing:?} ~ {incoming:?}"
                );
                assert_eq!(copy_refusal(&existing, &incoming).is_none(), $copy);
            }
        };
    }

    const X: Option<&str> = Some("acct-x");
    const Y: Option<&str> = Some("acct-y");
    const E: Option<&str> = Some("e@example.com");
    const E2: Option<&str> = Some("e2@example.com");
    const T: Option<&str> = Some("https://ghe.example.com");
    const U: Option<&str> = Some("https://other.example.com");

    row!(g3_row_acct_x_to_acct_x: id(X, None, None) => id(X, None, None), copy true, same true);
    row!(g3_row_acct_x_to_acct_y: id(X, None, None) => id(Y, None, None), copy false, same false);
    row!(g3_row_acct_x_email_e_to_acct_y_email_e: id(X, E, None) => id(Y, E, None), copy false, same false);
    row!(g3_row_acct_x_email_e1_to_acct_x_email_e2: id(X, E, None) => id(X, E2, None), copy true, same true);
    row!(g3_row_acct_x_email_e_to_acct_x: id(X, E, None) => id(X, None, None), copy true, same true);
    row!(g3_row_acct_x_email_e_to_email_e_refused_unlike_seed: id(X, E, None) => id(None, E, None), copy false, same false);
    row!(g3_row_email_e_to_email_spaced_upper_e: id(None, Some("e@x.io"), None) => id(None, Some(" E@X.IO "), None), copy true, same true);
    row!(g3_row_email_e1_to_email_e2: id(None, E, None) => id(None, E2, None), copy false, same false);
    row!(g3_row_empty_to_empty: id(None, None, None) => id(None, None, None), copy true, same true);
    row!(g3_row_empty_to_acct_x_upgrade: id(None, None, None) => id(X, None, None), copy true, same false);
    row!(g3_row_empty_to_email_e_upgrade: id(None, None, None) => id(None, E, None), copy true, same false);
    row!(g3_row_acct_x_to_empty: id(X, None, None) => id(None, None, None), copy false, same false);
    row!(g3_row_email_e_to_empty: id(None, E, None) => id(None, None, None), copy false, same false);
    row!(g3_row_acct_x_to_email_e: id(X, None, None) => id(None, E, None), copy false, same false);
    row!(g3_row_email_e_to_acct_x: id(None, E, None) => id(X, None, None), copy false, same false);
    row!(g3_row_email_e_to_acct_x_email_e_upgrade: id(None, E, None) => id(X, E, None), copy true, same false);
    row!(g3_row_acct_case_differs: id(Some("Acct-1"), None, None) => id(Some("acct-1"), None, None), copy false, same false);
    row!(g3_row_acct_whitespace_trimmed: id(Some("  acct-1 "), None, None) => id(Some("acct-1"), None, None), copy true, same true);
    row!(g3_row_blank_fields_are_absent_upgrade: id(Some("  "), Some(""), None) => id(X, None, None), copy true, same false);
    row!(g3_row_tenant_t_acct_x_to_tenant_t_acct_x: id(X, None, T) => id(X, None, T), copy true, same true);
    row!(g3_row_tenant_t_to_tenant_u_refused_unlike_seed: id(X, None, T) => id(X, None, U), copy false, same false);
    row!(g3_row_tenant_t_to_no_tenant_refused_unlike_seed: id(X, None, T) => id(X, None, None), copy false, same false);
    row!(g3_row_acct_x_to_tenant_t_acct_x_upgrade: id(X, None, None) => id(X, None, T), copy true, same false);

    #[test]
    fn normalization_trims_the_javascript_set_and_lowercases_emails() {
        let identity = id(
            Some("\u{FEFF}\u{3000} acct \t"),
            Some("  JOSÉ+tag@Example.com\u{2028}"),
            Some("\n"),
        );
        assert_eq!(identity.account_id.as_deref(), Some("acct"));
        assert_eq!(identity.email.as_deref(), Some("josé+tag@example.com"));
        assert_eq!(identity.tenant, None);
        assert!(id(None, Some("\t\n\r"), Some("\u{FEFF}")).is_empty());
        // Lowercased whatever the script, titlecase letters included; an
        // email already in lowercase ASCII is kept as it is.
        for (raw, expected) in [
            ("é@x.io", "é@x.io"),
            ("\u{1C5}ivo@x.io", "\u{1C6}ivo@x.io"),
            ("ΣΑΣ@X.IO", "σας@x.io"),
            ("plain@x.io", "plain@x.io"),
        ] {
            assert_eq!(id(None, Some(raw), None).email.as_deref(), Some(expected));
        }
        // U+0085 is not JavaScript whitespace: it stays, so the id differs from "acct".
        assert_eq!(
            id(Some("acct\u{85}"), None, None).account_id.as_deref(),
            Some("acct\u{85}")
        );
    }

    #[test]
    fn javascript_whitespace_is_rust_white_space_minus_nel_plus_bom() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let expected = (c.is_whitespace() && c != '\u{85}') || c == '\u{FEFF}';
            assert_eq!(is_js_whitespace(c), expected, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn identity_of_reads_the_credential_fields() {
        let credential = Credential::oauth("p", "a", "r", 0)
            .with_account(" X ")
            .with_email("A@B")
            .with_tenant("T");
        assert_eq!(
            Identity::of(&credential),
            id(Some("X"), Some("a@b"), Some("T"))
        );
        assert!(Identity::of(&Credential::oauth("p", "a", "r", 0)).is_empty());
    }

    #[test]
    fn refusals_name_the_rule_and_the_values() {
        let cases = [
            (id(X, None, T), id(X, None, None), "names no tenant"),
            (id(X, None, T), id(X, None, U), "other.example.com"),
            (id(X, E, None), id(Y, E, None), "\"acct-y\""),
            (id(X, E, None), id(None, E, None), "names no account id"),
            (id(None, E, None), id(None, E2, None), "\"e2@example.com\""),
            (id(None, E, None), id(X, None, None), "names no email"),
        ];
        for (existing, incoming, needle) in cases {
            let refusal = copy_refusal(&existing, &incoming).expect("refused");
            let message = alloc::format!("{refusal}");
            assert!(
                message.contains("G3") && message.contains(needle),
                "{message}"
            );
            assert!(message.contains("log in again"), "{message}");
        }
    }

    // ---- Seeded property tests (G3), 10,000+ random pairs each ----

    const SEED: u64 = 0x2026_0417_0003;
    const PAIRS: usize = 20_000;

    /// Absent, blank, or a pool value with case and whitespace variants, so
    /// that equal, case-different and padding-different values collide often.
    fn field(rng: &mut ChaCha8Rng, pool: &[&str]) -> Option<String> {
        const PADDING: [&str; 7] = ["", " ", "\t", "\u{FEFF}", "\u{3000}", "\n ", "\u{85}"];
        match rng.random_range(0..10) {
            0..=2 => None,
            3 => Some(String::from(PADDING[rng.random_range(0..PADDING.len())])),
            _ => {
                let base = pool[rng.random_range(0..pool.len())];
                let cased: String = if rng.random_bool(0.2) {
                    base.to_uppercase()
                } else {
                    String::from(base)
                };
                let left = PADDING[rng.random_range(0..PADDING.len())];
                let right = PADDING[rng.random_range(0..PADDING.len())];
                Some(alloc::format!("{left}{cased}{right}"))
            }
        }
    }

    type Raw = (Option<String>, Option<String>, Option<String>);

    fn random_identity(rng: &mut ChaCha8Rng) -> (Raw, Identity) {
        let raw = (
            field(rng, &["acct-1", "Acct-1", "acct-2", "7"]),
            field(rng, &["a@x.io", "b@x.io", "josé@x.io"]),
            field(rng, &["t1", "T1", "https://ghe.example"]),
        );
        let identity = Identity::new(raw.0.as_deref(), raw.1.as_deref(), raw.2.as_deref());
        (raw, identity)
    }

    /// Runs `check` over `PAIRS` seeded random pairs; returns how many pairs met
    /// the property's precondition (the check returns `None` when vacuous).
    fn for_pairs(mut check: impl FnMut(&Identity, &Identity) -> Option<bool>) -> usize {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let mut relevant = 0;
        for index in 0..PAIRS {
            let (raw_a, a) = random_identity(&mut rng);
            let (raw_b, b) = random_identity(&mut rng);
            if let Some(holds) = check(&a, &b) {
                relevant += 1;
                assert!(holds, "G3 property failed: seed {SEED:#x}, pair {index}: {raw_a:?} -> {raw_b:?} (normalized {a:?} -> {b:?})");
            }
        }
        relevant
    }

    #[test]
    fn g3_property_may_copy_is_reflexive() {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        for index in 0..PAIRS {
            let (raw, identity) = random_identity(&mut rng);
            let copy = Identity::new(raw.0.as_deref(), raw.1.as_deref(), raw.2.as_deref());
            assert!(
                may_copy(&identity, &copy),
                "G3 reflexivity: seed {SEED:#x}, case {index}: {raw:?}"
            );
            assert!(
                same_identity(&identity, &copy),
                "G3 reflexivity: seed {SEED:#x}, case {index}: {raw:?}"
            );
        }
    }

    #[test]
    fn g3_property_never_allows_two_distinct_account_ids() {
        let relevant = for_pairs(|a, b| match (&a.account_id, &b.account_id) {
            (Some(x), Some(y)) if x != y => Some(!may_copy(a, b)),
            _ => None,
        });
        assert!(
            relevant > PAIRS / 10,
            "generator too weak: {relevant} relevant pairs"
        );
    }

    #[test]
    fn g3_property_never_drops_or_changes_existing_account_or_tenant() {
        let relevant = for_pairs(|existing, incoming| {
            let keeps = |mine: &Option<SharedStr>, theirs: &Option<SharedStr>| {
                mine.is_none() || mine == theirs
            };
            may_copy(existing, incoming).then(|| {
                keeps(&existing.account_id, &incoming.account_id)
                    && keeps(&existing.tenant, &incoming.tenant)
            })
        });
        assert!(
            relevant > PAIRS / 20,
            "generator too weak: {relevant} allowed pairs"
        );
    }

    #[test]
    fn g3_property_same_identity_is_symmetric() {
        let relevant = for_pairs(|a, b| Some(same_identity(a, b) == same_identity(b, a)));
        assert_eq!(relevant, PAIRS);
    }

    #[test]
    fn g3_property_same_identity_implies_may_copy_both_ways() {
        let relevant =
            for_pairs(|a, b| same_identity(a, b).then(|| may_copy(a, b) && may_copy(b, a)));
        // Distinct raw values that normalize to the same identity must occur.
        assert!(
            relevant > PAIRS / 100,
            "generator too weak: {relevant} equal pairs"
        );
    }

    #[test]
    fn g3_generator_reaches_every_refusal() {
        let mut seen = alloc::collections::BTreeSet::new();
        for_pairs(|a, b| {
            seen.insert(match copy_refusal(a, b) {
                None => "allowed",
                Some(IdentityRefusal::TenantMismatch { incoming: None, .. }) => "tenant dropped",
                Some(IdentityRefusal::TenantMismatch { .. }) => "tenant mismatch",
                Some(IdentityRefusal::AccountMismatch { .. }) => "account mismatch",
                Some(IdentityRefusal::AccountDropped { .. }) => "account dropped",
                Some(IdentityRefusal::EmailMismatch { .. }) => "email mismatch",
                Some(IdentityRefusal::EmailDropped { .. }) => "email dropped",
            });
            None
        });
        assert_eq!(seen.len(), 7, "{seen:?}");
    }
}
