//! STUB (replaced by helper)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub lease_ms: u64,
    pub renew_every_ms: u64,
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    pub refresh_margin_ms: u64,
    pub call_deadline_ms: u64,
    pub transient_retries_max: u32,
    pub refresh_lock_wait_ms_max: u64,
    pub store_lock_wait_ms_max: u64,
    pub grace_window_ms: Option<u64>,
    pub lease: Option<LeaseConfig>,
}
impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            refresh_margin_ms: 300_000,
            call_deadline_ms: 30_000,
            transient_retries_max: 1,
            refresh_lock_wait_ms_max: 120_000,
            store_lock_wait_ms_max: 10_000,
            grace_window_ms: None,
            lease: None,
        }
    }
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    config: PolicyConfig,
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    Bad,
}
impl Policy {
    pub fn new(config: PolicyConfig) -> Result<Policy, PolicyError> {
        Ok(Policy { config })
    }
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }
    pub fn refresh_margin_ms(&self) -> u64 {
        self.config.refresh_margin_ms
    }
    pub fn call_deadline_ms(&self) -> u64 {
        self.config.call_deadline_ms
    }
    pub fn transient_retries_max(&self) -> u32 {
        self.config.transient_retries_max
    }
    pub fn refresh_lock_wait_ms_max(&self) -> u64 {
        self.config.refresh_lock_wait_ms_max
    }
    pub fn store_lock_wait_ms_max(&self) -> u64 {
        self.config.store_lock_wait_ms_max
    }
    pub fn grace_window_ms(&self) -> Option<u64> {
        self.config.grace_window_ms
    }
    pub fn lease(&self) -> Option<&LeaseConfig> {
        self.config.lease.as_ref()
    }
    pub fn call_attempts_max(&self) -> u64 {
        1 + self.config.transient_retries_max as u64
    }
}
impl Default for Policy {
    fn default() -> Self {
        Policy {
            config: PolicyConfig::default(),
        }
    }
}
