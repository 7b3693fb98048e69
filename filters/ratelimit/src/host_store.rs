//! The proxy's shared data as a [`SharedStore`].

use meshguard_core::limiter::{LimiterError, SharedStore};
use meshguard_host::CasOutcome;

/// Shared data of this VM id, through the typed hostcall wrappers.
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, LimiterError> {
        match meshguard_host::shared_data(key) {
            Ok((Some(value), Some(cas))) => Ok(Some((value, cas))),
            // An entry set to an empty value comes back without bytes but with a CAS token.
            Ok((None, Some(cas))) => Ok(Some((Vec::new(), cas))),
            Ok((_, None)) => Ok(None),
            Err(e) => Err(LimiterError::Store(e.to_string())),
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, LimiterError> {
        match meshguard_host::set_shared_data(key, value, cas) {
            Ok(CasOutcome::Written) => Ok(true),
            Ok(CasOutcome::Mismatch) => Ok(false),
            Err(e) => Err(LimiterError::Store(e.to_string())),
        }
    }
}
