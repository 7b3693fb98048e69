//! The host: a filter chain, its worker VMs, and what they share.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::InstancePre;

use crate::clock::Clock;
use crate::codec::HeaderCodec;
use crate::driver;
use crate::engine;
use crate::error::{HarnessError, Result};
use crate::shared::{lock, Shared};
use crate::stream::HttpStream;
use crate::types::{FailurePolicy, Lifecycle, LogLevel};
use crate::upstream::{CallReply, HttpCall, Upstream};
use crate::vm::{Call, FilterInfo, Phase, Vm, VmState};

/// One filter of the chain: its `.wasm` and the settings Envoy's Wasm filter config holds.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// Path of the `.wasm` file.
    pub wasm: PathBuf,
    /// Name (Envoy `PluginConfig.name`, property `plugin_name`); default: the file stem.
    pub name: String,
    /// Root id (`PluginConfig.root_id`); default empty.
    pub root_id: String,
    /// VM id (`VmConfig.vm_id`, the shared-data namespace); default empty, as in Envoy.
    pub vm_id: String,
    /// Plugin configuration bytes (`PluginConfig.configuration`).
    pub plugin_config: Vec<u8>,
    /// VM configuration bytes (`VmConfig.configuration`).
    pub vm_config: Vec<u8>,
    /// What happens after a trap.
    pub failure_policy: FailurePolicy,
    /// Capability restriction: when set, only these `proxy_*` hostcalls work; the others answer
    /// INTERNAL_FAILURE as Envoy's restricted stubs do.
    pub allowed_capabilities: Option<HashSet<String>>,
    /// Environment of the filter's VMs, as WASI `environ` shows it (Envoy
    /// `VmConfig.environment_variables`, Istio WasmPlugin `vmConfig.env`); default empty.
    pub env: Vec<(String, String)>,
}

impl FilterSpec {
    /// A filter from a `.wasm` path with defaults.
    pub fn new(wasm: impl Into<PathBuf>) -> FilterSpec {
        let wasm = wasm.into();
        let name = wasm
            .file_stem()
            .map(|s| {
                s.to_string_lossy()
                    .trim_start_matches("meshguard_")
                    .to_owned()
            })
            .unwrap_or_default();
        FilterSpec {
            wasm,
            name,
            root_id: String::new(),
            vm_id: String::new(),
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            failure_policy: FailurePolicy::default(),
            allowed_capabilities: None,
            env: Vec::new(),
        }
    }
}

/// Builds a [`Host`]. Filter settings (`plugin_config*`, `root_id`, `vm_id`, `name`,
/// `failure_policy`, …) apply to the filter added last.
#[derive(Debug, Clone)]
pub struct HostBuilder {
    filters: Vec<FilterSpec>,
    workers: usize,
    clock: Option<Clock>,
    upstreams: HashMap<String, Upstream>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
    lifecycle: Lifecycle,
    record_hostcalls: bool,
    properties: Vec<(String, Vec<u8>)>,
    log_level: LogLevel,
    header_codec: HeaderCodec,
}

impl HostBuilder {
    /// A builder with no filter yet.
    pub fn new() -> HostBuilder {
        HostBuilder {
            filters: Vec::new(),
            workers: 1,
            clock: None,
            upstreams: HashMap::new(),
            fuel: Some(10_000_000_000),
            memory_limit: Some(512 << 20),
            lifecycle: Lifecycle::Envoy,
            record_hostcalls: true,
            properties: crate::properties::defaults(),
            log_level: LogLevel::Trace,
            header_codec: HeaderCodec::default(),
        }
    }

    /// How repeated header lines reach the filters: Envoy over HTTP/1.1 (default), Envoy over
    /// HTTP/2 (`cookie` crumbs joined too), or raw duplicates (a host that does not merge).
    pub fn header_codec(mut self, codec: HeaderCodec) -> HostBuilder {
        self.header_codec = codec;
        self
    }

    /// Appends a filter to the chain (decoded in this order, encoded in reverse).
    pub fn filter(mut self, spec: FilterSpec) -> HostBuilder {
        self.filters.push(spec);
        self
    }

    /// Appends a filter by path, with defaults.
    pub fn then(self, wasm: impl Into<PathBuf>) -> HostBuilder {
        self.filter(FilterSpec::new(wasm))
    }

    fn last(&mut self) -> Option<&mut FilterSpec> {
        self.filters.last_mut()
    }

    /// Plugin configuration bytes of the last filter.
    pub fn plugin_config(mut self, bytes: impl Into<Vec<u8>>) -> HostBuilder {
        if let Some(f) = self.last() {
            f.plugin_config = bytes.into();
        }
        self
    }

    /// Plugin configuration of the last filter, as JSON.
    pub fn plugin_config_json(self, value: serde_json::Value) -> HostBuilder {
        self.plugin_config(value.to_string())
    }

    /// VM configuration bytes of the last filter.
    pub fn vm_config(mut self, bytes: impl Into<Vec<u8>>) -> HostBuilder {
        if let Some(f) = self.last() {
            f.vm_config = bytes.into();
        }
        self
    }

    /// Name (`plugin_name`) of the last filter.
    pub fn name(mut self, name: &str) -> HostBuilder {
        if let Some(f) = self.last() {
            f.name = name.to_owned();
        }
        self
    }

    /// Root id of the last filter.
    pub fn root_id(mut self, id: &str) -> HostBuilder {
        if let Some(f) = self.last() {
            f.root_id = id.to_owned();
        }
        self
    }

    /// VM id of the last filter (shared data and queues are namespaced by it).
    pub fn vm_id(mut self, id: &str) -> HostBuilder {
        if let Some(f) = self.last() {
            f.vm_id = id.to_owned();
        }
        self
    }

    /// Failure policy of the last filter.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> HostBuilder {
        if let Some(f) = self.last() {
            f.failure_policy = policy;
        }
        self
    }

    /// Restricts the last filter to these `proxy_*` hostcalls (others: INTERNAL_FAILURE).
    pub fn allowed_capabilities(mut self, names: &[&str]) -> HostBuilder {
        if let Some(f) = self.last() {
            f.allowed_capabilities = Some(names.iter().map(|s| (*s).to_owned()).collect());
        }
        self
    }

    /// Sets environment variable `name` of the last filter's VMs (Envoy
    /// `vm_config.environment_variables.key_values`); read by the guest through WASI `environ`.
    pub fn env(mut self, name: &str, value: &str) -> HostBuilder {
        if let Some(f) = self.last() {
            f.env.retain(|(n, _)| n != name);
            f.env.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Number of workers (one VM per worker per filter). Default 1.
    pub fn workers(mut self, n: usize) -> HostBuilder {
        self.workers = n.max(1);
        self
    }

    /// The fake clock (default: [`Clock::default`]).
    pub fn clock(mut self, clock: Clock) -> HostBuilder {
        self.clock = Some(clock);
        self
    }

    /// A known cluster for `proxy_http_call` and how it answers. Unknown clusters get
    /// BAD_ARGUMENT, as in Envoy.
    pub fn upstream(mut self, cluster: &str, behaviour: Upstream) -> HostBuilder {
        self.upstreams.insert(cluster.to_owned(), behaviour);
        self
    }

    /// Fuel per guest callback (`None`: no metering). Default 10^10 instructions-ish units; a
    /// callback that runs out traps with `all fuel consumed`.
    pub fn fuel_per_callback(mut self, fuel: Option<u64>) -> HostBuilder {
        self.fuel = fuel;
        self
    }

    /// Linear-memory limit per VM in bytes (`None`: unlimited). Default 512 MiB.
    pub fn memory_limit(mut self, bytes: Option<usize>) -> HostBuilder {
        self.memory_limit = bytes;
        self
    }

    /// End-of-stream callback order (default [`Lifecycle::Envoy`]).
    pub fn lifecycle(mut self, lifecycle: Lifecycle) -> HostBuilder {
        self.lifecycle = lifecycle;
        self
    }

    /// Whether every hostcall and callback is recorded in [`Host::events`] (default true; the
    /// benchmark turns it off).
    pub fn record_hostcalls(mut self, on: bool) -> HostBuilder {
        self.record_hostcalls = on;
        self
    }

    /// A property every stream starts with (`path` segments, serialized value). Streams can
    /// override it. See [`crate::properties`] for encoders.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> HostBuilder {
        let key = path.join("\0");
        self.properties.retain(|(k, _)| *k != key);
        self.properties.push((key, value.into()));
        self
    }

    /// The plugin log level `proxy_get_log_level` reports; `proxy_log` below it is dropped
    /// (Envoy's default is info; the harness's default is trace, to capture everything).
    pub fn log_level(mut self, level: LogLevel) -> HostBuilder {
        self.log_level = level;
        self
    }

    /// Compiles and starts everything: for each filter a canary VM and one VM per worker, each
    /// running `_initialize`, `main` (if exported), root context creation, `proxy_on_vm_start`
    /// and `proxy_on_configure`, as Envoy does.
    pub fn build(self) -> Result<Host> {
        if self.filters.is_empty() {
            return Err(HarnessError::Invalid("no filter in the chain".to_owned()));
        }
        let clock = self.clock.clone().unwrap_or_default();
        let shared = Arc::new(Shared::new(
            clock,
            self.upstreams.clone(),
            self.record_hostcalls,
        ));
        let mut filters = Vec::new();
        for (index, spec) in self.filters.iter().enumerate() {
            let module = engine::module(&spec.wasm, self.fuel.is_some())?;
            let linker = engine::linker(&module)?;
            let pre = linker
                .instantiate_pre(&module)
                .map_err(|e| HarnessError::Instantiate {
                    filter: spec.name.clone(),
                    message: format!("{e:#}"),
                })?;
            let info = Arc::new(FilterInfo {
                index,
                name: spec.name.clone(),
                root_id: spec.root_id.clone(),
                vm_id: spec.vm_id.clone(),
                plugin_config: spec.plugin_config.clone(),
                vm_config: spec.vm_config.clone(),
                failure_policy: spec.failure_policy,
                allowed: spec.allowed_capabilities.clone(),
                log_level: self.log_level,
            });
            lock(&shared.env).insert(index, spec.env.clone());
            filters.push(FilterRuntime { info, pre });
        }
        let inner = HostInner {
            shared,
            filters,
            workers: Vec::new(),
            lifecycle: self.lifecycle,
            fuel: self.fuel,
            memory_limit: self.memory_limit,
            properties: Arc::new(self.properties.iter().cloned().collect()),
            header_codec: self.header_codec,
            next_stream: AtomicU64::new(1),
            round_robin: AtomicUsize::new(0),
            reloads: AtomicUsize::new(0),
        };
        for f in &inner.filters {
            // The canary: its verdict decides whether the config is accepted; then it is dropped.
            inner.start_vm(f, None)?;
        }
        let mut workers = Vec::new();
        for index in 0..self.workers {
            let mut vms = Vec::new();
            for f in &inner.filters {
                vms.push(inner.start_vm(f, Some(index))?);
            }
            workers.push(Mutex::new(Worker { index, vms }));
        }
        let inner = HostInner { workers, ..inner };
        Ok(Host {
            inner: Arc::new(inner),
        })
    }
}

impl Default for HostBuilder {
    fn default() -> HostBuilder {
        HostBuilder::new()
    }
}

pub(crate) struct FilterRuntime {
    pub info: Arc<FilterInfo>,
    pub pre: InstancePre<VmState>,
}

/// One worker thread's VMs (one per filter).
pub(crate) struct Worker {
    pub index: usize,
    pub vms: Vec<Vm>,
}

pub(crate) struct HostInner {
    pub shared: Arc<Shared>,
    pub filters: Vec<FilterRuntime>,
    pub workers: Vec<Mutex<Worker>>,
    pub lifecycle: Lifecycle,
    pub fuel: Option<u64>,
    pub memory_limit: Option<usize>,
    pub properties: Arc<HashMap<String, Vec<u8>>>,
    pub header_codec: HeaderCodec,
    pub next_stream: AtomicU64,
    pub round_robin: AtomicUsize,
    pub reloads: AtomicUsize,
}

impl HostInner {
    pub(crate) fn filter_count(&self) -> usize {
        self.filters.len()
    }

    pub(crate) fn policy(&self, f: usize) -> FailurePolicy {
        self.filters
            .get(f)
            .map(|r| r.info.failure_policy)
            .unwrap_or_default()
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    fn logs_of(&self, filter: &str, worker: Option<usize>) -> Vec<String> {
        lock(&self.shared.logs)
            .iter()
            .filter(|l| l.filter == filter && l.worker == worker)
            .map(|l| l.message.clone())
            .collect()
    }

    /// Instantiates and starts one VM of filter `f`.
    pub(crate) fn start_vm(&self, f: &FilterRuntime, worker: Option<usize>) -> Result<Vm> {
        let info = f.info.clone();
        let mut vm = Vm::instantiate(
            &f.pre,
            self.shared.clone(),
            info.clone(),
            worker,
            self.memory_limit,
            self.fuel,
        )
        .map_err(|message| HarnessError::Instantiate {
            filter: info.name.clone(),
            message,
        })?;
        let trap = |vm: &Vm| {
            let _ = vm;
            lock(&self.shared.traps)
                .last()
                .cloned()
                .map(HarnessError::StartTrap)
                .unwrap_or_else(|| HarnessError::Wasmtime("VM failed while starting".to_owned()))
        };
        vm.store.data_mut().phase = Phase::Initialize;
        let init = vm.exports.initialize.clone();
        if vm.call("_initialize", init, 0, ()) == Call::Trapped {
            return Err(trap(&vm));
        }
        let main = vm.exports.main.clone();
        if vm.call("main", main, 0, (0, 0)) == Call::Trapped {
            return Err(trap(&vm));
        }
        vm.store.data_mut().phase = Phase::Running;
        let root = vm.next_ctx();
        vm.store.data_mut().root_ctx = root;
        let r = root as i32;
        let create = vm.exports.context_create.clone();
        if vm.call("proxy_on_context_create", create, root, (r, 0)) == Call::Trapped {
            return Err(trap(&vm));
        }
        let vm_start = vm.exports.vm_start.clone();
        match vm.call(
            "proxy_on_vm_start",
            vm_start,
            root,
            (r, info.vm_config.len() as i32),
        ) {
            Call::Trapped => return Err(trap(&vm)),
            Call::Returned(0) => {
                return Err(HarnessError::VmStartRejected {
                    filter: info.name.clone(),
                    worker,
                })
            }
            _ => {}
        }
        vm.store.data_mut().phase = Phase::Configure;
        let configure = vm.exports.configure.clone();
        let verdict = vm.call(
            "proxy_on_configure",
            configure,
            root,
            (r, info.plugin_config.len() as i32),
        );
        vm.store.data_mut().phase = Phase::Running;
        match verdict {
            Call::Trapped => return Err(trap(&vm)),
            Call::Returned(0) => {
                return Err(HarnessError::ConfigureRejected {
                    filter: info.name.clone(),
                    worker,
                    logs: self.logs_of(&info.name, worker),
                })
            }
            _ => {}
        }
        let _ = vm.take_pending();
        Ok(vm)
    }

    pub(crate) fn worker(&self, i: usize) -> Result<&Mutex<Worker>> {
        self.workers.get(i).ok_or(HarnessError::NoWorker(i))
    }

    /// FAIL_RELOAD: replaces the failed VMs of a worker before a new stream.
    pub(crate) fn reload_failed(&self, w: &mut Worker) -> Result<()> {
        for (f, runtime) in self.filters.iter().enumerate() {
            let failed = w.vms.get(f).filter(|vm| vm.failed);
            if let Some(old) =
                failed.filter(|_| runtime.info.failure_policy == FailurePolicy::FailReload)
            {
                // The failed VM's own config: it may come from a `Host::reconfigure` push.
                let current = FilterRuntime {
                    info: old.store.data().info.clone(),
                    pre: runtime.pre.clone(),
                };
                let vm = self.start_vm(&current, Some(w.index))?;
                if let Some(slot) = w.vms.get_mut(f) {
                    *slot = vm;
                }
                self.reloads.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// A running filter chain with its worker VMs. Cheap to clone (a handle); `Send + Sync`.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<HostInner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field(
                "filters",
                &self
                    .inner
                    .filters
                    .iter()
                    .map(|r| r.info.name.clone())
                    .collect::<Vec<_>>(),
            )
            .field("workers", &self.inner.workers.len())
            .finish()
    }
}

impl Host {
    /// A builder whose chain starts with the filter at `wasm`.
    pub fn builder(wasm: impl Into<PathBuf>) -> HostBuilder {
        HostBuilder::new().then(wasm)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.inner.workers.len()
    }

    /// A new HTTP stream on worker `i` (its contexts are created when its request headers
    /// arrive, as Envoy does).
    pub fn stream_on(&self, worker: usize) -> Result<HttpStream> {
        HttpStream::new(self.inner.clone(), worker)
    }

    /// A new HTTP stream on the next worker, round-robin.
    pub fn stream(&self) -> Result<HttpStream> {
        let n = self.inner.workers.len().max(1);
        let w = self.inner.round_robin.fetch_add(1, Ordering::SeqCst) % n;
        self.stream_on(w)
    }

    /// The fake clock.
    pub fn clock(&self) -> Clock {
        self.inner.shared.clock.clone()
    }

    /// Delivers a pending HTTP call now (a response or a failure), whatever its scripted
    /// upstream would have done: `proxy_on_http_call_response` runs on the root context of the
    /// VM that made the call, and the actions it takes run afterwards.
    pub fn deliver_http_call(&self, token: u32, reply: impl Into<CallReply>) -> Result<()> {
        let pending = lock(&self.inner.shared.calls).remove(&token);
        let Some(p) = pending else {
            return Err(HarnessError::UnknownToken(token));
        };
        let mut worker = lock(self.inner.worker(p.call.worker)?);
        driver::deliver(&self.inner, &mut worker, p.call.filter, token, reply.into());
        driver::deliver_ready(&self.inner, &mut worker);
        Ok(())
    }

    /// HTTP calls made and not yet answered.
    pub fn pending_http_calls(&self) -> Vec<HttpCall> {
        lock(&self.inner.shared.calls)
            .values()
            .map(|p| p.call.clone())
            .collect()
    }

    /// Every HTTP call made so far.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        lock(&self.inner.shared.all_calls).clone()
    }

    /// Replaces how a cluster answers (or adds a cluster).
    pub fn set_upstream(&self, cluster: &str, behaviour: Upstream) {
        lock(&self.inner.shared.upstreams).insert(cluster.to_owned(), behaviour);
    }
}
