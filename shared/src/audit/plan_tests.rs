#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::audit::config::RecordMode;
use crate::audit::sampling::Sampler;
use crate::audit::stages::{Decision, DeniedBy};
use crate::config::FilterConfig;
use wasm_bindgen_test::wasm_bindgen_test;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn random() -> impl FnMut(&mut [u8]) {
    |buf: &mut [u8]| buf.fill(0x5a)
}

fn set<'a>(plan: &'a RequestPlan, name: &str) -> Option<&'a str> {
    plan.edits
        .set
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[wasm_bindgen_test(unsupported = test)]
fn request_plan_keeps_valid_ids_and_strips_spoofed_headers() {
    let config = AuditConfig::default();
    let h = headers(&[
        (":path", "/"),
        ("x-request-id", "abc-123"),
        ("traceparent", TP),
        ("x-meshguard-subject", "admin"),
        ("x-meshguard-authz-decision", "allow"),
    ]);
    let plan = request_plan(&config, &h, &Handoff::default(), None, &mut random());
    assert_eq!(plan.request_id.as_str(), "abc-123");
    assert!(!plan.request_id.is_generated());
    assert_eq!(plan.trace.source, TraceSource::W3c);
    assert!(plan.edits.set.is_empty(), "{:?}", plan.edits.set);
    assert!(plan.edits.remove.iter().any(|r| r == "x-meshguard-subject"));
    assert!(plan
        .edits
        .remove
        .iter()
        .any(|r| r == "x-meshguard-authz-decision"));
}

#[wasm_bindgen_test(unsupported = test)]
fn request_plan_generates_ids_and_a_trace() {
    let config = AuditConfig::default();
    let h = headers(&[("x-request-id", "bad id\r\n"), ("tracestate", "a=1")]);
    let plan = request_plan(&config, &h, &Handoff::default(), None, &mut random());
    assert!(plan.request_id.is_generated());
    assert_eq!(set(&plan, "x-request-id"), Some(plan.request_id.as_str()));
    assert_eq!(plan.trace.source, TraceSource::New);
    assert_eq!(
        set(&plan, "traceparent"),
        Some("00-5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a-5a5a5a5a5a5a5a5a-00")
    );
    assert!(plan.edits.remove.iter().any(|r| r == "tracestate"));
}

#[wasm_bindgen_test(unsupported = test)]
fn log_plan_for_a_seen_request_uses_what_the_request_phase_decided() {
    let config = AuditConfig::default();
    let h = headers(&[
        (":method", "GET"),
        (":path", "/a?b=c"),
        (":authority", "api"),
    ]);
    let trace = crate::audit::traceparent::parse(TP.as_bytes())
        .unwrap()
        .context;
    let seen = Seen {
        request_id: "rid-1".into(),
        trace: (trace, TraceSource::W3c),
    };
    let handoff = Handoff::default();
    let input = LogInput {
        seen: Some(&seen),
        request_headers: &h,
        handoff: &handoff,
        time_unix_nanos: 1,
        status: Some(200),
        duration_nanos: None,
        source_address: None,
        peer_principal: None,
    };
    let plan = log_plan(&config, &input, &mut random());
    assert_eq!(plan.verdict.decision, Decision::Allow);
    assert_eq!(plan.selection, Selection::Record);
    let record = plan.record.unwrap();
    assert_eq!(record.request_id, "rid-1");
    assert_eq!(
        record.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let v: serde_json::Value = serde_json::from_str(&record.to_json().unwrap()).unwrap();
    assert_eq!(v["attributes"]["url.path"], "/a");
    assert_eq!(v["attributes"]["server.address"], "api");
}

#[wasm_bindgen_test(unsupported = test)]
fn log_plan_for_a_request_denied_earlier() {
    let config = AuditConfig::default();
    let h = headers(&[
        (":method", "POST"),
        (":path", "/x"),
        ("x-request-id", "envoy-rid"),
    ]);
    let handoff = Handoff {
        authz_decision: Some("deny".into()),
        ..Default::default()
    };
    let input = LogInput {
        seen: None,
        request_headers: &h,
        handoff: &handoff,
        time_unix_nanos: 1,
        status: Some(403),
        duration_nanos: Some(1_000_000),
        source_address: Some("1.2.3.4:5"),
        peer_principal: None,
    };
    let plan = log_plan(&config, &input, &mut random());
    assert_eq!(plan.verdict.denied_by, Some(DeniedBy::Authz));
    let record = plan.record.unwrap();
    assert_eq!(record.request_id, "envoy-rid");
    assert_eq!(
        record.trace_id, None,
        "no trace is started for a denied request"
    );
    assert_eq!(record.severity_text, "WARN");

    let no_id = headers(&[(":path", "/x")]);
    let plan = log_plan(
        &config,
        &LogInput {
            request_headers: &no_id,
            ..input.clone()
        },
        &mut random(),
    );
    assert_eq!(
        plan.record.unwrap().request_id,
        "5a5a5a5a-5a5a-4a5a-9a5a-5a5a5a5a5a5a"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn log_plan_selection() {
    let mut config = AuditConfig::parse(br#"{"record": "denied_only"}"#).unwrap();
    let h = headers(&[("x-request-id", "abc")]);
    let handoff = Handoff::default();
    let seen = Seen {
        request_id: "abc".into(),
        trace: (
            crate::audit::traceparent::parse(TP.as_bytes())
                .unwrap()
                .context,
            TraceSource::W3c,
        ),
    };
    let allowed = LogInput {
        seen: Some(&seen),
        request_headers: &h,
        handoff: &handoff,
        time_unix_nanos: 1,
        status: Some(200),
        duration_nanos: None,
        source_address: None,
        peer_principal: None,
    };
    let plan = log_plan(&config, &allowed, &mut random());
    assert_eq!(plan.selection, Selection::NotSelected);
    assert!(plan.record.is_none());
    let denied = LogInput {
        seen: None,
        ..allowed.clone()
    };
    assert_eq!(
        log_plan(&config, &denied, &mut random()).selection,
        Selection::Record
    );

    config.record = RecordMode::All;
    config.sampler = Sampler::new(0.7); // hash("abc") / 2^64 ≈ 0.728
    let plan = log_plan(&config, &allowed, &mut random());
    assert_eq!(plan.selection, Selection::SampledOut);
    assert!(plan.record.is_none());
}
