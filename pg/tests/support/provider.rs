//! An in-process strict rotating provider for driver-level tests: counts
//! every presentation per refresh token; a spent token gets `invalid_grant`
//! (and would revoke the family at a real provider). A call can be made to
//! wait at a gate, so a test can hold a holder inside its endpoint call.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use rotor_kernel::driver::TokenEndpoint;
use rotor_kernel::{Credential, EndpointError, Secret, TokenGrant};

#[derive(Default)]
struct State {
    valid: HashMap<String, ()>,
    presented: HashMap<String, u32>,
    next: u64,
    calls_started: u32,
    gate_closed: bool,
}

/// The provider; clones share it.
#[derive(Clone, Default)]
pub struct Provider {
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Provider {
    /// `initial` is the one valid refresh token.
    pub fn new(initial: &str) -> Provider {
        let provider = Provider::default();
        provider
            .state
            .0
            .lock()
            .unwrap()
            .valid
            .insert(initial.to_owned(), ());
        provider
    }

    /// Calls that rotate from now on wait (after being counted) until
    /// [`Provider::open_gate`]: a holder held inside its call.
    pub fn close_gate(&self) {
        self.state.0.lock().unwrap().gate_closed = true;
    }

    /// Lets held calls answer.
    pub fn open_gate(&self) {
        self.state.0.lock().unwrap().gate_closed = false;
        self.state.1.notify_all();
    }

    /// Waits until `n` calls have started.
    pub fn wait_calls(&self, n: u32) {
        let (state, changed) = &*self.state;
        let mut guard = state.lock().unwrap();
        while guard.calls_started < n {
            guard = changed.wait(guard).unwrap();
        }
    }

    /// How often `token` was presented.
    pub fn presentations(&self, token: &str) -> u32 {
        self.state
            .0
            .lock()
            .unwrap()
            .presented
            .get(token)
            .copied()
            .unwrap_or(0)
    }

    /// The largest presentation count of any token (G1: at most 1).
    pub fn max_presentations(&self) -> u32 {
        self.state
            .0
            .lock()
            .unwrap()
            .presented
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

impl TokenEndpoint for Provider {
    fn refresh(&mut self, credential: &Credential, _: u64) -> Result<TokenGrant, EndpointError> {
        let refresh = credential
            .refresh
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default();
        let (state, changed) = &*self.state;
        let mut guard = state.lock().unwrap();
        *guard.presented.entry(refresh.clone()).or_default() += 1;
        guard.calls_started += 1;
        changed.notify_all();
        let valid = guard.valid.remove(&refresh).is_some();
        let result = if valid {
            guard.next += 1;
            let n = guard.next;
            guard.valid.insert(format!("rt-{n}"), ());
            Ok(TokenGrant {
                access: Secret::new(format!("at-{n}")),
                refresh: Some(Secret::new(format!("rt-{n}"))),
                expires_in_ms: Some(3_600_000),
                account_id: None,
                email: None,
            })
        } else {
            Err(EndpointError::http(400, r#"{"error":"invalid_grant"}"#))
        };
        // Only a call that rotated waits: a refused one answers at once.
        while valid && guard.gate_closed {
            guard = changed.wait(guard).unwrap();
        }
        result
    }
}
