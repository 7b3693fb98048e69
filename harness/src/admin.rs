//! Control-plane operations on a running host, and resource gauges for soak tests.
//!
//! - [`Host::reconfigure`]: a plugin-configuration push (an xDS/ECDS update in Envoy). The new
//!   configuration is tried on a fresh canary VM first; if its `proxy_on_configure` refuses it (or
//!   it traps), the push is refused — Envoy NACKs the update — and the running VMs, with the old
//!   configuration, keep serving. If the canary accepts it, every worker gets a new VM started
//!   with the new configuration (Envoy creates new root contexts / VMs for a new plugin config);
//!   shared data, queues and metrics stay, as they belong to the process.
//! - [`Host::memory_sizes`]: each worker VM's guest linear memory in bytes.
//! - [`Host::shared_data_size`]: key count and bytes held in shared data.
//! - [`Host::clear_logs`] / [`Host::clear_events`]: drop captured logs and events (long runs).

use std::sync::Arc;

use crate::error::{HarnessError, Result};
use crate::host::{FilterRuntime, Host};
use crate::shared::lock;
use crate::vm::FilterInfo;

/// What shared data holds across every `vm_id` namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SharedDataSize {
    /// Number of keys.
    pub keys: usize,
    /// Bytes of keys plus values.
    pub bytes: usize,
}

impl Host {
    /// Pushes `config` as the new plugin configuration of filter `f` (index in the chain).
    ///
    /// Returns [`HarnessError::ConfigureRejected`] (worker `None`: the canary) when the filter
    /// refuses it; then nothing changes. Fails with [`HarnessError::Invalid`] while a stream is in
    /// flight on any worker (Envoy would finish those on the old configuration; the harness
    /// requires the push between requests).
    pub fn reconfigure(&self, f: usize, config: impl Into<Vec<u8>>) -> Result<()> {
        let inner = &self.inner;
        let runtime = inner
            .filters
            .get(f)
            .ok_or_else(|| HarnessError::Invalid(format!("no filter {f} in the chain")))?;
        let config = config.into();
        // The configuration currently served is the one of the running VMs (it may differ from
        // the build-time one after an earlier push).
        let current = match inner.workers.first() {
            Some(w) => lock(w).vms.get(f).map(|vm| vm.store.data().info.clone()),
            None => None,
        }
        .unwrap_or_else(|| runtime.info.clone());
        let mut info = FilterInfo::clone(&current);
        info.plugin_config = config;
        let info = Arc::new(info);
        let fresh = FilterRuntime {
            info,
            pre: runtime.pre.clone(),
        };
        // Hold every worker while checking and swapping, so no stream starts in between.
        let mut guards: Vec<_> = inner.workers.iter().map(lock).collect();
        if guards
            .iter()
            .any(|w| w.vms.iter().any(|vm| !vm.store.data().streams.is_empty()))
        {
            return Err(HarnessError::Invalid(
                "reconfigure: a stream is in flight; finish it first".to_owned(),
            ));
        }
        inner.start_vm(&fresh, None)?;
        let mut started = Vec::with_capacity(guards.len());
        for w in &guards {
            started.push(inner.start_vm(&fresh, Some(w.index))?);
        }
        for (w, vm) in guards.iter_mut().zip(started) {
            if let Some(slot) = w.vms.get_mut(f) {
                *slot = vm;
            }
        }
        Ok(())
    }

    /// [`Host::reconfigure`] with a JSON value.
    pub fn reconfigure_json(&self, f: usize, config: serde_json::Value) -> Result<()> {
        self.reconfigure(f, config.to_string().into_bytes())
    }

    /// Guest linear memory in bytes of every VM: `[worker][filter]`.
    pub fn memory_sizes(&self) -> Vec<Vec<usize>> {
        self.inner
            .workers
            .iter()
            .map(|w| {
                let w = lock(w);
                w.vms
                    .iter()
                    .map(|vm| vm.store.data().memory.map_or(0, |m| m.data_size(&vm.store)))
                    .collect()
            })
            .collect()
    }

    /// Keys and bytes in shared data, over every `vm_id`.
    pub fn shared_data_size(&self) -> SharedDataSize {
        let (keys, bytes) = lock(&self.inner.shared.data).size();
        SharedDataSize { keys, bytes }
    }

    /// Drops the captured logs (long runs keep host memory flat this way).
    pub fn clear_logs(&self) {
        lock(&self.inner.shared.logs).clear();
    }

    /// Drops the recorded hostcall/callback events and HTTP-call history.
    pub fn clear_events(&self) {
        lock(&self.inner.shared.events).clear();
        lock(&self.inner.shared.all_calls).clear();
    }
}
