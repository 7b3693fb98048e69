//! What Envoy shares between worker VMs: shared data (CAS), shared queues, metrics by name. Plus
//! the harness's own records (logs, hostcall log, traps, flags, pending HTTP calls).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use crate::clock::Clock;
use crate::types::{Flag, HostEvent, LogEntry, Status, TrapInfo};
use crate::upstream::{CallReply, HttpCall, Upstream};

/// Locks a mutex, recovering from poisoning (a panicking test thread must not hide later
/// assertions behind a poison error).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Envoy's shared data: per vm_id key/value with a global CAS counter that is never 0.
#[derive(Debug, Default)]
pub(crate) struct SharedData {
    by_vm: HashMap<String, HashMap<String, (Vec<u8>, u32)>>,
    last_cas: u32,
    /// While a race is open ([`crate::Host::race`]): the data as it was when it opened, and the
    /// workers that have written since (they read the live data again).
    race: Option<Race>,
}

/// Workers running "at the same moment": each one's reads see the data as it was when the race
/// opened, until its own first write. That is the interleaving where every worker reads before
/// any of the others writes, the one that breaks a read-then-unconditional-write.
#[derive(Debug)]
struct Race {
    snapshot: HashMap<String, HashMap<String, (Vec<u8>, u32)>>,
    /// Readers (by worker; `None` = a VM outside the workers) that see the live data.
    live: Vec<Option<usize>>,
    depth: usize,
}

impl SharedData {
    fn next_cas(&mut self) -> u32 {
        self.last_cas = self.last_cas.wrapping_add(1);
        if self.last_cas == 0 {
            self.last_cas = 1;
        }
        self.last_cas
    }

    /// The live value of `key` (what the test inspects).
    pub(crate) fn get(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        self.by_vm.get(vm_id)?.get(key).cloned()
    }

    /// Number of keys and bytes (keys + values) over every namespace.
    pub(crate) fn size(&self) -> (usize, usize) {
        self.by_vm
            .values()
            .flat_map(|m| m.iter())
            .fold((0, 0), |(n, b), (k, (v, _))| (n + 1, b + k.len() + v.len()))
    }

    /// `key` as VM of `worker` reads it: the race snapshot until that worker wrote.
    pub(crate) fn get_as(
        &self,
        worker: Option<usize>,
        vm_id: &str,
        key: &str,
    ) -> Option<(Vec<u8>, u32)> {
        match &self.race {
            Some(r) if !r.live.contains(&worker) => r.snapshot.get(vm_id)?.get(key).cloned(),
            _ => self.get(vm_id, key),
        }
    }

    /// Opens (or nests) a race.
    pub(crate) fn open_race(&mut self) {
        match &mut self.race {
            Some(r) => r.depth += 1,
            None => {
                self.race = Some(Race {
                    snapshot: self.by_vm.clone(),
                    live: Vec::new(),
                    depth: 1,
                });
            }
        }
    }

    /// Closes a race opened by [`SharedData::open_race`].
    pub(crate) fn close_race(&mut self) {
        if let Some(r) = &mut self.race {
            r.depth = r.depth.saturating_sub(1);
            if r.depth == 0 {
                self.race = None;
            }
        }
    }

    /// [`SharedData::set`] by VM of `worker`: from then on, in a race, that worker reads live.
    pub(crate) fn set_as(
        &mut self,
        worker: Option<usize>,
        vm_id: &str,
        key: &str,
        value: &[u8],
        cas: u32,
    ) -> Status {
        if let Some(r) = &mut self.race {
            if !r.live.contains(&worker) {
                r.live.push(worker);
            }
        }
        self.set(vm_id, key, value, cas)
    }

    /// `cas == 0`: unconditional. Otherwise it must equal the current CAS of an existing key
    /// (`CAS_MISMATCH` if not). A missing key is created whatever the CAS, as cpp-host's
    /// `SharedData::set` does: the ABI has no atomic "create if absent".
    pub(crate) fn set(&mut self, vm_id: &str, key: &str, value: &[u8], cas: u32) -> Status {
        let current = self
            .by_vm
            .get(vm_id)
            .and_then(|m| m.get(key))
            .map(|(_, c)| *c);
        if let Some(current) = current {
            if cas != 0 && current != cas {
                return Status::CasMismatch;
            }
        }
        let next = self.next_cas();
        self.by_vm
            .entry(vm_id.to_owned())
            .or_default()
            .insert(key.to_owned(), (value.to_vec(), next));
        Status::Ok
    }
}

/// Who gets `proxy_on_queue_ready` for a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueOwner {
    pub worker: Option<usize>,
    pub filter: usize,
    pub root_context: u32,
}

#[derive(Debug)]
pub(crate) struct Queue {
    pub vm_id: String,
    pub name: String,
    pub items: VecDeque<Vec<u8>>,
    pub owner: QueueOwner,
}

/// Shared queues: `(vm_id, name)` → token; the last registrant is notified.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    pub queues: BTreeMap<u32, Queue>,
    /// Notifications waiting to be delivered: (queue id, owner).
    pub ready: VecDeque<(u32, QueueOwner)>,
}

impl Queues {
    pub(crate) fn register(&mut self, vm_id: &str, name: &str, owner: QueueOwner) -> u32 {
        if let Some((id, q)) = self
            .queues
            .iter_mut()
            .find(|(_, q)| q.vm_id == vm_id && q.name == name)
        {
            q.owner = owner;
            return *id;
        }
        let id = u32::try_from(self.queues.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        self.queues.insert(
            id,
            Queue {
                vm_id: vm_id.to_owned(),
                name: name.to_owned(),
                items: VecDeque::new(),
                owner,
            },
        );
        id
    }

    pub(crate) fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.queues
            .iter()
            .find(|(_, q)| q.vm_id == vm_id && q.name == name)
            .map(|(id, _)| *id)
    }

    pub(crate) fn enqueue(&mut self, id: u32, value: &[u8]) -> Status {
        match self.queues.get_mut(&id) {
            Some(q) => {
                q.items.push_back(value.to_vec());
                let owner = q.owner;
                self.ready.push_back((id, owner));
                Status::Ok
            }
            None => Status::NotFound,
        }
    }

    pub(crate) fn dequeue(&mut self, id: u32) -> Result<Vec<u8>, Status> {
        match self.queues.get_mut(&id) {
            Some(q) => q.items.pop_front().ok_or(Status::Empty),
            None => Err(Status::NotFound),
        }
    }
}

/// Kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Up and down.
    Gauge,
    /// Recorded values.
    Histogram,
}

/// One metric as Envoy's stats store would show it (aggregated over every VM that defined it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metric {
    /// Kind.
    pub kind: MetricKind,
    /// Counter or gauge value.
    pub value: i64,
    /// Histogram samples.
    pub samples: Vec<u64>,
}

/// A pending HTTP call and when it is answered.
#[derive(Debug, Clone)]
pub(crate) struct PendingCall {
    pub call: HttpCall,
    /// Fake-time nanos at which `reply` is delivered (None: waits for the test).
    pub due: Option<u64>,
    pub reply: Option<CallReply>,
}

/// Everything the worker VMs of one host share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub clock: Clock,
    pub data: Mutex<SharedData>,
    pub queues: Mutex<Queues>,
    pub metrics: Mutex<BTreeMap<String, Metric>>,
    pub logs: Mutex<Vec<LogEntry>>,
    pub events: Mutex<Vec<HostEvent>>,
    pub traps: Mutex<Vec<TrapInfo>>,
    pub flags: Mutex<Vec<Flag>>,
    pub upstreams: Mutex<HashMap<String, Upstream>>,
    pub calls: Mutex<BTreeMap<u32, PendingCall>>,
    pub all_calls: Mutex<Vec<HttpCall>>,
    pub next_token: AtomicU32,
    pub record_events: bool,
    /// Environment variables per filter index (`HostBuilder::env`), for WASI `environ`.
    pub env: Mutex<HashMap<usize, Vec<(String, String)>>>,
}

impl Shared {
    pub(crate) fn new(clock: Clock, upstreams: HashMap<String, Upstream>, record: bool) -> Shared {
        Shared {
            clock,
            data: Mutex::default(),
            queues: Mutex::default(),
            metrics: Mutex::default(),
            logs: Mutex::default(),
            events: Mutex::default(),
            traps: Mutex::default(),
            flags: Mutex::default(),
            upstreams: Mutex::new(upstreams),
            calls: Mutex::default(),
            all_calls: Mutex::default(),
            next_token: AtomicU32::new(1),
            record_events: record,
            env: Mutex::default(),
        }
    }

    pub(crate) fn next_token(&self) -> u32 {
        self.next_token.fetch_add(1, Ordering::SeqCst)
    }

    pub(crate) fn flag(&self, flag: Flag) {
        lock(&self.flags).push(flag);
    }
}
