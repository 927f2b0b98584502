//! The simulator's strict provider ([`crate::endpoint::Endpoint`]) answering
//! one refresh call of the shipped host, for the disk checkers: the request
//! is recorded and handled at once, and the answer is what a real endpoint
//! would send (a grant, or the OAuth error the provider's verdict gives).

use rotor_kernel::{Credential, EndpointError, TokenGrant};

use crate::endpoint::{self, Endpoint, Request, ServerFault};
use crate::trace::ServerResult;

/// The request `credential` makes, recorded as presented by `agent`, and
/// handled; the provider's answer. Call it only from a process that is
/// alive: a dead one sends nothing.
pub fn present(
    provider: &mut Endpoint,
    credential: &Credential,
    agent: u16,
) -> Result<TokenGrant, EndpointError> {
    let presented = credential.refresh.as_ref().map(|r| r.expose().to_owned());
    let Some((family, n)) = presented.as_deref().and_then(endpoint::parse_token) else {
        return Err(EndpointError::http(400, r#"{"error":"invalid_request"}"#));
    };
    let id = provider.send(Request {
        agent,
        epoch: 0,
        family,
        n,
        sent_at_ms: 0,
        processed: false,
        replied: true,
        fault: ServerFault::None,
        result: None,
        grant: None,
        attempt: 0,
        stalled: false,
    });
    let (result, _) = provider.process(id, 0);
    match result {
        ServerResult::Rotated | ServerResult::Grace => {
            let (family, n) = provider.requests[id as usize]
                .grant
                .expect("a rotation has a grant");
            Ok(provider.grant(family, n, (None, None)))
        }
        other => Err(endpoint::endpoint_error(ServerFault::None, Some(other))),
    }
}
