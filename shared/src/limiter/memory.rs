//! An in-process [`SharedStore`] with the proxy's CAS semantics, for tests and benchmarks.

use std::collections::HashMap;

use super::store::SharedStore;
use super::LimiterError;

/// Shared data as Envoy keeps it: every write gets a new non-zero CAS token from one counter;
/// a write with CAS `None` is unconditional; entries are never removed.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    entries: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total bytes of keys and values.
    pub fn bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|(k, (v, _))| k.len() + v.len())
            .sum()
    }

    /// The value of `key`.
    pub fn value(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(|(v, _)| v.as_slice())
    }
}

impl SharedStore for MemoryStore {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, LimiterError> {
        Ok(self.entries.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, LimiterError> {
        if let (Some(cas), Some((_, current))) = (cas, self.entries.get(key)) {
            if cas != *current {
                return Ok(false);
            }
        }
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.entries
            .insert(key.to_owned(), (value.to_vec(), self.next_cas));
        Ok(true)
    }
}
