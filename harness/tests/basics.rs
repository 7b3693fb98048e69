//! The passthrough filter through the whole lifecycle, one and several workers.

use meshguard_harness::{Action, Host, HostEvent, Request};
use meshguard_wasm_artifacts::PASSTHROUGH;

#[test]
fn passthrough_forwards_request_and_response() -> meshguard_harness::Result<()> {
    let host = Host::builder(PASSTHROUGH).build()?;
    let out = host.send(
        Request::get("/orders")
            .header("x-a", "1")
            .header("x-a", "2"),
    )?;
    assert_eq!(out.status, 200);
    assert_eq!(out.action, Action::Continue);
    let up = out
        .upstream_headers
        .clone()
        .ok_or_else(|| meshguard_harness::HarnessError::Invalid("no upstream".into()))?;
    assert_eq!(up.get_all("x-a"), vec!["1", "2"]);
    assert!(out.local_reply.is_none());
    assert!(host.traps().is_empty(), "{:?}", host.traps());
    let callbacks: Vec<&str> = host
        .events()
        .iter()
        .filter_map(|e| match e {
            HostEvent::Callback {
                name,
                worker: Some(0),
                ..
            } => Some(*name),
            _ => None,
        })
        .collect();
    assert_eq!(
        callbacks,
        vec![
            "_initialize",
            "proxy_on_context_create",
            "proxy_on_vm_start",
            "proxy_on_configure",
            "proxy_on_context_create",
            "proxy_on_request_headers",
            "proxy_on_response_headers",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete",
        ]
    );
    Ok(())
}

mod common;

use common::{callbacks, probe, probe_request, result, TestResult};
use meshguard_harness::HttpResponse;
use meshguard_wasm_artifacts::ABI_PROBE;
use serde_json::json;

/// A later filter reads what an earlier one set (`wasm.<key>` filter state), and the state is
/// readable after the stream.
#[test]
fn chain_filter_state_is_visible_downstream_and_after() -> TestResult {
    let host = probe(json!({"request_headers": ["set_state:meshguard.test.decision=allow"]}))
        .name("first")
        .then(ABI_PROBE)
        .name("second")
        .plugin_config_json(json!({"request_headers": ["get_state:meshguard.test.decision", "get_property:meshguard.test.decision"]}))
        .build()?;
    let out = host.send(Request::get("/"))?;
    assert_eq!(
        result(
            &out.logs,
            "request_headers",
            "get_state:meshguard.test.decision"
        )
        .as_deref(),
        Some("Ok(Some(\"allow\"))")
    );
    assert_eq!(
        out.filter_state
            .get("wasm.meshguard.test.decision")
            .map(String::as_str),
        Some("allow")
    );
    // The first filter of the chain logs before the second.
    let firsts: Vec<&str> = out.logs.iter().map(|l| l.filter.as_str()).collect();
    assert_eq!(firsts.first().copied(), Some("first"));
    Ok(())
}

/// A local reply from filter 1 goes back through the encoder path: filter 0 (which saw the
/// request) gets on_response_headers with the reply's status; filter 2 (never saw it) does not.
#[test]
fn chain_local_reply_goes_through_earlier_filters() -> TestResult {
    let host = probe(json!({"response_headers": ["get_header:response=:status"]}))
        .name("a")
        .then(ABI_PROBE)
        .name("b")
        .plugin_config_json(json!({"request_headers": ["local_reply:429"]}))
        .then(ABI_PROBE)
        .name("c")
        .plugin_config_json(json!({"response_headers": ["get_header:response=:status"]}))
        .build()?;
    let out = host.send(Request::get("/"))?;
    assert_eq!(out.status, 429);
    let seen: Vec<&str> = out
        .logs
        .iter()
        .filter(|l| l.message.starts_with("probe response_headers"))
        .map(|l| l.filter.as_str())
        .collect();
    assert_eq!(seen, vec!["a"]);
    assert_eq!(
        result(&out.logs, "response_headers", "get_header:response=:status").as_deref(),
        Some("Ok(Some(\"429\"))")
    );
    let c: Vec<&str> = callbacks(&host, Some(0), 2)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        !c.contains(&"proxy_on_request_headers") && !c.contains(&"proxy_on_response_headers"),
        "{c:?}"
    );
    Ok(())
}

/// Step by step: a filter holds the request for a manual call; the test delivers it.
#[test]
fn stream_steps_with_manual_call() -> TestResult {
    let host = probe(json!({}))
        .upstream("idp", meshguard_harness::Upstream::Manual)
        .build()?;
    let mut s = host.stream()?;
    s.set_peer_spiffe_id("spiffe://cluster.local/ns/a/sa/b");
    let step = s.request_headers(
        [
            (":method", "GET"),
            (":path", "/x"),
            (":authority", "a"),
            ("x-probe-request-headers", "http_call:idp"),
            ("x-probe-http-call-response", "set_header:request=x-added=1"),
        ],
        true,
    )?;
    assert_eq!(step.action, Action::Pause);
    assert_eq!(step.paused_by, Some(0));
    assert!(s.upstream_headers().is_none());
    let call = s.pending_http_calls().pop().ok_or("no call")?;
    host.deliver_http_call(call.token, HttpResponse::ok())?;
    assert!(s.is_resumed());
    let up = s.upstream_headers().ok_or("not forwarded")?;
    assert_eq!(
        up.get("x-added").as_deref(),
        Some("1"),
        "the paused filter may still edit headers"
    );
    let step = s.response_headers([(":status", "204")], true)?;
    assert_eq!(step.action, Action::Continue);
    assert_eq!(s.status(), Some(204));
    s.finish()?;
    assert!(s.is_finished());
    Ok(())
}

/// Requests go round-robin over workers; each worker has its own VM.
#[test]
fn workers_round_robin() -> TestResult {
    let host = Host::builder(PASSTHROUGH).workers(3).build()?;
    let workers: Vec<usize> = (0..6)
        .map(|_| host.send(Request::get("/")).map(|o| o.worker))
        .collect::<Result<_, _>>()?;
    assert_eq!(workers, vec![0, 1, 2, 0, 1, 2]);
    Ok(())
}

/// Bodies: a buffering filter sees the whole body; replacing it changes what goes upstream.
#[test]
fn request_body_buffering_and_replace() -> TestResult {
    let host = probe(json!({})).build()?;
    let mut s = host.stream()?;
    s.request_headers(
        [
            (":method", "POST"),
            (":path", "/"),
            (":authority", "a"),
            ("x-probe-request-body", "pause;request_body"),
        ],
        false,
    )?;
    let step = s.request_body(b"hello ", false)?;
    assert_eq!(step.action, Action::Pause);
    let step = s.request_body(b"world", true)?;
    assert_eq!(
        step.action,
        Action::Pause,
        "still paused: the probe pauses on every body call"
    );
    let logs = host.logs();
    assert!(
        logs.iter()
            .any(|l| l.message == "probe request_body request_body -> Ok(Some(\"hello world\"))"),
        "{logs:?}"
    );

    let out = host
        .send(probe_request(&[("request_body", "set_request_body:replaced")]).body("original"))?;
    assert_eq!(String::from_utf8_lossy(&out.upstream_body), "replaced");
    Ok(())
}
