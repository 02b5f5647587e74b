//! What the endpoints know of one account: set up when the account is known to the process,
//! its controller attached once the account is identified.

use std::sync::{Arc, Mutex, OnceLock};

use super::Controller;
use super::conditions::AwsHealth;
use crate::manifest::accounts::AccountSpec;

pub struct Slot {
    pub spec: Option<AccountSpec>,
    pub aws: Arc<AwsHealth>,
    pub controller: OnceLock<Arc<Controller>>,
    /// Why the account cannot be identified (its role cannot be assumed, …), while it cannot.
    pub unreachable: Mutex<Option<String>>,
}

impl Slot {
    /// A slot for the account `spec` (`None`: the only one, the caller's).
    pub fn new(spec: Option<AccountSpec>) -> Arc<Slot> {
        Arc::new(Slot {
            spec,
            aws: Arc::new(AwsHealth::default()),
            controller: OnceLock::new(),
            unreachable: Mutex::new(None),
        })
    }

    pub fn name(&self) -> Option<&str> {
        self.spec.as_ref().map(|s| s.name.as_str())
    }
}
