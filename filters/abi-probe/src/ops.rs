//! The operations the probe knows. Each logs `probe <phase> <op> -> <result>`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls as hc;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType};

/// What the callback returns after its operations ran.
pub enum Flow {
    /// Return `Action::Continue`.
    Continue,
    /// Return `Action::Pause`.
    Pause,
    /// Return `Action::Pause` and resume from `on_http_call_response`.
    PauseForCall,
}

thread_local! {
    /// Set by the plugin configuration's `"quiet": true`: operations run without their report line,
    /// so that the Envoy hostcall benchmark (envoy-config/bench/hostcalls.yaml) measures only them.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Metric ids of `inc:<name>`, defined on first use (as the filters define theirs at configure).
    static METRICS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

/// Turns the per-operation report lines off (`true`) or on.
pub fn set_quiet(quiet: bool) {
    QUIET.with(|q| q.set(quiet));
}

fn report(phase: &str, op: &str, result: &str) {
    if QUIET.with(Cell::get) {
        return;
    }
    hc::log(LogLevel::Info, &format!("probe {phase} {op} -> {result}")).ok();
}

fn level_of(name: &str) -> LogLevel {
    match name {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => LogLevel::Info,
    }
}

/// Increments the counter `name` by one, defining it on first use.
fn inc(name: &str) -> String {
    let id = METRICS.with(|m| {
        if let Some(id) = m.borrow().get(name) {
            return Ok(*id);
        }
        let id = hc::define_metric(MetricType::Counter, name)?;
        m.borrow_mut().insert(name.to_owned(), id);
        Ok(id)
    });
    format!("{:?}", id.and_then(|id| hc::increment_metric(id, 1)))
}

fn split(arg: &str) -> (&str, &str) {
    arg.split_once('=').unwrap_or((arg, ""))
}

fn map_of(which: &str) -> MapType {
    match which {
        "response" => MapType::HttpResponseHeaders,
        "request_trailers" => MapType::HttpRequestTrailers,
        "call_response" => MapType::HttpCallResponseHeaders,
        _ => MapType::HttpRequestHeaders,
    }
}

/// Runs `ops` in order; the flow is decided by `pause`, `local_reply…` and `http_call…`.
pub fn run(phase: &str, ops: &[String]) -> Flow {
    let mut flow = Flow::Continue;
    for op in ops {
        let (name, arg) = op.split_once(':').unwrap_or((op.as_str(), ""));
        let result = match name {
            // get_header:<request|response|call_response>=<name>
            "get_header" => {
                let (map, key) = split(arg);
                format!(
                    "{:?}",
                    hc::get_map_value_bytes(map_of(map), key).map(|v| v.map(lossy))
                )
            }
            // get_headers:<request|response|call_response>
            "get_headers" => format!(
                "{:?}",
                hc::get_map_bytes(map_of(arg)).map(|pairs| pairs
                    .into_iter()
                    .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(&v)))
                    .collect::<Vec<_>>())
            ),
            // set_header:<map>=<name>=<value>
            "set_header" => {
                let (map, rest) = split(arg);
                let (key, value) = split(rest);
                format!(
                    "{:?}",
                    hc::set_map_value_bytes(map_of(map), key, Some(value.as_bytes()))
                )
            }
            "add_header" => {
                let (map, rest) = split(arg);
                let (key, value) = split(rest);
                format!(
                    "{:?}",
                    hc::add_map_value_bytes(map_of(map), key, value.as_bytes())
                )
            }
            "remove_header" => {
                let (map, key) = split(arg);
                format!("{:?}", hc::remove_map_value(map_of(map), key))
            }
            "pause" => {
                flow = Flow::Pause;
                "pause".to_owned()
            }
            // local_reply:<status> (then Pause) / local_reply_continue:<status> (then Continue)
            "local_reply" | "local_reply_continue" => {
                let status = arg.parse().unwrap_or(403);
                let r = hc::send_http_response(status, vec![("x-probe", "local")], Some(b"probe"));
                if name == "local_reply" {
                    flow = Flow::Pause;
                }
                format!("{r:?}")
            }
            "resume" => format!("{:?}", hc::resume_http_request()),
            "resume_response" => format!("{:?}", hc::resume_http_response()),
            "resume_upstream" => format!("{:?}", hc::resume_upstream()),
            // http_call:<cluster>[=<timeout ms>] (Pause until the response, then resume)
            // http_call_bare:<cluster> (no :path — Envoy refuses it)
            "http_call" | "http_call_bare" => {
                let (cluster, timeout) = split(arg);
                let timeout = Duration::from_millis(timeout.parse().unwrap_or(1000));
                let headers = if name == "http_call" {
                    vec![
                        (":method", "GET"),
                        (":path", "/probe"),
                        (":authority", "probe"),
                    ]
                } else {
                    vec![(":method", "GET")]
                };
                let r = hc::dispatch_http_call(cluster, headers, None, vec![], timeout);
                if r.is_ok() {
                    flow = Flow::PauseForCall;
                }
                format!("{r:?}")
            }
            "call_status" => format!("{:?}", hc::get_grpc_status()),
            "call_body" => format!(
                "{:?}",
                hc::get_buffer(BufferType::HttpCallResponseBody, 0, usize::MAX)
                    .map(|b| b.map(lossy))
            ),
            "set_state" => {
                let (key, value) = split(arg);
                format!("{:?}", hc::set_property(vec![key], Some(value.as_bytes())))
            }
            // get_property:<a.b.c>
            "get_property" => {
                let path: Vec<&str> = arg.split('.').collect();
                format!("{:?}", hc::get_property(path).map(|v| v.map(describe)))
            }
            "get_state" => format!("{:?}", hc::get_property(vec![arg]).map(|v| v.map(lossy))),
            "plugin_config" => format!(
                "{:?}",
                hc::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
                    .map(|b| b.map(lossy))
            ),
            "request_body" => format!(
                "{:?}",
                hc::get_buffer(BufferType::HttpRequestBody, 0, usize::MAX).map(|b| b.map(lossy))
            ),
            "set_request_body" => format!(
                "{:?}",
                hc::set_buffer(BufferType::HttpRequestBody, 0, usize::MAX, arg.as_bytes())
            ),
            // counter:<name>=<delta>
            "counter" => {
                let (metric, delta) = split(arg);
                let delta = delta.parse().unwrap_or(1);
                let r = hc::define_metric(MetricType::Counter, metric)
                    .and_then(|id| hc::increment_metric(id, delta));
                format!("{r:?}")
            }
            "record" => {
                let (metric, value) = split(arg);
                let r = hc::define_metric(MetricType::Counter, metric)
                    .and_then(|id| hc::record_metric(id, value.parse().unwrap_or(0)));
                format!("{r:?}")
            }
            "gauge" => {
                let (metric, delta) = split(arg);
                let r = hc::define_metric(MetricType::Gauge, metric)
                    .and_then(|id| hc::increment_metric(id, delta.parse().unwrap_or(0)));
                format!("{r:?}")
            }
            // shared_set:<key>=<value>[=<cas>]
            "shared_set" => {
                let (key, rest) = split(arg);
                let (value, cas) = split(rest);
                let cas = cas.parse().ok().filter(|c| *c != 0);
                format!(
                    "{:?}",
                    hc::set_shared_data(key, Some(value.as_bytes()), cas)
                )
            }
            "shared_get" => format!(
                "{:?}",
                hc::get_shared_data(arg).map(|(v, cas)| (v.map(lossy), cas))
            ),
            "tick" => format!(
                "{:?}",
                hc::set_tick_period(Duration::from_millis(arg.parse().unwrap_or(1000)))
            ),
            "register_queue" => format!("{:?}", hc::register_shared_queue(arg)),
            "enqueue" => {
                let (queue, value) = split(arg);
                let r = hc::resolve_shared_queue("", queue).and_then(|id| match id {
                    Some(id) => hc::enqueue_shared_queue(id, Some(value.as_bytes())),
                    None => Ok(()),
                });
                format!("{r:?}")
            }
            "dequeue" => {
                let r = hc::resolve_shared_queue("", arg).and_then(|id| match id {
                    Some(id) => hc::dequeue_shared_queue(id).map(|v| v.map(lossy)),
                    None => Ok(None),
                });
                format!("{r:?}")
            }
            "time" => {
                let host = hc::get_current_time()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos());
                let wasi = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_nanos());
                let mono = std::time::Instant::now();
                format!("host={host:?} wasi={wasi:?} mono={mono:?}")
            }
            "stderr" => {
                eprintln!("probe says {arg}");
                "written".to_owned()
            }
            "stdout" => {
                println!("probe says {arg}");
                "written".to_owned()
            }
            "trap" => std::process::abort(),
            "spin" => {
                let mut x: u64 = 1;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(3).wrapping_add(1));
                }
            }
            // alloc:<MiB>
            "alloc" => {
                let mib: usize = arg.parse().unwrap_or(1);
                let v = vec![1u8; mib * 1024 * 1024];
                format!("{}", std::hint::black_box(v).len())
            }
            "log_level" => format!("{:?}", hc::get_log_level()),
            // log:<level>: one fixed line at that level (the host drops it below its own level)
            "log" => format!("{:?}", hc::log(level_of(arg), "probe log line")),
            // inc:<name>: counter += 1, the id defined once per VM
            "inc" => inc(arg),
            other => format!("unknown op {other}"),
        };
        report(phase, op, &result);
    }
    flow
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Strings as text; 8-byte values also as little-endian integers.
fn describe(bytes: Vec<u8>) -> String {
    match <[u8; 8]>::try_from(bytes.as_slice()) {
        Ok(int) => format!("int:{}", i64::from_le_bytes(int)),
        Err(_) => lossy(bytes),
    }
}
