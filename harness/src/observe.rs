//! What a test inspects or injects on a [`Host`] besides streams: metrics, logs, the hostcall
//! log, traps and flags, shared data and queues.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{HarnessError, Result};
use crate::host::Host;
use crate::shared::{lock, Metric};
use crate::types::{Flag, HostEvent, LogEntry, TrapInfo};

impl Host {
    /// A counter or gauge value by name, aggregated over every VM (0 if never defined).
    pub fn counter(&self, name: &str) -> i64 {
        lock(&self.inner.shared.metrics)
            .get(name)
            .map_or(0, |m| m.value)
    }

    /// Every metric by name.
    pub fn metrics(&self) -> BTreeMap<String, Metric> {
        lock(&self.inner.shared.metrics).clone()
    }

    /// Captured logs, in order.
    pub fn logs(&self) -> Vec<LogEntry> {
        lock(&self.inner.shared.logs).clone()
    }

    /// Number of log entries so far (to slice [`Host::logs`] per request).
    pub fn log_count(&self) -> usize {
        lock(&self.inner.shared.logs).len()
    }

    /// The hostcall and callback log, in order.
    pub fn events(&self) -> Vec<HostEvent> {
        lock(&self.inner.shared.events).clone()
    }

    /// Statuses the host returned for hostcall `name`, in order.
    pub fn statuses_of(&self, name: &str) -> Vec<crate::types::Status> {
        lock(&self.inner.shared.events)
            .iter()
            .filter_map(|e| match e {
                HostEvent::Hostcall {
                    name: n, status, ..
                } if *n == name => Some(*status),
                _ => None,
            })
            .collect()
    }

    /// Every trap so far.
    pub fn traps(&self) -> Vec<TrapInfo> {
        lock(&self.inner.shared.traps).clone()
    }

    /// Every flag so far.
    pub fn flags(&self) -> Vec<Flag> {
        lock(&self.inner.shared.flags).clone()
    }

    /// How many VMs FAIL_RELOAD replaced.
    pub fn reloads(&self) -> usize {
        self.inner.reloads.load(Ordering::SeqCst)
    }

    /// Whether worker `w`'s VM of filter `f` has failed.
    pub fn is_failed(&self, w: usize, f: usize) -> Result<bool> {
        Ok(lock(self.inner.worker(w)?)
            .vms
            .get(f)
            .is_some_and(|vm| vm.failed))
    }

    /// Shared data `(value, cas)` of `key` in the namespace `vm_id`.
    pub fn shared_data(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.inner.shared.data).get(vm_id, key)
    }

    /// Sets shared data as a VM would (`cas` 0 = unconditional); returns the status.
    pub fn set_shared_data(
        &self,
        vm_id: &str,
        key: &str,
        value: &[u8],
        cas: u32,
    ) -> crate::types::Status {
        lock(&self.inner.shared.data).set(vm_id, key, value, cas)
    }

    /// Enqueues onto a shared queue as another VM would; `on_queue_ready` runs on the last
    /// registrant's worker.
    pub fn enqueue(&self, vm_id: &str, queue: &str, value: &[u8]) -> Result<crate::types::Status> {
        let status = {
            let mut q = lock(&self.inner.shared.queues);
            match q.resolve(vm_id, queue) {
                Some(id) => q.enqueue(id, value),
                None => crate::types::Status::NotFound,
            }
        };
        self.advance(Duration::ZERO)?;
        Ok(status)
    }

    /// Calls an exported function that takes and returns nothing (e.g. the ABI marker
    /// `proxy_abi_version_0_2_1`) on worker `w`'s VM of filter `f`: the floor of a guest call's
    /// cost, for benchmarks.
    pub fn call_void_export(&self, w: usize, f: usize, name: &str) -> Result<()> {
        let mut worker = lock(self.inner.worker(w)?);
        let vm = worker.vms.get_mut(f).ok_or(HarnessError::NoWorker(w))?;
        let func = vm
            .instance_func(name)
            .ok_or_else(|| HarnessError::Invalid(format!("no export {name}")))?;
        func.call(&mut vm.store, ())
            .map_err(|e| HarnessError::Wasmtime(format!("{e:#}")))
    }
}
