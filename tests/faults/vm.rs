//! A VM that traps mid-chain (the abi-probe filter between authz and ratelimit, told to abort by
//! a request header), and a VM that reaches the memory limit. Under FAIL_CLOSED (what meshguard
//! ships) the stream and every later stream on that worker get a 503 `wasm_fail_stream` — never
//! a pass-through; FAIL_OPEN skips the failed filter (Envoy's documented behaviour: only safe
//! for a filter that does not enforce anything); FAIL_RELOAD answers 503 and replaces the VM for
//! the next stream.

use meshguard_harness::{FailurePolicy, HttpResponse, Request, Upstream};
use serde_json::json;

use crate::support::*;

fn trap(req: Request) -> Request {
    req.header("x-probe-request_headers", "trap")
}

fn failed_503(out: &meshguard_harness::Outcome) {
    guard(out);
    assert_eq!(out.status, 503, "{:?}", out.local_reply);
    let reply = out.local_reply.as_ref().unwrap();
    assert_eq!(reply.details, "wasm_fail_stream");
    assert!(out.upstream_headers.is_none(), "passed through a failed VM");
}

#[test]
fn a_trap_mid_chain_fails_closed_for_that_worker() {
    let host = Chain {
        probe: true,
        workers: 2,
        ..Chain::default()
    }
    .build();
    let probe = index("probe", true);
    admitted(&host.send(bearer(&reader("a")).on_worker(0)).unwrap(), "a");
    let out = host.send(trap(bearer(&reader("b"))).on_worker(0)).unwrap();
    failed_503(&out);
    assert_eq!(out.traps.len(), 1);
    assert!(host.is_failed(0, probe).unwrap());
    // Every later stream on worker 0 that reaches the failed filter: 503, valid token or not.
    failed_503(&host.send(bearer(&reader("c")).on_worker(0)).unwrap());
    // An unverified request is still refused by jwt-authn before the failed filter: 401.
    refused(
        &host.send(Request::get("/api/orders").on_worker(0)).unwrap(),
        401,
    );
    // Worker 1 is not affected.
    admitted(&host.send(bearer(&reader("d")).on_worker(1)).unwrap(), "d");
    // The audit filter after the failed one never saw the failed streams: nothing recorded as
    // allowed for them.
    let allowed_5xx =
        host.counter("meshguard_audit_requests_total_decision=.=allow;.;_status_class=.=5xx;.;");
    assert_eq!(allowed_5xx, 0);
}

#[test]
fn fail_open_skips_the_failed_filter_and_the_security_filters_still_enforce() {
    let host = Chain {
        probe: true,
        policy: FailurePolicy::FailOpen,
        ..Chain::default()
    }
    .build();
    let out = host.send(trap(bearer(&reader("a")))).unwrap();
    // Envoy FAIL_OPEN: the failing filter is bypassed; jwt-authn and authz already decided.
    admitted(&out, "a");
    admitted(&host.send(bearer(&reader("b"))).unwrap(), "b");
    refused(&host.send(Request::get("/api/orders")).unwrap(), 401);
    let nobody = token_at("nobody", json!({}), NOW, NOW + 600);
    refused(&host.send(bearer(&nobody)).unwrap(), 403);
    // Rate limiting (after the failed filter) still applies.
    let tok = reader("limited");
    let statuses: Vec<u16> = (0..6)
        .map(|_| host.send(bearer(&tok)).unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
}

#[test]
fn fail_reload_answers_503_then_serves_from_a_new_vm() {
    let host = Chain {
        probe: true,
        policy: FailurePolicy::FailReload,
        ..Chain::default()
    }
    .build();
    failed_503(&host.send(trap(bearer(&reader("a")))).unwrap());
    admitted(&host.send(bearer(&reader("b"))).unwrap(), "b");
    assert_eq!(host.reloads(), 1);
    failed_503(&host.send(trap(bearer(&reader("c")))).unwrap());
    admitted(&host.send(bearer(&reader("d"))).unwrap(), "d");
    assert_eq!(host.reloads(), 2);
}

#[test]
fn memory_limit_reached_mid_chain_fails_closed() {
    // 24 MiB per VM: every filter starts; the probe's 64 MiB allocation cannot grow memory.
    let host = Chain {
        probe: true,
        memory_limit: Some(24 << 20),
        ..Chain::default()
    }
    .build();
    admitted(&host.send(bearer(&reader("a"))).unwrap(), "a");
    let out = host
        .send(bearer(&reader("b")).header("x-probe-request_headers", "alloc:64"))
        .unwrap();
    failed_503(&out);
    assert_eq!(out.traps.len(), 1, "{:?}", out.traps);
    failed_503(&host.send(bearer(&reader("c"))).unwrap());
}

#[test]
fn memory_limit_reached_in_jwt_authn_fails_closed_never_open() {
    // jwt-authn allowed to read a 12 MiB key document under a 16 MiB memory cap: reading it
    // exhausts memory and traps the jwt-authn VM. The request (and the worker's next ones) get
    // the 503, none reaches the upstream.
    let mut jwt = example("jwt_authn");
    jwt["providers"]["demo"]["remote_jwks"]["max_body_bytes"] = json!(16 * 1024 * 1024);
    let body = format!(r#"{{"keys": [], "padding": "{}"}}"#, "x".repeat(12 << 20));
    let host = Chain {
        jwks: Upstream::respond(HttpResponse::ok().body(body.into_bytes())),
        configs: vec![("jwt_authn", jwt)],
        memory_limit: Some(16 << 20),
        ..Chain::default()
    }
    .build();
    // The trap happens in the root context (the fetch response), while the request waits for
    // keys: nothing resumes it, as in Envoy, where it waits for the stream's own timeouts. It is
    // held, never forwarded.
    let out = host.send(bearer(&reader("a"))).unwrap();
    assert!(out.stuck, "{:?}", out.local_reply);
    assert!(out.upstream_headers.is_none() && out.local_reply.is_none());
    assert!(!host.traps().is_empty());
    assert!(host.is_failed(0, index("jwt_authn", false)).unwrap());
    // The failed jwt-authn VM lets nothing through on that worker, valid token or not: each
    // later request is answered 503 or held (the harness holds streams that arrive after a
    // root-context trap; see tests/README.md), never forwarded, never a filter-made 5xx.
    for req in [bearer(&reader("b")), Request::get("/api/orders")] {
        let out = host.send(req).unwrap();
        assert!(
            out.upstream_headers.is_none(),
            "forwarded through a failed jwt-authn"
        );
        assert!(out.stuck || out.status == 503, "{}", out.status);
        if let Some(reply) = &out.local_reply {
            assert_eq!(reply.details, "wasm_fail_stream");
        }
    }
}
