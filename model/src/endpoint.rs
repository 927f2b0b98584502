//! A strict rotating OAuth provider that records every presentation.
//!
//! Each token family belongs to one account. Presenting a family's current
//! refresh token rotates it: a new access token and a new refresh token, the
//! old one consumed. Presenting a consumed token is reuse: the provider
//! revokes the whole family (as strict providers do) and answers
//! `invalid_grant`. There is no grace window, so any refresh token value
//! presented twice breaks G1, whatever the provider answered.
//!
//! Token values are readable on purpose (`rt-acct-x-0`, `at-acct-x-1`): the
//! model's reports name them so a failing interleaving can be followed.

use std::collections::BTreeMap;

use rotor_fs::sync::{self, Arc, Mutex};
use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{Credential, EndpointError, Secret, TokenGrant};

use crate::world::World;

/// Lifetime of every access token the provider issues: one hour, far past
/// the refresh margin, so a rotated token is usable for the rest of a run.
pub const EXPIRES_IN_MS: u64 = 3_600_000;

/// The provider.
#[derive(Debug)]
pub struct StrictProvider {
    state: Mutex<ProviderState>,
}

#[derive(Debug, Default)]
struct ProviderState {
    families: Vec<Family>,
    /// Refresh token value -> (family, rotation index, consumed).
    refresh_tokens: BTreeMap<String, RefreshToken>,
    /// Access token value -> family.
    access_tokens: BTreeMap<String, usize>,
    presentations: Vec<Presentation>,
}

#[derive(Debug)]
struct Family {
    account: String,
    /// The grant's `account_id` and `email` for every rotation.
    reports: (Option<String>, Option<String>),
    rotations: u32,
    revoked: bool,
}

#[derive(Debug)]
struct RefreshToken {
    family: usize,
    consumed: bool,
}

/// One presentation of a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presentation {
    /// The refresh token value presented.
    pub refresh: String,
    /// Its family (`None` for a value the provider never issued).
    pub family: Option<usize>,
    /// Who presented it.
    pub by: String,
    /// Whether the provider rotated on it.
    pub rotated: bool,
}

impl Default for StrictProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl StrictProvider {
    /// No family yet.
    pub fn new() -> Self {
        StrictProvider {
            state: Mutex::new(ProviderState::default()),
        }
    }

    /// Issues a new family for `account`, whose rotations report
    /// `account_id` and `email`, and returns its id and first (access,
    /// refresh) pair.
    pub fn new_family(
        &self,
        account: &str,
        account_id: Option<&str>,
        email: Option<&str>,
    ) -> (usize, String, String) {
        let mut state = sync::lock(&self.state);
        let family = state.families.len();
        state.families.push(Family {
            account: account.to_string(),
            reports: (account_id.map(str::to_string), email.map(str::to_string)),
            rotations: 0,
            revoked: false,
        });
        let (access, refresh) = state.issue(family);
        (family, access, refresh)
    }

    /// Presents `refresh` on behalf of `by`.
    pub fn present(&self, refresh: &str, by: &str) -> Result<TokenGrant, EndpointError> {
        let mut state = sync::lock(&self.state);
        let token = state
            .refresh_tokens
            .get(refresh)
            .map(|token| (token.family, token.consumed));
        let outcome = match token {
            Some((family, false)) if !state.families[family].revoked => {
                if let Some(token) = state.refresh_tokens.get_mut(refresh) {
                    token.consumed = true;
                }
                state.families[family].rotations += 1;
                let (access, new_refresh) = state.issue(family);
                Ok(TokenGrant {
                    access: Secret::new(access),
                    refresh: Some(Secret::new(new_refresh)),
                    expires_in_ms: Some(EXPIRES_IN_MS),
                    account_id: state.families[family].reports.0.clone().map(Into::into),
                    email: state.families[family].reports.1.clone().map(Into::into),
                })
            }
            Some((family, consumed)) => {
                // Reuse of a consumed token revokes the family (strict provider).
                if consumed {
                    state.families[family].revoked = true;
                }
                Err(invalid_grant())
            }
            None => Err(invalid_grant()),
        };
        state.presentations.push(Presentation {
            refresh: refresh.to_string(),
            family: token.map(|(family, _)| family),
            by: by.to_string(),
            rotated: outcome.is_ok(),
        });
        outcome
    }

    /// Every presentation so far, in order.
    pub fn presentations(&self) -> Vec<Presentation> {
        sync::lock(&self.state).presentations.clone()
    }

    /// The account of `family`.
    pub fn account(&self, family: usize) -> String {
        sync::lock(&self.state).families[family].account.clone()
    }

    /// The family an access token was issued for.
    pub fn family_of_access(&self, access: &str) -> Option<usize> {
        sync::lock(&self.state).access_tokens.get(access).copied()
    }

    /// The newest access token of `family`.
    pub fn latest_access(&self, family: usize) -> String {
        let state = sync::lock(&self.state);
        access_value(
            &state.families[family].account,
            state.families[family].rotations,
        )
    }

    /// Whether `family` was revoked for reuse.
    pub fn revoked(&self, family: usize) -> bool {
        sync::lock(&self.state).families[family].revoked
    }
}

impl ProviderState {
    /// Issues the (access, refresh) pair of `family`'s current rotation.
    fn issue(&mut self, family: usize) -> (String, String) {
        let entry = &self.families[family];
        let (access, refresh) = (
            access_value(&entry.account, entry.rotations),
            refresh_value(&entry.account, entry.rotations),
        );
        self.access_tokens.insert(access.clone(), family);
        self.refresh_tokens.insert(
            refresh.clone(),
            RefreshToken {
                family,
                consumed: false,
            },
        );
        (access, refresh)
    }
}

fn access_value(account: &str, rotation: u32) -> String {
    format!("at-{account}-{rotation}")
}

fn refresh_value(account: &str, rotation: u32) -> String {
    format!("rt-{account}-{rotation}")
}

fn invalid_grant() -> EndpointError {
    EndpointError::http(
        400,
        r#"{"error":"invalid_grant","error_description":"refresh token has already been used"}"#,
    )
}

/// One agent's connection to the provider.
#[derive(Debug)]
pub struct ModelEndpoint {
    world: Arc<World>,
    agent: String,
}

impl ModelEndpoint {
    /// `agent`'s endpoint.
    pub fn new(world: Arc<World>, agent: impl Into<String>) -> Self {
        ModelEndpoint {
            world,
            agent: agent.into(),
        }
    }
}

impl TokenEndpoint for ModelEndpoint {
    fn refresh(
        &mut self,
        credential: &Credential,
        _deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        let refresh = credential.refresh.as_ref().map_or("", Secret::expose);
        self.world.provider.present(refresh, &self.agent)
    }
}
