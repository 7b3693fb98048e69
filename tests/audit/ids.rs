//! Request id and trace context: generation, propagation, replacement.

use meshguard_harness::{HttpResponse, Lifecycle, Request};
use serde_json::json;

use crate::support::*;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn ids_are_generated_when_absent_and_echoed() -> TestResult {
    let host = audit(json!({})).build()?;
    let out = host.send(Request::get("/orders"))?;
    assert_eq!(out.status, 200);
    let id = out
        .upstream_header("x-request-id")
        .expect("request id upstream");
    assert!(is_uuid_v4(&id), "{id}");
    assert_eq!(
        out.response_header("x-request-id").as_deref(),
        Some(id.as_str())
    );

    let tp = out
        .upstream_header("traceparent")
        .expect("traceparent upstream");
    let (trace_id, span_id, flags) = traceparent_parts(&tp).expect("valid traceparent");
    assert_eq!(flags, "00", "new traces are not sampled by default");

    let r = record(&out);
    assert_eq!(r["request_id"], id.as_str());
    assert_eq!(r["trace_id"], trace_id.as_str());
    assert_eq!(r["span_id"], span_id.as_str());
    assert_eq!(r["attributes"]["meshguard.trace_source"], "new");

    let again = host.send(Request::get("/orders"))?;
    assert_ne!(
        again.upstream_header("x-request-id"),
        Some(id),
        "fresh id per request"
    );
    assert_ne!(
        again.upstream_header("traceparent"),
        Some(tp),
        "fresh trace per request"
    );
    no_traps(&host);
    Ok(())
}

#[test]
fn valid_ids_and_trace_context_are_propagated_unchanged() -> TestResult {
    let host = audit(json!({})).build()?;
    let out = host.send(
        Request::get("/")
            .header("x-request-id", "client-req:42.a_b")
            .header("traceparent", TP)
            .header("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    )?;
    assert_eq!(
        out.upstream_header("x-request-id").as_deref(),
        Some("client-req:42.a_b")
    );
    assert_eq!(
        out.response_header("x-request-id").as_deref(),
        Some("client-req:42.a_b")
    );
    assert_eq!(out.upstream_header("traceparent").as_deref(), Some(TP));
    assert_eq!(
        out.upstream_header("tracestate").as_deref(),
        Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    );
    let r = record(&out);
    assert_eq!(r["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        r["span_id"], "00f067aa0ba902b7",
        "the caller's span: this filter is no span"
    );
    assert_eq!(r["trace_flags"], "01");
    assert_eq!(r["attributes"]["meshguard.trace_source"], "w3c");
    no_traps(&host);
    Ok(())
}

#[test]
fn malformed_or_repeated_request_ids_are_replaced() -> TestResult {
    let host = audit(json!({})).build()?;
    let long = "a".repeat(129);
    let cases: Vec<Request> = vec![
        Request::get("/").header("x-request-id", "has space"),
        Request::get("/").header("x-request-id", "a/b"),
        Request::get("/").header("x-request-id", long.as_str()),
        Request::get("/").header("x-request-id", b"\xff\xfe"),
        Request::get("/")
            .header("x-request-id", "one")
            .header("x-request-id", "two"),
    ];
    for request in cases {
        let sent = format!("{:?}", request.headers);
        let out = host.send(request)?;
        let up = out.upstream_headers.clone().expect("reached upstream");
        let ids = up.get_all("x-request-id");
        assert_eq!(ids.len(), 1, "{sent}: {ids:?}");
        assert!(is_uuid_v4(&ids[0]), "{sent}: {ids:?}");
        assert_eq!(record(&out)["request_id"], ids[0].as_str());
    }
    no_traps(&host);
    Ok(())
}

#[test]
fn malformed_traceparent_starts_a_new_trace_and_drops_tracestate() -> TestResult {
    let host = audit(json!({"trace_context": {"new_trace_sampled": true}})).build()?;
    for bad in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "garbage",
    ] {
        let out = host.send(
            Request::get("/")
                .header("traceparent", bad)
                .header("tracestate", "rojo=1"),
        )?;
        let tp = out.upstream_header("traceparent").expect("traceparent");
        let (trace_id, _, flags) = traceparent_parts(&tp).unwrap_or_else(|| panic!("{tp}"));
        assert_ne!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
        assert_eq!(flags, "01", "new_trace_sampled");
        assert_eq!(out.upstream_header("tracestate"), None, "{bad}");
    }
    let twice = host.send(
        Request::get("/")
            .header("traceparent", TP)
            .header("traceparent", TP),
    )?;
    let up = twice.upstream_headers.clone().expect("upstream");
    assert_eq!(up.get_all("traceparent").len(), 1);
    assert_ne!(
        up.get("traceparent").as_deref(),
        Some(TP),
        "two traceparents are invalid"
    );
    no_traps(&host);
    Ok(())
}

#[test]
fn invalid_tracestate_alone_is_dropped() -> TestResult {
    let host = audit(json!({})).build()?;
    let out = host.send(
        Request::get("/")
            .header("traceparent", TP)
            .header("tracestate", "Bad Key=1"),
    )?;
    assert_eq!(out.upstream_header("traceparent").as_deref(), Some(TP));
    assert_eq!(out.upstream_header("tracestate"), None);
    Ok(())
}

#[test]
fn b3_headers_give_the_trace_when_there_is_no_traceparent() -> TestResult {
    let host = audit(json!({})).build()?;
    let single = host.send(Request::get("/").header(
        "b3",
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
    ))?;
    assert_eq!(
        single.upstream_header("traceparent").as_deref(),
        Some("00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01")
    );
    assert_eq!(
        single.upstream_header("b3").as_deref(),
        Some("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"),
        "B3 headers are left alone"
    );
    assert_eq!(
        record(&single)["attributes"]["meshguard.trace_source"],
        "b3"
    );

    let multi = host.send(
        Request::get("/")
            .header("x-b3-traceid", "a3ce929d0e0e4736")
            .header("x-b3-spanid", "00f067aa0ba902b7")
            .header("x-b3-sampled", "0"),
    )?;
    assert_eq!(
        multi.upstream_header("traceparent").as_deref(),
        Some("00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-00")
    );
    assert_eq!(
        record(&multi)["trace_id"],
        "0000000000000000a3ce929d0e0e4736"
    );

    let both = host.send(
        Request::get("/")
            .header("traceparent", TP)
            .header("b3", "a3ce929d0e0e4736-00f067aa0ba902b7"),
    )?;
    assert_eq!(
        both.upstream_header("traceparent").as_deref(),
        Some(TP),
        "W3C wins"
    );
    no_traps(&host);
    Ok(())
}

#[test]
fn request_id_is_echoed_on_upstream_errors_and_can_be_renamed() -> TestResult {
    let host = audit(json!({"request_id": {"header": "x-correlation-id"}})).build()?;
    let out = host.send(
        Request::get("/")
            .header("x-correlation-id", "corr-1")
            .respond_with(HttpResponse::status(503)),
    )?;
    assert_eq!(out.status, 503);
    assert_eq!(
        out.response_header("x-correlation-id").as_deref(),
        Some("corr-1")
    );
    assert_eq!(out.upstream_header("x-request-id"), None);
    assert_eq!(record(&out)["request_id"], "corr-1");

    let quiet = audit(json!({"request_id": {"echo_in_response": false}})).build()?;
    let out = quiet.send(Request::get("/").header("x-request-id", "r-1"))?;
    assert_eq!(out.response_header("x-request-id"), None);
    Ok(())
}

#[test]
fn spec_lifecycle_order_gives_the_same_record() -> TestResult {
    // on_done before on_log (the spec's order, gotcha 18): the record must not depend on it.
    let host = audit(json!({})).lifecycle(Lifecycle::Spec).build()?;
    let out = host.send(Request::get("/").header("x-request-id", "spec-1"))?;
    assert_eq!(record(&out)["request_id"], "spec-1");
    assert_eq!(record(&out)["attributes"]["meshguard.decision"], "allow");
    no_traps(&host);
    Ok(())
}
