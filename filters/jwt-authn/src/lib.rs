//! meshguard jwt-authn: JWT validation at the sidecar (Envoy `jwt_authn` semantics, plus remote
//! JWKS done properly: one fetch per process, refresh before expiry, refetch on unknown `kid`,
//! stale-if-error, paused requests on a cold start). Thin glue over
//! [`meshguard_core::jwt_authn`]; behaviour and config are documented in this crate's README.
//!
//! Contexts: the root context parses the config, defines metrics, ticks (key refresh, paused
//! requests' deadlines) and receives the responses of fetches it dispatched. HTTP contexts handle
//! requests; a request that needs keys not loaded yet dispatches the fetch itself (its response
//! comes back to that context) and pauses. Paused requests are taken up again from whichever
//! callback learns the keys changed, via `proxy_set_effective_context` + `proxy_continue_stream`.

mod fetch;
mod keystore;
mod metrics;
mod replay;
mod request;
mod worker;

use std::cell::RefCell;
use std::rc::Rc;

use meshguard_core::config::FilterConfig;
use meshguard_core::jwt_authn::jwks::FetchReason;
use meshguard_core::jwt_authn::JwtAuthnConfig;
use meshguard_host as host;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::metrics::Metrics;
use crate::request::Step;
use crate::worker::{now_ms, Worker};

#[cfg(feature = "entry")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(root);
}}

/// A new root context of this filter (the module entry point registers it; a fused module
/// runs it as one of its stages).
pub fn root(context_id: u32) -> Box<dyn RootContext> {
    Box::new(JwtAuthnRoot {
        id: context_id,
        worker: None,
    })
}

/// Tick period when nothing waits (key refresh checks).
const IDLE_TICK_MS: u64 = 1_000;

struct JwtAuthnRoot {
    id: u32,
    worker: Option<Rc<RefCell<Worker>>>,
}

impl JwtAuthnRoot {
    fn configure(&mut self) -> Result<(), String> {
        let json = host::plugin_configuration()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let cfg = JwtAuthnConfig::parse(&json).map_err(|e| e.to_string())?;
        let names: Vec<&str> = cfg.providers.iter().map(|p| p.name.as_str()).collect();
        let remote: Vec<bool> = cfg
            .providers
            .iter()
            .map(|p| matches!(p.keys, meshguard_core::jwt_authn::KeySource::Remote(_)))
            .collect();
        let metrics = Metrics::define(&names, &remote).map_err(|e| e.to_string())?;
        let has_remote = remote.contains(&true);
        let mut worker = Worker::new(cfg, metrics, self.id);
        worker.replay = replay::Replay::configure(worker.cfg())?;
        if has_remote {
            worker.store.create_records().map_err(|e| e.to_string())?;
            worker.want_tick(IDLE_TICK_MS);
        }
        self.worker = Some(Rc::new(RefCell::new(worker)));
        Ok(())
    }
}

impl Context for JwtAuthnRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body: usize,
        _trailers: usize,
    ) {
        if let Some(w) = &self.worker {
            call_response(w, token, body, self.id);
        }
    }
}

impl RootContext for JwtAuthnRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        match self.configure() {
            Ok(()) => true,
            Err(e) => {
                host::log(LogLevel::Error, &format!("jwt_authn: config refused: {e}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(w) = &self.worker else {
            return;
        };
        let Ok(now) = now_ms() else {
            return;
        };
        let mut w = w.borrow_mut();
        for p in w.store.remote_providers() {
            if let Err(e) = w.store.sync(p) {
                host::log(LogLevel::Warn, &format!("jwt_authn: {e}"));
                continue;
            }
            w.start_fetch(p, now, FetchReason::Tick);
        }
        let root = w.root_id;
        w.resume_due(now, root);
        let busy = !w.waiting.is_empty() || !w.inflight.is_empty();
        w.want_tick(if busy { 100 } else { IDLE_TICK_MS });
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = self.worker.clone()?;
        Some(Box::new(JwtAuthnStream {
            id: context_id,
            worker,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// A fetch response reached `current` (the root, or the stream that dispatched it).
fn call_response(w: &Rc<RefCell<Worker>>, token: u32, body: usize, current: u32) {
    let Ok(now) = now_ms() else {
        return;
    };
    let mut w = w.borrow_mut();
    if w.on_call_response(token, body, now) {
        w.resume_due(now, current);
    }
}

struct JwtAuthnStream {
    id: u32,
    worker: Rc<RefCell<Worker>>,
}

impl Context for JwtAuthnStream {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body: usize,
        _trailers: usize,
    ) {
        call_response(&self.worker, token, body, self.id);
    }

    fn on_done(&mut self) -> bool {
        self.worker.borrow_mut().forget(self.id);
        true
    }
}

impl HttpContext for JwtAuthnStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let mut w = self.worker.borrow_mut();
        let now = match now_ms() {
            Ok(now) => now,
            Err(e) => {
                // Without a clock no expiry can be checked: refuse.
                host::log(LogLevel::Error, &format!("jwt_authn: {e}"));
                w.fail_closed();
                return Action::Pause;
            }
        };
        match w.on_request(self.id, now) {
            Step::Continue => Action::Continue,
            Step::Pause => Action::Pause,
        }
    }
}
