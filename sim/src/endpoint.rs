//! The token endpoint of a strict rotating provider (as Auth0, Okta and
//! node-oidc-provider behave).
//!
//! Every successful refresh returns a new refresh token and consumes the one
//! presented. Presenting a consumed token answers `invalid_grant` and revokes
//! the whole family, unless it comes within the configured grace window after
//! the first consumption (then the current tokens are returned again). The
//! model also keeps every presentation of every token value, which is what
//! the G1 checker reads.
//!
//! Token values are `r<family>.<n>` (refresh) and `a<family>.<n>` (access), so
//! the checkers can tell a token's family and rank without a lookup table.

use rotor_kernel::{EndpointError, Secret, TokenGrant, Transport};

use crate::trace::ServerResult;

/// Why a family was revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// A consumed token was presented (reuse detection).
    Reuse,
    /// The user logged out.
    Logout,
    /// A new login on a single-session provider.
    NewLogin,
}

/// One token family.
#[derive(Clone, Debug)]
pub struct Family {
    /// The account the family belongs to (0: the main account, 1: another).
    pub account: u8,
    /// Rank of the current (unconsumed) refresh token.
    pub current: u32,
    /// For each rank, when it was first consumed (`u64::MAX`: not yet).
    pub consumed_at_ms: Vec<u64>,
    /// For each rank, how many times rotor participants presented it.
    pub presented: Vec<u16>,
    /// For each rank, the request of its first presentation (`u32::MAX`:
    /// before the run).
    pub first_request: Vec<u32>,
    /// Set once revoked.
    pub revoked: Option<Revocation>,
    /// When it was revoked, ms (`u64::MAX`: not revoked).
    pub revoked_at_ms: u64,
}

/// What a request turned out to be, as the provider handled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerFault {
    /// No fault.
    None,
    /// Connection refused: never reaches the provider.
    NotSent,
    /// 503 without a body, without processing.
    Unavailable,
    /// 503 with an OAuth JSON error, without processing.
    UnavailableJson,
    /// 429 with an OAuth JSON error, without processing.
    RateLimited,
    /// Processed; the response arrives after the deadline.
    Timeout,
    /// Processed; the response is lost (connection reset).
    LostResponse,
}

/// One endpoint request.
#[derive(Clone, Debug)]
pub struct Request {
    /// The presenting agent.
    pub agent: u16,
    /// Its epoch at send time (a crash makes the reply go nowhere).
    pub epoch: u32,
    /// Family and rank of the presented token.
    pub family: u32,
    /// Rank.
    pub n: u32,
    /// When sent, ms.
    pub sent_at_ms: u64,
    /// Whether the provider has handled (or dropped) it.
    pub processed: bool,
    /// Whether the presenting agent received the reply (false when it died
    /// first: the outcome is unknown to it).
    pub replied: bool,
    /// The injected fault.
    pub fault: ServerFault,
    /// The provider's answer once processed.
    pub result: Option<ServerResult>,
    /// The grant, when rotated or within grace.
    pub grant: Option<(u32, u32)>,
    /// The fence attempt the presenting agent wrote (1: a grace retry).
    pub attempt: u32,
    /// The presenting agent's process stalled (paused, or its clock jumped)
    /// during the resolve that sent this request.
    pub stalled: bool,
}

/// The provider.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Families by id.
    pub families: Vec<Family>,
    /// Requests by id.
    pub requests: Vec<Request>,
    /// Reuse grace, ms after first consumption.
    pub grace_ms: Option<u64>,
    /// Access-token lifetime granted.
    pub access_lifetime_ms: u64,
    /// Whether grants carry the account id and email.
    pub reports_identity: bool,
    /// Successful rotations so far.
    pub rotations: u32,
}

/// Parses `r<family>.<n>` or `a<family>.<n>`.
pub fn parse_token(value: &str) -> Option<(u32, u32)> {
    let rest = value.get(1..)?;
    let (family, n) = rest.split_once('.')?;
    Some((family.parse().ok()?, n.parse().ok()?))
}

/// The refresh token of `family` at rank `n`.
pub fn refresh_token(family: u32, n: u32) -> String {
    format!("r{family}.{n}")
}

/// The access token of `family` at rank `n`.
pub fn access_token(family: u32, n: u32) -> String {
    format!("a{family}.{n}")
}

impl Endpoint {
    /// An endpoint with no families yet.
    pub fn new(grace_ms: Option<u64>, access_lifetime_ms: u64, reports_identity: bool) -> Self {
        Endpoint {
            families: Vec::with_capacity(4),
            requests: Vec::with_capacity(16),
            grace_ms,
            access_lifetime_ms,
            reports_identity,
            rotations: 0,
        }
    }

    /// Issues a new family for `account` whose current rank is `current`
    /// (ranks below it count as consumed and presented before the run).
    pub fn issue_family(&mut self, account: u8, current: u32) -> u32 {
        let ranks = current as usize + 1;
        let mut consumed_at_ms = vec![u64::MAX; ranks];
        let mut presented = vec![0; ranks];
        for rank in 0..current as usize {
            consumed_at_ms[rank] = 0;
            presented[rank] = 1;
        }
        self.families.push(Family {
            account,
            current,
            consumed_at_ms,
            presented,
            first_request: vec![u32::MAX; ranks],
            revoked: None,
            revoked_at_ms: u64::MAX,
        });
        (self.families.len() - 1) as u32
    }

    /// Revokes a family at `now_ms`.
    pub fn revoke(&mut self, family: u32, why: Revocation, now_ms: u64) {
        if let Some(f) = self.families.get_mut(family as usize) {
            if f.revoked.is_none() {
                f.revoked = Some(why);
                f.revoked_at_ms = now_ms;
            }
        }
    }

    /// Records a request; returns its id.
    pub fn send(&mut self, request: Request) -> u32 {
        self.requests.push(request);
        (self.requests.len() - 1) as u32
    }

    /// The provider handles request `id` at `now_ms`. Returns the result and
    /// the rank's presentation count *before* this one.
    pub fn process(&mut self, id: u32, now_ms: u64) -> (ServerResult, u16) {
        let request = &self.requests[id as usize];
        let (family_id, n, fault) = (request.family, request.n, request.fault);
        let family = &mut self.families[family_id as usize];
        let rank = n as usize;
        if family.presented.len() <= rank {
            family.presented.resize(rank + 1, 0);
            family.consumed_at_ms.resize(rank + 1, u64::MAX);
            family.first_request.resize(rank + 1, u32::MAX);
        }
        let before = family.presented[rank];
        let refused = matches!(
            fault,
            ServerFault::Unavailable | ServerFault::UnavailableJson | ServerFault::RateLimited
        );
        let mut grant = None;
        let result = if refused {
            ServerResult::Refused
        } else {
            family.presented[rank] = before.saturating_add(1);
            if before == 0 {
                family.first_request[rank] = id;
            }
            if family.revoked.is_some() {
                ServerResult::Revoked
            } else if n == family.current {
                family.consumed_at_ms[rank] = now_ms;
                family.current += 1;
                family.consumed_at_ms.push(u64::MAX);
                family.presented.push(0);
                family.first_request.push(u32::MAX);
                self.rotations += 1;
                grant = Some((family_id, family.current));
                ServerResult::Rotated
            } else if n < family.current
                && self.grace_ms.is_some_and(|grace| {
                    now_ms.saturating_sub(family.consumed_at_ms[rank]) <= grace
                })
            {
                grant = Some((family_id, family.current));
                ServerResult::Grace
            } else {
                family.revoked = Some(Revocation::Reuse);
                family.revoked_at_ms = now_ms;
                ServerResult::Reused
            }
        };
        let request = &mut self.requests[id as usize];
        request.processed = true;
        request.result = Some(result);
        request.grant = grant;
        (result, before)
    }

    /// The grant for tokens of `family` at rank `n`.
    pub fn grant(&self, family: u32, n: u32, identity: (Option<&str>, Option<&str>)) -> TokenGrant {
        let (account_id, email) = if self.reports_identity {
            (identity.0.map(String::from), identity.1.map(String::from))
        } else {
            (None, None)
        };
        TokenGrant {
            access: Secret::new(access_token(family, n)),
            refresh: Some(Secret::new(refresh_token(family, n))),
            expires_in_ms: Some(self.access_lifetime_ms),
            account_id: account_id.map(Into::into),
            email: email.map(Into::into),
        }
    }

    /// True when an access token of this family is still accepted.
    pub fn access_valid(&self, family: u32, n: u32) -> bool {
        self.families
            .get(family as usize)
            .is_some_and(|f| f.revoked.is_none() && n <= f.current)
    }
}

/// The error a host sees for a request's fault or refusal.
pub fn endpoint_error(fault: ServerFault, result: Option<ServerResult>) -> EndpointError {
    match fault {
        ServerFault::NotSent => EndpointError::transport(Transport::ConnectRefused),
        ServerFault::Unavailable => EndpointError::http(503, ""),
        ServerFault::UnavailableJson => EndpointError::http(
            503,
            r#"{"error":"temporarily_unavailable","error_description":"try again later"}"#,
        ),
        ServerFault::RateLimited => EndpointError::http(
            429,
            r#"{"error":"slow_down","error_description":"too many requests"}"#,
        ),
        ServerFault::Timeout => EndpointError::transport(Transport::TimedOutAfterSend),
        ServerFault::LostResponse => EndpointError::transport(Transport::ConnectionReset),
        ServerFault::None => match result {
            Some(ServerResult::Revoked) => EndpointError::http(
                400,
                r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#,
            ),
            _ => EndpointError::http(
                400,
                r#"{"error":"invalid_grant","error_description":"refresh token has already been used"}"#,
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(family: u32, n: u32) -> Request {
        Request {
            agent: 0,
            epoch: 0,
            family,
            n,
            sent_at_ms: 0,
            processed: false,
            replied: false,
            fault: ServerFault::None,
            result: None,
            grant: None,
            attempt: 0,
            stalled: false,
        }
    }

    #[test]
    fn rotation_then_reuse_revokes_the_family() {
        let mut endpoint = Endpoint::new(None, 600_000, true);
        let family = endpoint.issue_family(0, 1);
        let first = endpoint.send(request(family, 1));
        assert_eq!(endpoint.process(first, 10), (ServerResult::Rotated, 0));
        let again = endpoint.send(request(family, 1));
        assert_eq!(endpoint.process(again, 20), (ServerResult::Reused, 1));
        let next = endpoint.send(request(family, 2));
        assert_eq!(endpoint.process(next, 30).0, ServerResult::Revoked);
        assert!(!endpoint.access_valid(family, 2));
        let stale = endpoint.send(request(family, 0));
        assert_eq!(
            endpoint.process(stale, 40).1,
            1,
            "rank 0 was presented before the run"
        );
    }

    #[test]
    fn grace_window_returns_the_current_tokens() {
        let mut endpoint = Endpoint::new(Some(1_000), 600_000, false);
        let family = endpoint.issue_family(0, 0);
        let first = endpoint.send(request(family, 0));
        endpoint.process(first, 0);
        let retry = endpoint.send(request(family, 0));
        assert_eq!(endpoint.process(retry, 900).0, ServerResult::Grace);
        let late = endpoint.send(request(family, 0));
        assert_eq!(endpoint.process(late, 1_100).0, ServerResult::Reused);
        assert_eq!(parse_token("r12.7"), Some((12, 7)));
        assert_eq!(parse_token("a0.0"), Some((0, 0)));
        assert_eq!(parse_token("x"), None);
    }
}
