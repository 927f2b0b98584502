//! STUB (replaced by helper)
use alloc::string::String;
use alloc::vec::Vec;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    ConnectRefused,
    DnsFailure,
    TlsHandshake,
    TimedOutAfterSend,
    ConnectionReset,
    MalformedResponse,
}
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EndpointError {
    pub status: Option<u16>,
    pub body: String,
    pub causes: Vec<String>,
    pub transport: Option<Transport>,
}
impl EndpointError {
    pub fn transport(t: Transport) -> Self {
        EndpointError {
            transport: Some(t),
            ..Default::default()
        }
    }
    pub fn http(status: u16, body: impl Into<String>) -> Self {
        EndpointError {
            status: Some(status),
            body: body.into(),
            ..Default::default()
        }
    }
    pub fn with_cause(mut self, c: impl Into<String>) -> Self {
        self.causes.push(c.into());
        self
    }
}
impl core::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?} {}", self.status, self.body)
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Reuse,
    NotSent,
    Rejected,
    Unknown,
}
pub fn is_reuse_message(t: &str) -> bool {
    let t = t.to_lowercase();
    t.contains("invalid_grant") || t.contains("refresh_token_reused")
}
pub fn classify(e: &EndpointError) -> ErrorClass {
    if is_reuse_message(&e.body) || e.causes.iter().any(|c| is_reuse_message(c)) {
        return ErrorClass::Reuse;
    }
    match e.transport {
        Some(Transport::ConnectRefused | Transport::DnsFailure | Transport::TlsHandshake) => {
            return ErrorClass::NotSent
        }
        Some(_) => return ErrorClass::Unknown,
        None => {}
    }
    match e.status {
        Some(s) if (400..500).contains(&s) => ErrorClass::Rejected,
        _ => ErrorClass::Unknown,
    }
}
