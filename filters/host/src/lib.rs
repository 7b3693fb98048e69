//! The proxy-wasm hostcalls the meshguard filters use, each returning a typed [`HostError`].
//!
//! The SDK's trait helpers (`get_http_request_header`, `get_property`, …) `unwrap()` every
//! result, and in Envoy a panic kills the worker's VM (every later request on it gets a 503).
//! The filters call these wrappers instead, so a status the host returns for a call made in the
//! wrong phase becomes an error the filter handles (usually by failing the request closed).
//!
//! Header values are read as bytes: the SDK's `String` variants panic on non-UTF-8 values, which
//! any client can send.

use std::time::{Duration, SystemTime};

pub mod embed;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

/// A hostcall returned a status the filter did not ask for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The host answered `status` to `call` (e.g. `BadArgument` for a header map that is not
    /// available in the current phase).
    #[error("hostcall {call} failed: {status:?}")]
    Status {
        /// The hostcall, by its proxy-wasm name.
        call: &'static str,
        /// The status the host returned.
        status: Status,
    },
}

/// Result of a hostcall.
pub type Result<T> = std::result::Result<T, HostError>;

fn failed(call: &'static str) -> impl Fn(Status) -> HostError {
    move |status| HostError::Status { call, status }
}

/// Which HTTP header map of the current stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers {
    /// Request headers (available in `on_http_request_headers` and `on_log`).
    Request,
    /// Response headers (available in `on_http_response_headers` and `on_log`).
    Response,
}

impl Headers {
    fn map(self) -> MapType {
        match self {
            Headers::Request => MapType::HttpRequestHeaders,
            Headers::Response => MapType::HttpResponseHeaders,
        }
    }
}

/// Logs at `level`; a failing log call is ignored (there is nowhere to report it).
pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// All headers of `which`, duplicates kept, in order, values as bytes.
pub fn headers(which: Headers) -> Result<Vec<(String, Vec<u8>)>> {
    hostcalls::get_map_bytes(which.map()).map_err(failed("proxy_get_header_map_pairs"))
}

/// The first value of header `name` (Envoy returns only the first of duplicates: use
/// [`headers`] where duplicates matter).
pub fn header(which: Headers, name: &str) -> Result<Option<Vec<u8>>> {
    hostcalls::get_map_value_bytes(which.map(), name).map_err(failed("proxy_get_header_map_value"))
}

/// Replaces every value of `name` with `value`.
pub fn set_header(which: Headers, name: &str, value: &[u8]) -> Result<()> {
    hostcalls::set_map_value_bytes(which.map(), name, Some(value))
        .map_err(failed("proxy_replace_header_map_value"))
}

/// Replaces the whole header map with `pairs` (one hostcall: Envoy removes every header, then
/// adds the pairs in order). Cheaper than several single edits in Envoy, where every hostcall costs
/// a few microseconds (envoy-config/bench/hostcalls.yaml).
pub fn set_headers(which: Headers, pairs: &[(String, Vec<u8>)]) -> Result<()> {
    let pairs: Vec<(&str, &[u8])> = pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect();
    hostcalls::set_map_bytes(which.map(), pairs).map_err(failed("proxy_set_header_map_pairs"))
}

/// Adds one more value of `name`.
pub fn add_header(which: Headers, name: &str, value: &[u8]) -> Result<()> {
    hostcalls::add_map_value_bytes(which.map(), name, value)
        .map_err(failed("proxy_add_header_map_value"))
}

/// Removes every value of `name` (OK when absent).
pub fn remove_header(which: Headers, name: &str) -> Result<()> {
    hostcalls::remove_map_value(which.map(), name).map_err(failed("proxy_remove_header_map_value"))
}

/// A property (`["source", "address"]`, `["connection", "uri_san_peer_certificate"]`, or a
/// filter-state key set by an earlier filter). `None` when the host has no such property.
///
/// In a fused module, keys its own stages publish are answered from memory ([`embed`]).
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>> {
    if let Some(answer) = embed::recall(path) {
        return Ok(answer);
    }
    hostcalls::get_property(path.to_vec()).map_err(failed("proxy_get_property"))
}

/// A property decoded as UTF-8; `None` when absent or not UTF-8.
pub fn property_string(path: &[&str]) -> Result<Option<String>> {
    Ok(property(path)?.and_then(|bytes| String::from_utf8(bytes).ok()))
}

/// Publishes `value` as filter state `wasm.<key>` for later filters and access logs.
pub fn set_property(key: &str, value: &[u8]) -> Result<()> {
    hostcalls::set_property(vec![key], Some(value)).map_err(failed("proxy_set_property"))?;
    embed::remember(key, value);
    Ok(())
}

/// Sends a local reply. Envoy emits it after the callback returns; the caller must return
/// `Action::Pause`.
pub fn send_local_response(
    status: u32,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<()> {
    hostcalls::send_http_response(status, headers.to_vec(), body)
        .map_err(failed("proxy_send_local_response"))
}

/// Resumes a request paused in `on_http_request_headers`.
/// In a fused module, the resume of a context made effective with [`set_effective_context`] is
/// deferred (see [`embed::defer_resumes`]).
pub fn resume_request() -> Result<()> {
    if embed::defer_resume() {
        return Ok(());
    }
    hostcalls::resume_http_request().map_err(failed("proxy_continue_stream"))
}

/// Starts an HTTP call to the Envoy cluster `upstream`; returns its token.
pub fn dispatch_http_call(
    upstream: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32> {
    hostcalls::dispatch_http_call(upstream, headers.to_vec(), body, vec![], timeout)
        .map_err(failed("proxy_http_call"))
}

/// Headers of the HTTP-call response being delivered (only inside `on_http_call_response`).
pub fn http_call_response_headers() -> Result<Vec<(String, Vec<u8>)>> {
    hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
        .map_err(failed("proxy_get_header_map_pairs"))
}

/// Body of the HTTP-call response being delivered (only inside `on_http_call_response`).
pub fn http_call_response_body(size: usize) -> Result<Option<Vec<u8>>> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
        .map_err(failed("proxy_get_buffer_bytes"))
}

/// The plugin configuration (only inside `on_configure`).
/// In a fused module, the stage's section (see [`embed::with_plugin_configuration`]).
pub fn plugin_configuration() -> Result<Option<Vec<u8>>> {
    if let Some(config) = embed::plugin_configuration() {
        return Ok(Some(config));
    }
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .map_err(failed("proxy_get_buffer_bytes"))
}

/// A shared-data entry and its CAS token; `(None, None)` when absent.
pub fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>)> {
    hostcalls::get_shared_data(key).map_err(failed("proxy_get_shared_data"))
}

/// Outcome of a conditional shared-data write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value was written.
    Written,
    /// Another writer changed the entry since it was read: read again and retry.
    Mismatch,
}

/// Writes a shared-data entry if its CAS token is still `cas` (`None` writes unconditionally).
pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<CasOutcome> {
    match hostcalls::set_shared_data(key, Some(value), cas) {
        Ok(()) => Ok(CasOutcome::Written),
        Err(Status::CasMismatch) => Ok(CasOutcome::Mismatch),
        Err(status) => Err(HostError::Status {
            call: "proxy_set_shared_data",
            status,
        }),
    }
}

/// The host's wall clock.
pub fn now() -> Result<SystemTime> {
    hostcalls::get_current_time().map_err(failed("proxy_get_current_time_nanoseconds"))
}

/// Seconds since the Unix epoch by the host's clock (0 if the clock is before the epoch).
pub fn now_unix_seconds() -> Result<u64> {
    Ok(now()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

/// Asks for `on_tick` every `period` on this root context (zero disables).
pub fn set_tick_period(period: Duration) -> Result<()> {
    hostcalls::set_tick_period(period).map_err(failed("proxy_set_tick_period_milliseconds"))
}

/// A counter metric defined once at configure time; same name in every worker = one stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter(u32);

impl Counter {
    /// Defines (or looks up) the counter `name`.
    pub fn define(name: &str) -> Result<Counter> {
        hostcalls::define_metric(MetricType::Counter, name)
            .map(Counter)
            .map_err(failed("proxy_define_metric"))
    }

    /// Adds one. A failing increment is ignored: metrics never fail a request.
    pub fn inc(self) {
        let _ = hostcalls::increment_metric(self.0, 1);
    }
}

/// A gauge metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge(u32);

impl Gauge {
    /// Defines (or looks up) the gauge `name`.
    pub fn define(name: &str) -> Result<Gauge> {
        hostcalls::define_metric(MetricType::Gauge, name)
            .map(Gauge)
            .map_err(failed("proxy_define_metric"))
    }

    /// Sets the gauge. Failures are ignored.
    pub fn set(self, value: u64) {
        let _ = hostcalls::record_metric(self.0, value);
    }
}

/// Registers (or re-registers) the shared queue `name` on this root context.
pub fn register_shared_queue(name: &str) -> Result<u32> {
    hostcalls::register_shared_queue(name).map_err(failed("proxy_register_shared_queue"))
}

/// Finds the queue `name` of this VM id.
pub fn resolve_shared_queue(name: &str) -> Result<Option<u32>> {
    hostcalls::resolve_shared_queue("", name).map_err(failed("proxy_resolve_shared_queue"))
}

/// Enqueues `value` on queue `id`.
pub fn enqueue(id: u32, value: &[u8]) -> Result<()> {
    hostcalls::enqueue_shared_queue(id, Some(value)).map_err(failed("proxy_enqueue_shared_queue"))
}

/// Dequeues one item from queue `id`; `None` when empty.
pub fn dequeue(id: u32) -> Result<Option<Vec<u8>>> {
    hostcalls::dequeue_shared_queue(id).map_err(failed("proxy_dequeue_shared_queue"))
}

/// Makes `context_id` the context later hostcalls act on, e.g. to resume or answer a stream
/// paused earlier from the root context's tick. `Err` when that context no longer exists.
pub fn set_effective_context(context_id: u32) -> Result<()> {
    embed::note_effective(context_id);
    hostcalls::set_effective_context(context_id).map_err(failed("proxy_set_effective_context"))
}
