//! meshguard-fused: jwt-authn → authz → ratelimit → audit as stages of one proxy-wasm filter.
//!
//! Each stage is the filter crate's own root and stream contexts (built without their module
//! entry point), so behaviour, hand-off (filter state through the host), replies, metrics and
//! logs are the chain's. What changes is the number of VM crossings: Envoy calls one filter per
//! callback instead of four. The config holds the four filters' configs side by side, each
//! optional; it is parsed and checked by [`meshguard_core::fused::FusedConfig`] (the same parser
//! `meshguard validate` runs).
//!
//! Ordering is the chain's: request headers go through the stages in order and stop at the first
//! that pauses (a local reply, or jwt-authn waiting for keys); response headers go through every
//! stage in reverse order (Envoy sends a response, local replies included, through every
//! filter's encoder); `on_log` and `on_done` reach every stage. A request jwt-authn paused and
//! later resumes (keys arrived) first goes through the later stages; only if they all let it
//! through is the stream continued (see `meshguard_host::embed`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use meshguard_core::config::FilterConfig;
use meshguard_core::fused::{FusedConfig, Stage};
use meshguard_host::{self as host, embed};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> {
        Box::new(FusedRoot { id, roots: Vec::new(), streams: Rc::default() })
    });
}}

/// The streams of this VM by context id, to run the later stages of a request a stage resumed.
type Streams = Rc<RefCell<HashMap<u32, Rc<RefCell<Stages>>>>>;

fn stage_root(stage: Stage, context_id: u32) -> Box<dyn RootContext> {
    match stage {
        Stage::JwtAuthn => meshguard_jwt_authn::root(context_id),
        Stage::Authz => meshguard_authz::root(context_id),
        Stage::RateLimit => meshguard_ratelimit::root(context_id),
        Stage::Audit => meshguard_audit::root(context_id),
    }
}

struct FusedRoot {
    id: u32,
    roots: Vec<(Stage, Box<dyn RootContext>)>,
    streams: Streams,
}

impl FusedRoot {
    fn configure(&mut self) -> Result<(), String> {
        let json = host::plugin_configuration()
            .map_err(|e| format!("cannot read the config: {e}"))?
            .unwrap_or_default();
        let config = FusedConfig::parse(&json).map_err(|e| format!("invalid config: {e}"))?;
        let mut roots = Vec::with_capacity(config.sections.len());
        for (stage, bytes) in config.sections {
            let mut root = stage_root(stage, self.id);
            let size = bytes.len();
            if !embed::with_plugin_configuration(&bytes, || root.on_configure(size)) {
                return Err(format!("stage {} refused its config", stage.key()));
            }
            roots.push((stage, root));
        }
        let owned: Vec<&str> = roots
            .iter()
            .map(|(stage, _)| stage.filter_state_prefix())
            .collect();
        self.roots = roots;
        embed::own_filter_state(&owned);
        embed::defer_resumes();
        Ok(())
    }
}

impl Context for FusedRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        embed::note_effective(self.id);
        for (_, root) in &mut self.roots {
            root.on_http_call_response(token, headers, body, trailers);
        }
        continue_resumed(&self.streams, self.id);
    }
}

impl RootContext for FusedRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        match self.configure() {
            Ok(()) => true,
            Err(e) => {
                host::log(LogLevel::Error, &format!("fused: {e}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        embed::note_effective(self.id);
        for (_, root) in &mut self.roots {
            root.on_tick();
        }
        continue_resumed(&self.streams, self.id);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        embed::note_effective(self.id);
        for (_, root) in &mut self.roots {
            root.on_queue_ready(queue_id);
        }
        continue_resumed(&self.streams, self.id);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let mut list = Vec::with_capacity(self.roots.len());
        for (stage, root) in &self.roots {
            // A configured stage always has a stream; should one not, refuse the request rather
            // than skip the stage (returning None here would panic in the SDK).
            let Some(stream) = root.create_http_context(context_id) else {
                return Some(Box::new(Refuse));
            };
            list.push((*stage, stream));
        }
        let stages = Rc::new(RefCell::new(Stages {
            list,
            paused_at: None,
        }));
        if let Ok(mut streams) = self.streams.try_borrow_mut() {
            streams.insert(context_id, Rc::clone(&stages));
        }
        Some(Box::new(FusedStream {
            id: context_id,
            stages,
            streams: Rc::clone(&self.streams),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The stage streams of one request.
struct Stages {
    list: Vec<(Stage, Box<dyn HttpContext>)>,
    /// The stage that paused the request headers, while they are paused.
    paused_at: Option<usize>,
}

impl Stages {
    /// Request headers through stages `from..`; stops at the first that pauses.
    fn request_headers(&mut self, from: usize, num_headers: usize, end_of_stream: bool) -> Action {
        for (i, (_, stream)) in self.list.iter_mut().enumerate().skip(from) {
            if stream.on_http_request_headers(num_headers, end_of_stream) == Action::Pause {
                self.paused_at = Some(i);
                return Action::Pause;
            }
        }
        self.paused_at = None;
        Action::Continue
    }
}

/// Runs the later stages of every request a stage resumed during this callback, continues those
/// they all let through, and makes `current` the effective context again.
fn continue_resumed(streams: &Streams, current: u32) {
    let mut switched = false;
    loop {
        let resumed = embed::take_deferred_resumes();
        if resumed.is_empty() {
            break;
        }
        switched = true;
        for context_id in resumed {
            let stages = streams
                .try_borrow()
                .ok()
                .and_then(|s| s.get(&context_id).cloned());
            let Some(stages) = stages else { continue };
            if host::set_effective_context(context_id).is_err() {
                continue;
            }
            let Ok(mut stages) = stages.try_borrow_mut() else {
                continue;
            };
            let Some(paused) = stages.paused_at else {
                continue;
            };
            if stages.request_headers(paused + 1, 0, false) == Action::Continue {
                if let Err(e) = proxy_wasm::hostcalls::resume_http_request() {
                    host::log(LogLevel::Warn, &format!("fused: cannot resume: {e:?}"));
                }
            }
        }
    }
    // Only when a resume (or a stage) switched the effective context away: otherwise no hostcall.
    if switched || embed::effective() != Some(current) {
        let _ = host::set_effective_context(current);
    }
}

struct FusedStream {
    id: u32,
    stages: Rc<RefCell<Stages>>,
    streams: Streams,
}

impl FusedStream {
    /// Calls `f` on the stage streams, then takes up requests a stage resumed.
    fn with_stages<T>(&mut self, f: impl FnOnce(&mut Stages) -> T, default: T) -> T {
        embed::note_effective(self.id);
        let out = match self.stages.try_borrow_mut() {
            Ok(mut stages) => f(&mut stages),
            Err(_) => default,
        };
        continue_resumed(&self.streams, self.id);
        out
    }
}

impl Drop for FusedStream {
    fn drop(&mut self) {
        embed::forget_stream(self.id);
        if let Ok(mut streams) = self.streams.try_borrow_mut() {
            streams.remove(&self.id);
        }
    }
}

impl Context for FusedStream {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        self.with_stages(
            |s| {
                for (_, stream) in &mut s.list {
                    stream.on_http_call_response(token, headers, body, trailers);
                }
            },
            (),
        );
    }

    fn on_done(&mut self) -> bool {
        self.with_stages(
            |s| {
                s.list
                    .iter_mut()
                    .fold(true, |done, (_, stream)| stream.on_done() && done)
            },
            true,
        )
    }
}

impl HttpContext for FusedStream {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        self.with_stages(
            |s| s.request_headers(0, num_headers, end_of_stream),
            Action::Pause,
        )
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        self.with_stages(
            |s| {
                for (_, stream) in s.list.iter_mut().rev() {
                    if stream.on_http_response_headers(num_headers, end_of_stream) == Action::Pause
                    {
                        return Action::Pause;
                    }
                }
                Action::Continue
            },
            Action::Continue,
        )
    }

    fn on_log(&mut self) {
        self.with_stages(
            |s| {
                for (_, stream) in &mut s.list {
                    stream.on_log();
                }
            },
            (),
        );
    }
}

/// A stream of a stage that could not create one: refused with 503.
struct Refuse;

impl Context for Refuse {}

impl HttpContext for Refuse {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _ = host::send_local_response(503, &[], Some(b"fused filter not configured\n"));
        Action::Pause
    }
}
