//! STUB (replaced by helper)
use crate::Credential;
use alloc::string::{String, ToString};
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Identity {
    pub account_id: Option<String>,
    pub email: Option<String>,
    pub tenant: Option<String>,
}
fn norm(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string())
}
impl Identity {
    pub fn new(account_id: Option<&str>, email: Option<&str>, tenant: Option<&str>) -> Self {
        Identity {
            account_id: norm(account_id),
            email: norm(email).map(|e| e.to_lowercase()),
            tenant: norm(tenant),
        }
    }
    pub fn of(c: &Credential) -> Self {
        Self::new(
            c.account_id.as_deref(),
            c.email.as_deref(),
            c.tenant.as_deref(),
        )
    }
    pub fn is_empty(&self) -> bool {
        self.account_id.is_none() && self.email.is_none() && self.tenant.is_none()
    }
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityRefusal {
    AccountMismatch { existing: String, incoming: String },
}
impl core::fmt::Display for IdentityRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{self:?}")
    }
}
pub fn may_copy(e: &Identity, i: &Identity) -> bool {
    if let Some(t) = &e.tenant {
        if i.tenant.as_ref() != Some(t) {
            return false;
        }
    }
    match (&e.account_id, &i.account_id) {
        (Some(a), Some(b)) => return a == b,
        (Some(_), None) => return false,
        _ => {}
    }
    match (&e.email, &i.email) {
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
        _ => true,
    }
}
pub fn same_identity(a: &Identity, b: &Identity) -> bool {
    a.tenant == b.tenant
        && a.account_id == b.account_id
        && (a.account_id.is_some() || a.email == b.email)
}
pub fn copy_refusal(e: &Identity, i: &Identity) -> Option<IdentityRefusal> {
    if may_copy(e, i) {
        None
    } else {
        Some(IdentityRefusal::AccountMismatch {
            existing: alloc::format!("{e:?}"),
            incoming: alloc::format!("{i:?}"),
        })
    }
}
