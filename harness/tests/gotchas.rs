//! One test per gotcha of the ABI notes (shared/research/proxy-wasm-abi.md §8) that applies to
//! the harness, each failing on a permissive host. Driven by the abi-probe filter.

mod common;

use std::time::Duration;

use common::{callbacks, probe, probe_request, result, TestResult};
use meshguard_harness::{
    Action, Clock, FailurePolicy, Flag, HttpResponse, Lifecycle, LogLevel, Request, Status,
    Upstream,
};
use meshguard_wasm_artifacts::{ABI_PROBE, PASSTHROUGH};
use serde_json::json;

/// §8.1: the wasip1 build exports `proxy_on_memory_allocate`, not `malloc`; data-returning
/// hostcalls must still work.
#[test]
fn g01_allocator_of_wasip1_builds() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(probe_request(&[(
        "request_headers",
        "get_header:request=:path",
    )]))?;
    assert_eq!(
        result(&out.logs, "request_headers", "get_header:request=:path").as_deref(),
        Some("Ok(Some(\"/probe\"))")
    );
    Ok(())
}

/// §8.2: actions are deferred — a local reply and a resume take effect after the callback, and
/// an HTTP-call response is delivered after the callback that made the call returned.
#[test]
fn g02_no_reentrancy_actions_are_deferred() -> TestResult {
    let host = probe(json!({}))
        .upstream("idp", Upstream::respond(HttpResponse::ok().body("k")))
        .build()?;
    // The local reply is not sent yet while the callback still runs: the request map is live.
    let out = host.send(probe_request(&[(
        "request_headers",
        "local_reply:403;get_header:request=:path",
    )]))?;
    assert_eq!(
        result(&out.logs, "request_headers", "get_header:request=:path").as_deref(),
        Some("Ok(Some(\"/probe\"))")
    );
    assert_eq!(out.status, 403);
    // The call's response arrives after the callback's last op.
    let out = host.send(probe_request(&[(
        "request_headers",
        "http_call:idp;log_level",
    )]))?;
    let order: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    let op = order
        .iter()
        .position(|m| m.starts_with("probe request_headers log_level"))
        .ok_or("no op log")?;
    let resp = order
        .iter()
        .position(|m| m.starts_with("probe stream http_call_response"))
        .ok_or("no response")?;
    assert!(op < resp, "{order:?}");
    assert_eq!(out.status, 200);
    assert!(host.traps().is_empty());
    Ok(())
}

/// §8.3: header maps outside their phase are BAD_ARGUMENT (and the SDK's panic kills the VM);
/// reading pairs of an unavailable map is OK + empty.
#[test]
fn g03_phase_enforcement() -> TestResult {
    let host = probe(json!({})).workers(3).build()?;
    // Response headers in the request phase: pairs are OK + empty, a value is BAD_ARGUMENT.
    let out =
        host.send(probe_request(&[("request_headers", "get_headers:response")]).on_worker(0))?;
    assert_eq!(
        result(&out.logs, "request_headers", "get_headers:response").as_deref(),
        Some("Ok([])")
    );
    assert!(out.traps.is_empty());
    let out = host
        .send(probe_request(&[("request_headers", "get_header:response=:status")]).on_worker(1))?;
    assert!(host
        .statuses_of("proxy_get_header_map_value")
        .contains(&Status::BadArgument));
    assert_eq!(out.traps.len(), 1, "the SDK panics on BAD_ARGUMENT");
    assert_eq!(out.status, 503);
    // Request headers from the response phase: the filter continued them long ago.
    let out = host
        .send(probe_request(&[("response_headers", "set_header:request=x-late=1")]).on_worker(2))?;
    assert_eq!(
        host.statuses_of("proxy_replace_header_map_value"),
        vec![Status::BadArgument]
    );
    assert_eq!(out.traps.len(), 1);
    // The SDK's panic hook logs the panic at CRITICAL.
    assert!(out
        .logs
        .iter()
        .any(|l| l.level == LogLevel::Critical && l.message.contains("unexpected status: 2")));
    Ok(())
}

/// §8.3 cont.: after `proxy_continue_stream` the request map is gone at once.
#[test]
fn g03b_resume_drops_request_map() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(probe_request(&[(
        "request_headers",
        "pause;resume;get_headers:request",
    )]))?;
    assert_eq!(
        result(&out.logs, "request_headers", "get_headers:request").as_deref(),
        Some("Ok([])")
    );
    assert_eq!(out.status, 200, "the resume still runs after the callback");
    Ok(())
}

/// §8.4: UNIMPLEMENTED (12) for `resume_upstream` is flagged; the SDK cannot represent it.
#[test]
fn g04_unimplemented_status_is_flagged() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(probe_request(&[("request_headers", "resume_upstream")]))?;
    assert_eq!(
        host.statuses_of("proxy_continue_stream"),
        vec![Status::Unimplemented]
    );
    assert!(host
        .flags()
        .iter()
        .any(|f| matches!(f, Flag::Unimplemented { name, .. } if name == "proxy_continue_stream")));
    assert_eq!(out.traps.len(), 1, "SDK panics: unexpected status 12");
    Ok(())
}

/// §8.5: duplicates kept and names lower-cased; `get_header_map_value` returns the first only.
#[test]
fn g05_first_value_only_and_lowercase() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(
        probe_request(&[(
            "request_headers",
            "get_header:request=x-dup;get_headers:request",
        )])
        .header("X-Dup", "first")
        .header("x-dup", "second"),
    )?;
    assert_eq!(
        result(&out.logs, "request_headers", "get_header:request=x-dup").as_deref(),
        Some("Ok(Some(\"first\"))")
    );
    let all = result(&out.logs, "request_headers", "get_headers:request").ok_or("no log")?;
    assert!(all.contains("\"x-dup=first\", \"x-dup=second\""), "{all}");
    assert_eq!(
        out.upstream_headers
            .ok_or("not forwarded")?
            .get_all("x-dup"),
        vec!["first", "second"]
    );
    Ok(())
}

/// §8.6: a local reply stops the chain even when the filter returns Continue, and the harness
/// flags the Continue.
#[test]
fn g06_local_reply_forces_pause_and_flags_continue() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(probe_request(&[(
        "request_headers",
        "local_reply_continue:401",
    )]))?;
    assert_eq!(out.status, 401);
    assert_eq!(out.action, Action::Pause);
    assert!(out.upstream_headers.is_none(), "never forwarded");
    let reply = out.local_reply.ok_or("no reply")?;
    assert_eq!(reply.header("x-probe").as_deref(), Some("local"));
    assert_eq!(reply.body_text(), "probe");
    assert!(host
        .flags()
        .iter()
        .any(|f| matches!(f, Flag::ContinueAfterLocalReply { .. })));
    // Returning Pause is not flagged.
    let before = host.flags().len();
    host.send(probe_request(&[("request_headers", "local_reply:401")]))?;
    assert_eq!(host.flags().len(), before);
    Ok(())
}

/// §8.7: callouts: response on the ROOT context, bad calls refused, pending calls cancelled
/// when the stream ends.
#[test]
fn g07_callout_plumbing() -> TestResult {
    let host = probe(json!({})).upstream("idp", Upstream::Manual).build()?;
    let out = host.send(probe_request(&[(
        "request_headers",
        "http_call_bare:idp;http_call:nowhere",
    )]))?;
    assert_eq!(
        host.statuses_of("proxy_http_call"),
        vec![Status::BadArgument, Status::BadArgument]
    );
    assert_eq!(out.status, 200);

    let mut s = host.stream_on(0)?;
    let step = s.request_headers(
        [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "a"),
            ("x-probe-request-headers", "http_call:idp"),
        ],
        true,
    )?;
    assert_eq!(step.action, Action::Pause);
    let call = s.pending_http_calls().pop().ok_or("no call")?;
    assert_eq!(call.header(":path").as_deref(), Some("/probe"));
    host.deliver_http_call(call.token, HttpResponse::ok())?;
    let root = callbacks(&host, Some(0), 0)
        .into_iter()
        .find(|(n, _)| *n == "proxy_on_http_call_response")
        .ok_or("not delivered")?;
    assert_eq!(
        root.1, 1,
        "delivered on the root context (id 1), not the stream"
    );
    assert!(s.is_resumed());
    assert_eq!(s.action(), Action::Continue);

    // A stream that ends first: its call is cancelled, nothing is delivered.
    let mut s2 = host.stream_on(0)?;
    s2.request_headers(
        [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "a"),
            ("x-probe-request-headers", "http_call:idp"),
        ],
        true,
    )?;
    let token = s2.pending_http_calls().pop().ok_or("no call")?.token;
    s2.finish()?;
    assert!(host.pending_http_calls().is_empty());
    assert!(host.deliver_http_call(token, HttpResponse::ok()).is_err());
    Ok(())
}

/// §8.7 cont.: failures, timeouts and delays of scripted upstreams.
#[test]
fn g07b_upstream_failure_timeout_delay() -> TestResult {
    let host = probe(json!({}))
        .upstream("down", Upstream::fail())
        .upstream("slow", Upstream::Timeout)
        .upstream(
            "late",
            Upstream::respond_after(
                HttpResponse::ok().body("late body"),
                Duration::from_millis(200),
            ),
        )
        .build()?;
    let out = host.send(probe_request(&[
        ("request_headers", "http_call:down"),
        (
            "http_call_response",
            "call_status;get_headers:call_response",
        ),
    ]))?;
    assert_eq!(
        result(&out.logs, "http_call_response", "call_status").as_deref(),
        Some("Ok((11, Some(\"reset\")))")
    );
    assert!(out.logs.iter().any(
        |l| l.message.contains("http_call_response token=") && l.message.contains("headers=0")
    ));

    let mut s = host.stream_on(0)?;
    s.request_headers(
        [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "a"),
            ("x-probe-request-headers", "http_call:slow=500"),
            (
                "x-probe-http-call-response",
                "get_header:call_response=:status",
            ),
        ],
        true,
    )?;
    host.advance(Duration::from_millis(499))?;
    assert_eq!(s.pending_http_calls().len(), 1);
    host.advance(Duration::from_millis(1))?;
    assert!(s.pending_http_calls().is_empty());
    assert!(host.logs().iter().any(|l| l.message
        == "probe http_call_response get_header:call_response=:status -> Ok(Some(\"504\"))"));

    let t0 = host.clock().unix_nanos();
    let out = host.send(probe_request(&[
        ("request_headers", "http_call:late"),
        ("http_call_response", "call_body"),
    ]))?;
    assert_eq!(
        result(&out.logs, "http_call_response", "call_body").as_deref(),
        Some("Ok(Some(\"late body\"))")
    );
    assert_eq!(
        host.clock().unix_nanos() - t0,
        200_000_000,
        "send waited in fake time"
    );
    Ok(())
}

/// §8.8: one fake clock drives proxy time and both WASI clocks.
#[test]
fn g08_one_clock_for_both_time_sources() -> TestResult {
    let host = probe(json!({}))
        .clock(Clock::fixed_unix(1_700_000_000))
        .build()?;
    let out = host.send(probe_request(&[("request_headers", "time")]))?;
    let t = result(&out.logs, "request_headers", "time").ok_or("no time")?;
    assert!(
        t.starts_with("host=Some(1700000000000000000) wasi=Some(1700000000000000000)"),
        "{t}"
    );
    host.advance(Duration::from_secs(90))?;
    let out = host.send(probe_request(&[("request_headers", "time")]))?;
    let t = result(&out.logs, "request_headers", "time").ok_or("no time")?;
    assert!(
        t.starts_with("host=Some(1700000090000000000) wasi=Some(1700000090000000000)"),
        "{t}"
    );
    Ok(())
}

/// §8.9: one VM per worker: a tick runs once per worker (each in its own memory), and the
/// canary plus each worker configure.
#[test]
fn g09_per_worker_vms_and_ticks() -> TestResult {
    let host = probe(json!({"configure": ["tick:1000"], "tick": ["counter:ticks=1"]}))
        .workers(3)
        .build()?;
    let configures = host
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                meshguard_harness::HostEvent::Callback {
                    name: "proxy_on_configure",
                    ..
                }
            )
        })
        .count();
    assert_eq!(configures, 4, "canary + 3 workers");
    host.advance(Duration::from_millis(999))?;
    assert_eq!(host.counter("ticks"), 0);
    host.advance(Duration::from_millis(1))?;
    assert_eq!(host.counter("ticks"), 3);
    host.advance(Duration::from_secs(2))?;
    assert_eq!(host.counter("ticks"), 9);
    Ok(())
}

/// §8.10: CAS: 0 is unconditional, values never 0, stale CAS mismatches, shared across workers.
#[test]
fn g10_shared_data_cas() -> TestResult {
    let host = probe(json!({})).workers(2).vm_id("mesh").build()?;
    assert_eq!(host.set_shared_data("mesh", "k", b"a", 0), Status::Ok);
    let (_, c1) = host.shared_data("mesh", "k").ok_or("missing")?;
    assert_ne!(c1, 0);
    assert_eq!(host.set_shared_data("mesh", "k", b"b", c1), Status::Ok);
    let (v, c2) = host.shared_data("mesh", "k").ok_or("missing")?;
    assert_eq!((v.as_slice(), c2 != c1), (&b"b"[..], true));
    assert_eq!(
        host.set_shared_data("mesh", "k", b"c", c1),
        Status::CasMismatch
    );
    assert_eq!(host.set_shared_data("mesh", "k", b"d", 0), Status::Ok);
    // Worker 0 writes with a stale CAS, worker 1 reads what the host wrote.
    let out = host.send(
        probe_request(&[("request_headers", &format!("shared_set:k=e={c1}"))]).on_worker(0),
    )?;
    assert_eq!(
        result(
            &out.logs,
            "request_headers",
            &format!("shared_set:k=e={c1}")
        )
        .as_deref(),
        Some("Err(CasMismatch)")
    );
    let out = host.send(probe_request(&[("request_headers", "shared_get:k")]).on_worker(1))?;
    let got = result(&out.logs, "request_headers", "shared_get:k").ok_or("no log")?;
    assert!(got.starts_with("Ok((Some(\"d\"), Some("), "{got}");
    assert!(
        host.shared_data("other", "k").is_none(),
        "namespaced by vm_id"
    );
    Ok(())
}

/// §8.11: the last registrant of a queue gets `on_queue_ready`.
#[test]
fn g11_queue_notifies_last_registrant() -> TestResult {
    let host = probe(json!({"configure": ["register_queue:q"], "queue_ready": ["dequeue:q"]}))
        .workers(2)
        .build()?;
    assert_eq!(host.enqueue("", "q", b"item")?, Status::Ok);
    let ready: Vec<_> = host
        .logs()
        .into_iter()
        .filter(|l| l.message.starts_with("probe queue_ready dequeue:q"))
        .collect();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].worker, Some(1));
    assert!(ready[0].message.ends_with("Ok(Some(\"item\"))"));
    Ok(())
}

/// §8.12: counters refuse increments ≤ 0, `record` adds, names aggregate across workers.
#[test]
fn g12_metrics_semantics() -> TestResult {
    let host = probe(json!({})).workers(2).build()?;
    let out = host.send(probe_request(&[("request_headers", "counter:c=0")]).on_worker(0))?;
    assert_eq!(
        result(&out.logs, "request_headers", "counter:c=0").as_deref(),
        Some("Err(BadArgument)")
    );
    host.send(probe_request(&[("request_headers", "counter:c=2;record:c=5")]).on_worker(0))?;
    host.send(probe_request(&[("request_headers", "counter:c=1")]).on_worker(1))?;
    assert_eq!(host.counter("c"), 8);
    host.send(probe_request(&[(
        "request_headers",
        "gauge:g=5;gauge:g=-2",
    )]))?;
    assert_eq!(host.counter("g"), 3);
    Ok(())
}

/// §8.13: plugin config only in `on_configure`; `on_configure` false is a rejected config;
/// `on_vm_start` gets the root context id.
#[test]
fn g13_plugin_config_and_rejection() -> TestResult {
    let host = probe(json!({"configure": ["plugin_config"]})).build()?;
    let cfg = host
        .logs()
        .into_iter()
        .find(|l| l.message.starts_with("probe configure plugin_config"))
        .ok_or("no log")?;
    assert!(cfg.message.contains("Ok(Some("), "{}", cfg.message);
    let out = host.send(probe_request(&[("request_headers", "plugin_config")]))?;
    assert_eq!(
        result(&out.logs, "request_headers", "plugin_config").as_deref(),
        Some("Ok(None)")
    );
    let vm_start = callbacks(&host, Some(0), 0)
        .into_iter()
        .find(|(n, _)| *n == "proxy_on_vm_start")
        .ok_or("none")?;
    assert_eq!(vm_start.1, 1, "root context id, not 0");

    let err = probe(json!({"reject": true}))
        .build()
        .err()
        .ok_or("config accepted")?;
    assert!(
        matches!(
            err,
            meshguard_harness::HarnessError::ConfigureRejected { worker: None, .. }
        ),
        "{err}"
    );
    Ok(())
}

/// §8.14: `_initialize` runs first, before any context exists.
#[test]
fn g14_initialize_first() -> TestResult {
    let host = probe(json!({})).build()?;
    let first = callbacks(&host, None, 0)
        .first()
        .copied()
        .ok_or("no callback")?;
    assert_eq!(first, ("_initialize", 0));
    Ok(())
}

/// §8.15: WASI is there; stdout → INFO, stderr (panic messages) → ERROR.
#[test]
fn g15_wasi_stdio_to_logs() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(probe_request(&[(
        "request_headers",
        "stderr:boom;stdout:hello",
    )]))?;
    assert!(out
        .logs
        .iter()
        .any(|l| l.level == LogLevel::Error && l.message == "probe says boom"));
    assert!(out
        .logs
        .iter()
        .any(|l| l.level == LogLevel::Info && l.message == "probe says hello"));
    Ok(())
}

/// §8.16: an empty map comes back as size 0 (a 1-byte map would panic the SDK).
#[test]
fn g16_empty_map_is_size_zero() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(probe_request(&[(
        "request_headers",
        "get_headers:request_trailers",
    )]))?;
    assert_eq!(
        result(&out.logs, "request_headers", "get_headers:request_trailers").as_deref(),
        Some("Ok([])")
    );
    assert!(out.traps.is_empty());
    Ok(())
}

/// §8.17: the call response body is buffer 4 (HTTP_CALL_RESPONSE_BODY), readable only in the
/// callback.
#[test]
fn g17_call_body_is_buffer_4() -> TestResult {
    let host = probe(json!({}))
        .upstream("idp", Upstream::respond(HttpResponse::ok().body("jwks")))
        .build()?;
    let out = host.send(probe_request(&[
        ("request_headers", "http_call:idp;call_body"),
        ("http_call_response", "call_body"),
    ]))?;
    assert_eq!(
        result(&out.logs, "request_headers", "call_body").as_deref(),
        Some("Ok(None)")
    );
    assert_eq!(
        result(&out.logs, "http_call_response", "call_body").as_deref(),
        Some("Ok(Some(\"jwks\"))")
    );
    Ok(())
}

fn end_order(host: &meshguard_harness::Host, filter: usize) -> Vec<&'static str> {
    callbacks(host, Some(0), filter)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| ["proxy_on_log", "proxy_on_done", "proxy_on_delete"].contains(n))
        .collect()
}

/// §8.18: Envoy's order is log → done → delete; the spec order is configurable; `on_log` can
/// be the first callback a context sees.
#[test]
fn g18_lifecycle_order() -> TestResult {
    let host = probe(json!({})).build()?;
    host.send(Request::get("/"))?;
    assert_eq!(
        end_order(&host, 0),
        vec!["proxy_on_log", "proxy_on_done", "proxy_on_delete"]
    );
    let host = probe(json!({})).lifecycle(Lifecycle::Spec).build()?;
    host.send(Request::get("/"))?;
    assert_eq!(
        end_order(&host, 0),
        vec!["proxy_on_done", "proxy_on_log", "proxy_on_delete"]
    );
    // Filter 1 never sees the request (filter 0 replied): its first stream callback is on_log.
    let host = probe(json!({})).then(PASSTHROUGH).build()?;
    host.send(probe_request(&[("request_headers", "local_reply:403")]))?;
    let names: Vec<_> = callbacks(&host, Some(0), 1)
        .into_iter()
        .map(|(n, _)| n)
        .skip(4)
        .collect();
    assert_eq!(
        names,
        vec![
            "proxy_on_context_create",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete"
        ]
    );
    Ok(())
}

/// §8.19: failure policies after a trap.
#[test]
fn g19_failure_policies() -> TestResult {
    let trap = || probe_request(&[("request_headers", "trap")]);
    let closed = probe(json!({})).workers(2).build()?;
    let out = closed.send(trap().on_worker(0))?;
    assert_eq!(out.status, 503);
    assert_eq!(
        out.local_reply.as_ref().map(|r| r.details.as_str()),
        Some("wasm_fail_stream")
    );
    assert_eq!(
        closed.send(Request::get("/").on_worker(0))?.status,
        503,
        "every later stream"
    );
    assert_eq!(
        closed.send(Request::get("/").on_worker(1))?.status,
        200,
        "other worker unaffected"
    );
    assert!(
        closed.traps()[0].message.contains("unreachable"),
        "{:?}",
        closed.traps()
    );

    let open = probe(json!({}))
        .failure_policy(FailurePolicy::FailOpen)
        .build()?;
    assert_eq!(open.send(trap())?.status, 200);
    assert_eq!(open.send(Request::get("/"))?.status, 200);

    let reload = probe(json!({}))
        .failure_policy(FailurePolicy::FailReload)
        .build()?;
    assert_eq!(reload.send(trap())?.status, 503);
    assert_eq!(reload.send(Request::get("/"))?.status, 200);
    assert_eq!(reload.reloads(), 1);
    Ok(())
}

/// §8.19 cont.: fuel per callback and the memory limit trap like any other fault.
#[test]
fn g19b_fuel_and_memory_limits() -> TestResult {
    let host = probe(json!({}))
        .fuel_per_callback(Some(50_000_000))
        .build()?;
    let out = host.send(probe_request(&[("request_headers", "spin")]))?;
    assert_eq!(out.status, 503);
    assert!(
        out.traps[0].message.contains("fuel"),
        "{}",
        out.traps[0].message
    );

    let host = probe(json!({})).memory_limit(Some(8 << 20)).build()?;
    let out = host.send(probe_request(&[("request_headers", "alloc:1")]))?;
    assert_eq!(out.status, 200);
    let out = host.send(probe_request(&[("request_headers", "alloc:64")]))?;
    assert_eq!(out.status, 503);
    assert_eq!(out.traps.len(), 1);
    Ok(())
}

/// §8.20: properties: defaults, ints as 8-byte LE, no `source.principal`, mTLS identity,
/// derived request attributes, plugin attributes.
#[test]
fn g20_properties() -> TestResult {
    let host = probe(json!({})).root_id("rid").vm_id("vid").build()?;
    let ops = "get_property:source.port;get_property:source.principal;get_property:connection.mtls;get_property:connection.uri_san_peer_certificate;get_property:request.url_path;get_property:plugin_root_id;get_property:plugin_vm_id;get_property:plugin_name";
    let out = host.send(
        Request::get("/a?b=1")
            .header("x-probe-request-headers", ops)
            .peer("spiffe://cluster.local/ns/a/sa/b"),
    )?;
    let r = |op: &str| result(&out.logs, "request_headers", op);
    assert_eq!(
        r("get_property:source.port").as_deref(),
        Some("Ok(Some(\"int:45678\"))")
    );
    assert_eq!(
        r("get_property:source.principal").as_deref(),
        Some("Ok(None)")
    );
    assert_eq!(
        r("get_property:connection.mtls").as_deref(),
        Some("Ok(Some(\"\\u{1}\"))")
    );
    assert_eq!(
        r("get_property:connection.uri_san_peer_certificate").as_deref(),
        Some("Ok(Some(\"spiffe://cluster.local/ns/a/sa/b\"))")
    );
    assert_eq!(
        r("get_property:request.url_path").as_deref(),
        Some("Ok(Some(\"/a\"))")
    );
    assert_eq!(
        r("get_property:plugin_root_id").as_deref(),
        Some("Ok(Some(\"rid\"))")
    );
    assert_eq!(
        r("get_property:plugin_vm_id").as_deref(),
        Some("Ok(Some(\"vid\"))")
    );
    assert_eq!(
        r("get_property:plugin_name").as_deref(),
        Some("Ok(Some(\"probe\"))")
    );
    Ok(())
}

/// §8.22: restricted capabilities answer INTERNAL_FAILURE (and the SDK panics on it).
#[test]
fn g22_restricted_capabilities() -> TestResult {
    let host = meshguard_harness::Host::builder(ABI_PROBE)
        .plugin_config_json(json!({}))
        .allowed_capabilities(&[
            "proxy_log",
            "proxy_get_buffer_bytes",
            "proxy_get_header_map_pairs",
        ])
        .build()?;
    let out = host.send(probe_request(&[(
        "request_headers",
        "get_header:request=:path",
    )]))?;
    assert_eq!(
        host.statuses_of("proxy_get_header_map_value"),
        vec![Status::InternalFailure]
    );
    assert_eq!(out.traps.len(), 1);
    Ok(())
}
