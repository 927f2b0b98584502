//! The identity gate of SPEC §5, stated a second time, for the checker.
//!
//! This is deliberately **not** a call into the kernel's `may_copy`: the
//! models judge every write the kernel makes against the rules as the
//! specification words them, so a kernel gate that drifts from the text
//! (a rule dropped, a comparison made case-sensitive, a symmetric rule
//! where the spec has an asymmetric one) is caught by a model that does not
//! share its code. It is written from the spec text:
//!
//! > Normalize: trim (blank means absent); emails lowercased; account ids
//! > and tenants compared exactly after trim.
//! >
//! > `may_copy(existing, incoming)` (existing is the credential about to be
//! > replaced):
//! > 1. `existing` has a `tenant`: refuse unless `incoming` has the same `tenant`.
//! > 2. Both have `account_id`: allow iff equal (emails are then ignored).
//! > 3. `existing` has `account_id`, `incoming` does not: refuse.
//! > 4. Both have `email`: allow iff equal.
//! > 5. `existing` has an `email` (and `incoming` has none): refuse.
//! > 6. Otherwise allow (neither has identity, or a pure upgrade).
//!
//! "Trim" here is Rust's `str::trim`; the kernel trims with JavaScript's
//! whitespace set (which differs only in U+0085 and U+FEFF). The models'
//! identities use ASCII spaces only, where both agree.
//!
//! [`Verdict`] says which rule decided, so a report can quote it.

use std::fmt;

/// The identity fields of a credential, normalized as SPEC §5 says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// Account id, trimmed, case kept.
    pub account_id: Option<String>,
    /// Email, trimmed and lowercased.
    pub email: Option<String>,
    /// Tenant, trimmed, case kept.
    pub tenant: Option<String>,
}

impl Fields {
    /// Normalizes raw field values: trimmed, blank is absent, emails
    /// lowercased.
    pub fn new(account_id: Option<&str>, email: Option<&str>, tenant: Option<&str>) -> Self {
        let trimmed = |value: Option<&str>| {
            value
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_string)
        };
        Fields {
            account_id: trimmed(account_id),
            email: trimmed(email).map(|email| email.to_lowercase()),
            tenant: trimmed(tenant),
        }
    }

    /// The normalized identity of a stored credential.
    pub fn of(credential: &rotor_kernel::Credential) -> Self {
        Fields::new(
            credential.account_id.as_deref(),
            credential.email.as_deref(),
            credential.tenant.as_deref(),
        )
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(tenant) = &self.tenant {
            parts.push(format!("tenant {tenant:?}"));
        }
        if let Some(account_id) = &self.account_id {
            parts.push(format!("account {account_id:?}"));
        }
        if let Some(email) = &self.email {
            parts.push(format!("email {email:?}"));
        }
        if parts.is_empty() {
            f.write_str("{no identity}")
        } else {
            write!(f, "{{{}}}", parts.join(", "))
        }
    }
}

/// What the table says about one copy, and which rule says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed by rule 2 (equal account ids), 4 (equal emails) or 6.
    Allow(u8),
    /// Refused by rule 1, 2, 3, 4 or 5.
    Refuse(u8),
}

impl Verdict {
    /// True for [`Verdict::Allow`].
    pub fn allows(self) -> bool {
        matches!(self, Verdict::Allow(_))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Allow(rule) => write!(f, "SPEC §5 rule {rule} allows it"),
            Verdict::Refuse(rule) => write!(f, "SPEC §5 rule {rule} refuses it"),
        }
    }
}

/// May `incoming` replace `existing`? SPEC §5 rules 1 to 6, in order; the
/// first rule that applies decides.
pub fn judge(existing: &Fields, incoming: &Fields) -> Verdict {
    if let Some(tenant) = &existing.tenant {
        if incoming.tenant.as_ref() != Some(tenant) {
            return Verdict::Refuse(1);
        }
    }
    match (&existing.account_id, &incoming.account_id) {
        (Some(a), Some(b)) => {
            return if a == b {
                Verdict::Allow(2)
            } else {
                Verdict::Refuse(2)
            }
        }
        (Some(_), None) => return Verdict::Refuse(3),
        (None, _) => {}
    }
    match (&existing.email, &incoming.email) {
        (Some(a), Some(b)) if a == b => Verdict::Allow(4),
        (Some(_), Some(_)) => Verdict::Refuse(4),
        (Some(_), None) => Verdict::Refuse(5),
        (None, _) => Verdict::Allow(6),
    }
}

#[cfg(test)]
mod tests {
    //! Every row of the SPEC §5 table, checked against this statement of the
    //! rules (the kernel's own tests check the kernel against the same rows).
    use super::*;

    fn id(account_id: Option<&str>, email: Option<&str>, tenant: Option<&str>) -> Fields {
        Fields::new(account_id, email, tenant)
    }

    #[test]
    fn g3_every_row_of_the_spec_table() {
        let x = Some("acct-x");
        let y = Some("acct-y");
        let e = Some("e@example.com");
        let rows: [(&str, Fields, Fields, bool); 23] = [
            (
                "acct X -> acct X",
                id(x, None, None),
                id(x, None, None),
                true,
            ),
            (
                "acct X -> acct Y",
                id(x, None, None),
                id(y, None, None),
                false,
            ),
            (
                "acct X, e -> acct Y, e",
                id(x, e, None),
                id(y, e, None),
                false,
            ),
            (
                "acct X, e1 -> acct X, e2",
                id(x, Some("e1@x"), None),
                id(x, Some("e2@x"), None),
                true,
            ),
            (
                "acct X, e -> acct X",
                id(x, e, None),
                id(x, None, None),
                true,
            ),
            ("acct X, e -> e", id(x, e, None), id(None, e, None), false),
            (
                "e -> \" E \"",
                id(None, e, None),
                id(None, Some(" E@Example.COM "), None),
                true,
            ),
            (
                "e1 -> e2",
                id(None, Some("e1@x"), None),
                id(None, Some("e2@x"), None),
                false,
            ),
            ("{} -> {}", Fields::default(), Fields::default(), true),
            ("{} -> acct X", Fields::default(), id(x, None, None), true),
            ("{} -> e", Fields::default(), id(None, e, None), true),
            ("acct X -> {}", id(x, None, None), Fields::default(), false),
            ("e -> {}", id(None, e, None), Fields::default(), false),
            ("acct X -> e", id(x, None, None), id(None, e, None), false),
            ("e -> acct X", id(None, e, None), id(x, None, None), false),
            ("e -> acct X, e", id(None, e, None), id(x, e, None), true),
            (
                "Acct-1 -> acct-1",
                id(Some("Acct-1"), None, None),
                id(Some("acct-1"), None, None),
                false,
            ),
            (
                "\"  acct-1 \" -> acct-1",
                id(Some("  acct-1 "), None, None),
                id(Some("acct-1"), None, None),
                true,
            ),
            (
                "blank -> acct X",
                id(Some("  "), Some(""), None),
                id(x, None, None),
                true,
            ),
            (
                "T, X -> T, X",
                id(x, None, Some("T")),
                id(x, None, Some("T")),
                true,
            ),
            (
                "T, X -> U, X",
                id(x, None, Some("T")),
                id(x, None, Some("U")),
                false,
            ),
            (
                "T, X -> X",
                id(x, None, Some("T")),
                id(x, None, None),
                false,
            ),
            ("X -> T, X", id(x, None, None), id(x, None, Some("T")), true),
        ];
        for (row, existing, incoming, allowed) in rows {
            let verdict = judge(&existing, &incoming);
            assert_eq!(verdict.allows(), allowed, "G3 table row {row}: {verdict}");
        }
    }

    #[test]
    fn g3_the_deciding_rule_is_named() {
        let tenant = id(Some("a"), None, Some("T"));
        assert_eq!(
            judge(&tenant, &id(Some("a"), None, None)),
            Verdict::Refuse(1)
        );
        assert_eq!(
            judge(&id(Some("a"), None, None), &id(None, None, None)),
            Verdict::Refuse(3)
        );
        assert_eq!(
            judge(&id(None, Some("e"), None), &id(None, None, None)),
            Verdict::Refuse(5)
        );
        assert_eq!(judge(&Fields::default(), &tenant), Verdict::Allow(6));
    }
}
