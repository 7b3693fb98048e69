//! The harness's error type.

use crate::types::TrapInfo;

/// Everything that can go wrong driving a filter in the harness (not what the filter decides:
/// a local reply or a trap under a failure policy is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The `.wasm` file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// wasmtime refused the module (invalid wasm, unsupported feature).
    #[error("cannot compile {path}: {message}")]
    Compile {
        /// The file.
        path: String,
        /// wasmtime's error.
        message: String,
    },
    /// The module does not declare a proxy-wasm ABI version export (`proxy_abi_version_0_2_1`).
    #[error("{path}: missing or unknown proxy-wasm ABI version export")]
    MissingAbiVersion {
        /// The file.
        path: String,
    },
    /// The module exports neither `proxy_on_memory_allocate` nor `malloc`.
    #[error("{path}: the module exports neither malloc nor proxy_on_memory_allocate")]
    MissingAllocator {
        /// The file.
        path: String,
    },
    /// Linking or instantiating failed.
    #[error("cannot instantiate filter {filter}: {message}")]
    Instantiate {
        /// The filter's name.
        filter: String,
        /// wasmtime's error.
        message: String,
    },
    /// `proxy_on_vm_start` returned false: Envoy would not start the VM.
    #[error("filter {filter}: proxy_on_vm_start returned false (worker {worker:?})")]
    VmStartRejected {
        /// The filter's name.
        filter: String,
        /// `None` for the canary VM, else the worker.
        worker: Option<usize>,
    },
    /// `proxy_on_configure` returned false: Envoy would reject the plugin config (xDS NACK).
    #[error(
        "filter {filter}: proxy_on_configure returned false (worker {worker:?}); logs: {logs:?}"
    )]
    ConfigureRejected {
        /// The filter's name.
        filter: String,
        /// `None` for the canary VM, else the worker.
        worker: Option<usize>,
        /// What the filter logged while configuring (its error message is usually here).
        logs: Vec<String>,
    },
    /// The VM trapped while starting (`_initialize`, root context creation, vm start, configure).
    #[error("filter {0:?} trapped while starting")]
    StartTrap(TrapInfo),
    /// No such worker.
    #[error("no worker {0}")]
    NoWorker(usize),
    /// No pending HTTP call with this token (already delivered, cancelled, or never made).
    #[error("no pending http call with token {0}")]
    UnknownToken(u32),
    /// The stream was already finished.
    #[error("stream already finished")]
    StreamFinished,
    /// A scenario or configuration given to the harness is invalid.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An internal wasmtime failure that is not a guest trap.
    #[error("wasmtime: {0}")]
    Wasmtime(String),
}

/// Result type of the harness API.
pub type Result<T> = std::result::Result<T, HarnessError>;
