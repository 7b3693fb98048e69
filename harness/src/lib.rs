//! A proxy-wasm host on wasmtime that runs compiled filters outside the mesh and behaves like
//! Envoy 1.40: its statuses, phases, lifecycle order, deferred actions, failure policies,
//! per-worker VMs sharing only shared data, queues and metrics. See `harness/README.md`.
//!
//! ```no_run
//! use meshguard_harness::{Host, Request};
//! let host = Host::builder("target/wasm-artifacts/wasm32-wasip1/release/meshguard_passthrough.wasm")
//!     .plugin_config_json(serde_json::json!({}))
//!     .workers(2)
//!     .build()?;
//! let outcome = host.send(Request::get("/orders").header("x-user", "alice"))?;
//! assert_eq!(outcome.status, 200);
//! # Ok::<(), meshguard_harness::HarnessError>(())
//! ```

mod abi;
mod admin;
mod clock;
mod codec;
mod driver;
mod engine;
mod error;
mod exchange;
mod host;
mod observe;
pub mod properties;
pub mod runner;
pub mod scenario;
mod shared;
mod stream;
mod stream_state;
mod timeline;
mod types;
mod upstream;
mod vm;

pub use admin::SharedDataSize;
pub use clock::Clock;
pub use codec::HeaderCodec;
pub use error::{HarnessError, Result};
pub use exchange::{Outcome, Request};
pub use host::{FilterSpec, Host, HostBuilder};
pub use shared::{Metric, MetricKind};
pub use stream::{HttpStream, Step};
pub use types::{
    Action, FailurePolicy, Flag, HeaderMap, HostEvent, Lifecycle, LocalReply, LogEntry, LogLevel,
    Status, TrapInfo,
};
pub use upstream::{CallReply, HttpCall, HttpResponse, Upstream};
