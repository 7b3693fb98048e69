//! One VM instance: a wasmtime `Store` holding one filter's linear memory, its root context and
//! its stream contexts, plus the typed exports the host calls.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wasmtime::{
    Instance, InstancePre, Memory, Store, StoreLimits, StoreLimitsBuilder, TypedFunc, WasmParams,
    WasmResults,
};

use crate::shared::{lock, Shared};
use crate::stream_state::StreamRef;
use crate::types::{HostEvent, LocalReply, TrapInfo};
use crate::upstream::HttpResponse;

/// Static description of a filter, shared by all its VMs.
#[derive(Debug, Clone)]
pub(crate) struct FilterInfo {
    pub index: usize,
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub plugin_config: Vec<u8>,
    pub vm_config: Vec<u8>,
    pub failure_policy: crate::types::FailurePolicy,
    /// Hostcalls allowed when capability restriction is on (others answer INTERNAL_FAILURE).
    pub allowed: Option<HashSet<String>>,
    /// Envoy's log level for the plugin: `proxy_log` below it is dropped.
    pub log_level: crate::types::LogLevel,
}

/// What the VM is doing, for restricted hostcalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `_initialize` / `main`: only logging, WASI basics.
    Initialize,
    /// Inside the guest allocator called by the host: only logging, fd_write, clocks.
    Allocating,
    /// `proxy_on_configure`: the plugin configuration is readable.
    Configure,
    /// Everything else.
    Running,
}

/// An action a hostcall asked for, run after the guest call returns.
#[derive(Debug, Clone)]
pub(crate) enum Deferred {
    ContinueRequest { ctx: u32 },
    ContinueResponse { ctx: u32 },
    CloseStream { ctx: u32 },
    LocalReply { ctx: u32, reply: LocalReply },
    Done { ctx: u32 },
}

/// The HTTP-call response being delivered (readable only inside `on_http_call_response`).
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub response: Option<HttpResponse>,
}

/// Store data of one VM.
pub(crate) struct VmState {
    pub shared: Arc<Shared>,
    pub info: Arc<FilterInfo>,
    pub worker: Option<usize>,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<i32, i32>>,
    pub limits: StoreLimits,
    pub phase: Phase,
    pub current_ctx: u32,
    pub effective_ctx: u32,
    pub root_ctx: u32,
    pub next_ctx: u32,
    pub streams: HashMap<u32, StreamRef>,
    pub pending: Vec<Deferred>,
    pub delivery: Option<Delivery>,
    /// `proxy_get_status` answer: (code, message).
    pub status: (u32, String),
    pub tick_period_ms: u32,
    pub next_tick: Option<u64>,
    pub metric_names: HashMap<u32, (crate::shared::MetricKind, String)>,
    pub next_metric: u32,
    /// Tokens of HTTP calls this VM made that are still pending.
    pub calls: HashSet<u32>,
    /// Contexts whose on_done returned false (waiting for proxy_done).
    pub done_pending: HashSet<u32>,
    /// Partial lines written to stdout / stderr.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl VmState {
    pub(crate) fn record(&self, event: HostEvent) {
        if self.shared.record_events {
            lock(&self.shared.events).push(event);
        }
    }
}

/// `proxy_on_http_call_response(root, token, headers, body, trailers)`.
pub(crate) type CallResponseFn = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// Typed exports (each optional: the host calls only what the module exports).
#[derive(Clone, Default)]
pub(crate) struct Exports {
    pub initialize: Option<TypedFunc<(), ()>>,
    pub main: Option<TypedFunc<(i32, i32), i32>>,
    pub context_create: Option<TypedFunc<(i32, i32), ()>>,
    pub vm_start: Option<TypedFunc<(i32, i32), i32>>,
    pub configure: Option<TypedFunc<(i32, i32), i32>>,
    pub request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub request_trailers: Option<TypedFunc<(i32, i32), i32>>,
    pub response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub response_trailers: Option<TypedFunc<(i32, i32), i32>>,
    pub log: Option<TypedFunc<i32, ()>>,
    pub done: Option<TypedFunc<i32, i32>>,
    pub delete: Option<TypedFunc<i32, ()>>,
    pub tick: Option<TypedFunc<i32, ()>>,
    pub queue_ready: Option<TypedFunc<(i32, i32), ()>>,
    pub http_call_response: Option<CallResponseFn>,
}

/// Result of calling a guest export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call<R> {
    /// The module does not export it.
    Missing,
    /// It returned.
    Returned(R),
    /// It trapped (recorded; the VM is now failed).
    Trapped,
}

/// One VM instance.
pub(crate) struct Vm {
    pub store: Store<VmState>,
    pub instance: Instance,
    pub exports: Exports,
    pub failed: bool,
    pub fuel: Option<u64>,
}

fn typed<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<VmState>,
    name: &str,
) -> Option<TypedFunc<P, R>> {
    instance.get_typed_func::<P, R>(&mut *store, name).ok()
}

impl Vm {
    /// Instantiates a VM (no guest code runs yet).
    pub(crate) fn instantiate(
        pre: &InstancePre<VmState>,
        shared: Arc<Shared>,
        info: Arc<FilterInfo>,
        worker: Option<usize>,
        memory_limit: Option<usize>,
        fuel: Option<u64>,
    ) -> Result<Vm, String> {
        let mut limits = StoreLimitsBuilder::new();
        if let Some(bytes) = memory_limit {
            limits = limits.memory_size(bytes);
        }
        let state = VmState {
            shared,
            info,
            worker,
            memory: None,
            alloc: None,
            limits: limits.build(),
            phase: Phase::Initialize,
            current_ctx: 0,
            effective_ctx: 0,
            root_ctx: 0,
            next_ctx: 1,
            streams: HashMap::new(),
            pending: Vec::new(),
            delivery: None,
            status: (0, String::new()),
            tick_period_ms: 0,
            next_tick: None,
            metric_names: HashMap::new(),
            next_metric: 0,
            calls: HashSet::new(),
            done_pending: HashSet::new(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        let mut store = Store::new(pre.module().engine(), state);
        store.limiter(|s| &mut s.limits);
        if let Some(f) = fuel {
            store.set_fuel(f).map_err(|e| e.to_string())?;
        }
        let instance = pre.instantiate(&mut store).map_err(|e| format!("{e:#}"))?;
        let memory = instance.get_memory(&mut store, "memory");
        let alloc = typed::<i32, i32>(&instance, &mut store, "malloc")
            .or_else(|| typed::<i32, i32>(&instance, &mut store, "proxy_on_memory_allocate"));
        store.data_mut().memory = memory;
        store.data_mut().alloc = alloc;
        let s = &mut store;
        let exports = Exports {
            initialize: typed(&instance, s, "_initialize"),
            main: typed(&instance, s, "main"),
            context_create: typed(&instance, s, "proxy_on_context_create"),
            vm_start: typed(&instance, s, "proxy_on_vm_start"),
            configure: typed(&instance, s, "proxy_on_configure"),
            request_headers: typed(&instance, s, "proxy_on_request_headers"),
            request_body: typed(&instance, s, "proxy_on_request_body"),
            request_trailers: typed(&instance, s, "proxy_on_request_trailers"),
            response_headers: typed(&instance, s, "proxy_on_response_headers"),
            response_body: typed(&instance, s, "proxy_on_response_body"),
            response_trailers: typed(&instance, s, "proxy_on_response_trailers"),
            log: typed(&instance, s, "proxy_on_log"),
            done: typed(&instance, s, "proxy_on_done"),
            delete: typed(&instance, s, "proxy_on_delete"),
            tick: typed(&instance, s, "proxy_on_tick"),
            queue_ready: typed(&instance, s, "proxy_on_queue_ready"),
            http_call_response: typed(&instance, s, "proxy_on_http_call_response"),
        };
        Ok(Vm {
            store,
            instance,
            exports,
            failed: false,
            fuel,
        })
    }

    /// Calls a guest export on context `ctx`, with fuel reset, recording the callback and any
    /// trap. A failed VM is not called (`Trapped` is returned).
    pub(crate) fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &'static str,
        func: Option<TypedFunc<P, R>>,
        ctx: u32,
        params: P,
    ) -> Call<R> {
        if self.failed {
            return Call::Trapped;
        }
        let Some(func) = func else {
            return Call::Missing;
        };
        if let Some(fuel) = self.fuel {
            if self.store.set_fuel(fuel).is_err() {
                return Call::Trapped;
            }
        }
        {
            let state = self.store.data_mut();
            state.current_ctx = ctx;
            state.effective_ctx = ctx;
            state.record(HostEvent::Callback {
                worker: state.worker,
                filter: state.info.index,
                name,
                context_id: ctx,
            });
        }
        match func.call(&mut self.store, params) {
            Ok(r) => Call::Returned(r),
            Err(e) => {
                self.failed = true;
                let state = self.store.data();
                let trap = TrapInfo {
                    worker: state.worker,
                    filter: state.info.index,
                    filter_name: state.info.name.clone(),
                    callback: name.to_owned(),
                    message: format!("{e:?}"),
                };
                lock(&state.shared.traps).push(trap);
                Call::Trapped
            }
        }
    }

    /// A `() -> ()` export by name.
    pub(crate) fn instance_func(&mut self, name: &str) -> Option<TypedFunc<(), ()>> {
        self.instance
            .get_typed_func::<(), ()>(&mut self.store, name)
            .ok()
    }

    /// Takes the actions deferred during the last guest call.
    pub(crate) fn take_pending(&mut self) -> Vec<Deferred> {
        std::mem::take(&mut self.store.data_mut().pending)
    }

    /// Allocates a fresh context id.
    pub(crate) fn next_ctx(&mut self) -> u32 {
        let state = self.store.data_mut();
        let id = state.next_ctx;
        state.next_ctx += 1;
        id
    }
}
