//! A test-only filter for the harness's gotcha tests. It runs, in each callback, the operations
//! it is told to run and logs `probe <phase> <op> -> <result>` at INFO for each.
//!
//! Operations come from the plugin configuration (`{"<phase>": ["op", …], "reject": bool}`) and,
//! per request, from request headers `x-probe-<phase>: op;op` (read in `on_http_request_headers`,
//! used in the later phases of that stream too). `"quiet": true` drops the report lines (the
//! Envoy hostcall benchmark uses it to time the operations alone). Phases: `vm_start`, `configure`, `tick`,
//! `queue_ready`, `request_headers`, `request_body`, `response_headers`, `response_body`,
//! `http_call_response`, `log`, `done`, `delete`.
//!
//! The operations use the SDK's hostcall functions, so a status the SDK does not expect panics
//! and traps the VM, exactly as it would in Envoy: that is part of what the tests check.

mod ops;

use std::collections::HashMap;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use ops::{run, Flow};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot::default()) });
}}

/// Phase name → operations.
type Plan = HashMap<String, Vec<String>>;

#[derive(Default)]
struct ProbeRoot {
    plan: Plan,
}

fn parse_plan(config: &[u8]) -> Option<(Plan, bool)> {
    let value: serde_json::Value = serde_json::from_slice(config).ok()?;
    let object = value.as_object()?;
    let mut plan = Plan::new();
    let mut reject = false;
    for (key, ops) in object {
        if key == "reject" {
            reject = ops.as_bool().unwrap_or(false);
            continue;
        }
        if key == "quiet" {
            ops::set_quiet(ops.as_bool().unwrap_or(false));
            continue;
        }
        let list = ops
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        plan.insert(key.clone(), list);
    }
    Some((plan, reject))
}

impl Context for ProbeRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        proxy_wasm::hostcalls::log(
            LogLevel::Info,
            &format!("probe root http_call_response token={token} headers={headers} body={body}"),
        )
        .ok();
    }
}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let config = proxy_wasm::hostcalls::get_buffer(
            proxy_wasm::types::BufferType::VmConfiguration,
            0,
            usize::MAX,
        );
        if let Ok(Some(bytes)) = config {
            if let Some((plan, _)) = parse_plan(&bytes) {
                run(
                    "vm_start",
                    plan.get("vm_start").map(Vec::as_slice).unwrap_or(&[]),
                );
            }
        }
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = proxy_wasm::hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        );
        let bytes = match config {
            Ok(Some(bytes)) => bytes,
            _ => b"{}".to_vec(),
        };
        let Some((plan, reject)) = parse_plan(&bytes) else {
            return false;
        };
        self.plan = plan;
        run("configure", self.ops("configure"));
        !reject
    }

    fn on_tick(&mut self) {
        run("tick", self.ops("tick"));
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        proxy_wasm::hostcalls::log(LogLevel::Info, &format!("probe queue_ready id={queue_id}"))
            .ok();
        run("queue_ready", self.ops("queue_ready"));
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            plan: self.plan.clone(),
            paused_for_call: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl ProbeRoot {
    fn ops(&self, phase: &str) -> &[String] {
        self.plan.get(phase).map(Vec::as_slice).unwrap_or(&[])
    }
}

struct Probe {
    plan: Plan,
    paused_for_call: bool,
}

impl Probe {
    fn phase(&mut self, phase: &str) -> Action {
        let ops = self.plan.get(phase).cloned().unwrap_or_default();
        match run(phase, &ops) {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
            Flow::PauseForCall => {
                self.paused_for_call = true;
                Action::Pause
            }
        }
    }
}

impl Context for Probe {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        proxy_wasm::hostcalls::log(
            LogLevel::Info,
            &format!("probe stream http_call_response token={token} headers={headers} body={body}"),
        )
        .ok();
        self.phase("http_call_response");
        if self.paused_for_call {
            self.paused_for_call = false;
            proxy_wasm::hostcalls::resume_http_request().ok();
        }
    }

    fn on_done(&mut self) -> bool {
        self.phase("done");
        true
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Per-request plan: x-probe-<phase> headers. Read all pairs (tolerated in every phase).
        if let Ok(pairs) =
            proxy_wasm::hostcalls::get_map_bytes(proxy_wasm::types::MapType::HttpRequestHeaders)
        {
            for (name, value) in pairs {
                if let Some(phase) = name.strip_prefix("x-probe-") {
                    let ops = String::from_utf8_lossy(&value)
                        .split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    self.plan.insert(phase.replace('-', "_"), ops);
                }
            }
        }
        self.phase("request_headers")
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.phase("request_body")
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.phase("response_headers")
    }

    fn on_http_response_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.phase("response_body")
    }

    fn on_log(&mut self) {
        self.phase("log");
    }
}
