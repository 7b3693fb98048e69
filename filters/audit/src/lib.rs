//! The meshguard audit filter (proxy-wasm, last in the chain jwt-authn → authz → ratelimit →
//! audit).
//!
//! - `on_http_request_headers` (admitted requests only): keeps or generates `x-request-id`,
//!   keeps, derives or starts the W3C trace, removes every incoming copy of the audit headers and
//!   sets them from the earlier filters' filter-state hand-off.
//! - `on_http_response_headers`: echoes the request id (admitted requests).
//! - `on_log` (every request, also the first callback for one an earlier filter denied): counts
//!   the request and writes the audit record to the proxy log and to the filter state
//!   `wasm.meshguard.audit.record`.
//!
//! All logic is in `meshguard_core::audit`; this crate only reads from and writes to the host.

mod metrics;
mod random;
mod stream;

use std::rc::Rc;

use meshguard_core::audit::AuditConfig;
use meshguard_core::config::FilterConfig;
use meshguard_host as host;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::metrics::Metrics;
use crate::stream::AuditStream;

#[cfg(feature = "entry")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(root);
}}

/// A new root context of this filter (the module entry point registers it; a fused module
/// runs it as one of its stages).
pub fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(AuditRoot::default())
}

/// What every stream of a configured plugin shares.
struct Shared {
    config: AuditConfig,
    metrics: Metrics,
}

#[derive(Default)]
struct AuditRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for AuditRoot {}

impl RootContext for AuditRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match host::plugin_configuration() {
            Ok(Some(bytes)) if !bytes.iter().all(u8::is_ascii_whitespace) => bytes,
            Ok(_) => b"{}".to_vec(),
            Err(e) => {
                host::log(
                    LogLevel::Error,
                    &format!("audit: cannot read the config: {e}"),
                );
                return false;
            }
        };
        let config = match AuditConfig::parse(&bytes) {
            Ok(config) => config,
            Err(errors) => {
                host::log(LogLevel::Error, &format!("audit: invalid config: {errors}"));
                return false;
            }
        };
        let metrics = match Metrics::define() {
            Ok(metrics) => metrics,
            Err(e) => {
                host::log(
                    LogLevel::Error,
                    &format!("audit: cannot define metrics: {e}"),
                );
                return false;
            }
        };
        self.shared = Some(Rc::new(Shared { config, metrics }));
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a config the plugin was refused and the host creates no stream; should one come
        // anyway, it runs on the default config (returning None would panic in the SDK).
        let shared = self.shared.clone().unwrap_or_else(|| {
            Rc::new(Shared {
                config: AuditConfig::default(),
                metrics: Metrics::none(),
            })
        });
        Some(Box::new(AuditStream::new(shared, context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
