//! The audit record and the metrics: allowed, denied by an earlier filter, upstream error;
//! sinks, redaction, sampling, config errors.

use meshguard_core::audit::sampling::Sampler;
use meshguard_harness::{HarnessError, HttpResponse, LogLevel, Request};
use serde_json::json;

use crate::support::*;

fn requests(decision: &str, class: &str) -> String {
    format!("meshguard_audit_requests_total_decision=.={decision};.;_status_class=.={class};.;")
}

fn records(outcome: &str) -> String {
    format!("meshguard_audit_records_total_outcome=.={outcome};.;")
}

#[test]
fn allowed_request_record_goes_to_the_log_and_filter_state() -> TestResult {
    let host = audit(json!({})).build()?;
    let out = host.send(
        Request::get("/orders/7?access_token=eyJsecret&page=2")
            .authority("api.example.com:8443")
            .header("x-request-id", "rid-allowed")
            .header("authorization", "Bearer eyJsecret")
            .peer("spiffe://cluster.local/ns/web/sa/frontend")
            .property(&["source", "address"], "10.1.2.3:50000")
            .property(&["meshguard.jwt_authn.outcome"], "verified")
            .property(&["meshguard.jwt_authn.subject"], "alice")
            .property(&["meshguard.authz.decision"], "allow")
            .property(&["meshguard.authz.policy"], "orders")
            .property(&["meshguard.authz.rule"], "read")
            .property(&["meshguard.ratelimit.decision"], "allow")
            .property(&["meshguard.ratelimit.remaining"], "9"),
    )?;
    let r = record(&out);
    assert_eq!(r["severity_text"], "INFO");
    assert_eq!(r["event_name"], "meshguard.audit");
    assert_eq!(r["body"], "request allowed");
    assert_eq!(r["request_id"], "rid-allowed");
    assert!(
        r["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{r}"
    );
    assert!(r["time_unix_nano"]
        .as_str()
        .is_some_and(|t| t.parse::<u64>().is_ok()));
    let a = &r["attributes"];
    assert_eq!(a["http.request.method"], "GET");
    assert_eq!(a["server.address"], "api.example.com");
    assert_eq!(a["server.port"], 8443);
    assert_eq!(a["url.path"], "/orders/7");
    assert!(a.get("url.query").is_none(), "query stripped by default");
    assert_eq!(a["http.response.status_code"], 200);
    assert_eq!(a["client.address"], "10.1.2.3");
    assert_eq!(a["client.port"], 50000);
    assert_eq!(a["user.id"], "alice");
    assert_eq!(
        a["meshguard.peer.principal"],
        "spiffe://cluster.local/ns/web/sa/frontend"
    );
    assert_eq!(a["meshguard.decision"], "allow");
    assert_eq!(a["meshguard.authz.policy"], "orders");
    assert_eq!(a["meshguard.authz.rule"], "read");
    assert_eq!(a["meshguard.ratelimit.remaining"], 9);
    assert!(a["meshguard.duration_ms"].as_f64().is_some(), "{a}");

    let logged: Vec<_> = out
        .logs
        .iter()
        .filter(|l| l.filter == "audit" && l.message.starts_with('{'))
        .collect();
    assert_eq!(logged.len(), 1, "{:?}", out.logs);
    assert_eq!(logged[0].level, LogLevel::Info);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&logged[0].message)?,
        r
    );
    let everything = format!("{:?} {:?}", out.logs, out.filter_state);
    assert!(
        !everything.contains("eyJsecret"),
        "the token leaked: {everything}"
    );
    assert_eq!(host.counter(&requests("allow", "2xx")), 1);
    assert_eq!(host.counter(&records("emitted")), 1);
    no_traps(&host);
    Ok(())
}

#[test]
fn requests_denied_by_an_earlier_filter_get_a_record() -> TestResult {
    // The probe stands in for jwt-authn (401), authz (403) and ratelimit (429): it writes the
    // hand-off and sends the local reply, so the audit filter sees only on_log.
    let host = probe_then_audit(json!({})).build()?;
    let cases = [
        (401, "set_state:meshguard.jwt_authn.outcome=failed;set_state:meshguard.jwt_authn.reason=expired", "jwt_authn"),
        (403, "set_state:meshguard.jwt_authn.outcome=verified;set_state:meshguard.authz.decision=deny;set_state:meshguard.authz.policy=admins", "authz"),
        (429, "set_state:meshguard.authz.decision=allow;set_state:meshguard.ratelimit.decision=limited;set_state:meshguard.ratelimit.remaining=0", "ratelimit"),
        (503, "", "other"),
    ];
    for (status, state, stage) in cases {
        let ops = if state.is_empty() {
            format!("local_reply:{status}")
        } else {
            format!("{state};local_reply:{status}")
        };
        let out = host.send(
            Request::get("/admin?token=x")
                .header("x-request-id", format!("rid-{status}"))
                .header("x-meshguard-subject", "spoofed")
                .header("x-probe-request_headers", ops),
        )?;
        assert_eq!(out.status, status);
        assert!(
            out.upstream_headers.is_none(),
            "{status} reached the upstream"
        );
        assert_eq!(
            out.response_header("x-request-id"),
            None,
            "audit saw no response"
        );
        let r = record(&out);
        assert_eq!(r["request_id"], format!("rid-{status}"));
        assert_eq!(r["severity_text"], "WARN");
        assert_eq!(r["body"], format!("request denied by {stage}"));
        let a = &r["attributes"];
        assert_eq!(a["meshguard.decision"], "deny", "{status}");
        assert_eq!(a["meshguard.denied_by"], stage, "{status}");
        assert_eq!(a["http.response.status_code"], status, "{status}");
        assert_eq!(a["url.path"], "/admin");
        assert!(
            r.get("trace_id").is_none(),
            "no trace started for a denied request"
        );
    }
    let r401 = host.send(Request::get("/").header(
        "x-probe-request_headers",
        "set_state:meshguard.jwt_authn.outcome=missing;local_reply:401",
    ))?;
    let id = record(&r401)["request_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(is_uuid_v4(&id), "generated when Envoy set none: {id}");
    assert_eq!(host.counter(&requests("deny", "4xx")), 4);
    assert_eq!(host.counter(&requests("deny", "5xx")), 1);
    assert_eq!(host.counter(&requests("allow", "2xx")), 0);
    no_traps(&host);
    Ok(())
}

#[test]
fn upstream_error_is_recorded_as_allowed_with_error_severity() -> TestResult {
    let host = audit(json!({})).build()?;
    let out = host.send(Request::get("/").respond_with(HttpResponse::status(503)))?;
    assert_eq!(out.status, 503);
    let r = record(&out);
    assert_eq!(r["severity_text"], "ERROR");
    assert_eq!(r["attributes"]["meshguard.decision"], "allow");
    assert_eq!(r["attributes"]["http.response.status_code"], 503);
    assert_eq!(host.counter(&requests("allow", "5xx")), 1);
    Ok(())
}

#[test]
fn redaction_of_query_headers_and_token() -> TestResult {
    let host = audit(json!({
        "log_level": "warn",
        "redaction": {
            "query": "keep",
            "redact_query_params": ["access_token"],
            "include_headers": ["user-agent", "authorization", "x-api-key", "cookie"],
            "token_digest": true
        }
    }))
    .build()?;
    let out = host.send(
        Request::get("/o?page=2&access_token=eyJsecret")
            .header("user-agent", "curl/8")
            .header("authorization", "Bearer abc")
            .header("x-api-key", "k-123")
            .header("cookie", "session=s3cr3t"),
    )?;
    let r = record(&out);
    let a = &r["attributes"];
    assert_eq!(a["url.query"], "page=2&access_token=REDACTED");
    assert_eq!(a["http.request.header.user-agent"], json!(["curl/8"]));
    assert_eq!(a["http.request.header.authorization"], json!(["REDACTED"]));
    assert_eq!(a["http.request.header.x-api-key"], json!(["REDACTED"]));
    assert_eq!(a["http.request.header.cookie"], json!(["REDACTED"]));
    assert_eq!(
        a["meshguard.token_digest"], "ba7816bf8f01cfea",
        "sha256(\"abc\") prefix"
    );
    let everything = format!("{:?} {:?}", out.logs, out.filter_state);
    for secret in ["eyJsecret", "Bearer abc", "k-123", "s3cr3t"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    assert!(out
        .logs
        .iter()
        .any(|l| l.level == LogLevel::Warn && l.message.starts_with('{')));

    let redact_all = audit(json!({"redaction": {"query": "redact"}})).build()?;
    let out = redact_all.send(Request::get("/o?page=2&q=x"))?;
    assert_eq!(
        record(&out)["attributes"]["url.query"],
        "page=REDACTED&q=REDACTED"
    );
    Ok(())
}

#[test]
fn sampling_is_deterministic_on_the_request_id() -> TestResult {
    let host = audit(json!({"sample_rate": 0.5})).build()?;
    let sampler = Sampler::new(0.5);
    let (mut kept, mut dropped) = (0, 0);
    for i in 0..40 {
        let id = format!("sample-{i}");
        let out = host.send(Request::get("/").header("x-request-id", id.as_str()))?;
        let has_record = out.filter_state.contains_key(RECORD);
        assert_eq!(has_record, sampler.keeps(&id), "{id}");
        if has_record {
            kept += 1
        } else {
            dropped += 1
        }
    }
    assert!(kept > 5 && dropped > 5, "kept {kept}, dropped {dropped}");
    assert_eq!(host.counter(&records("emitted")), kept);
    assert_eq!(host.counter(&records("sampled_out")), dropped);
    assert_eq!(
        host.counter(&requests("allow", "2xx")),
        40,
        "every request is counted"
    );

    let none = audit(json!({"sample_rate": 0})).build()?;
    let out = none.send(Request::get("/"))?;
    assert!(!out.filter_state.contains_key(RECORD));
    assert!(!out.logs.iter().any(|l| l.message.starts_with('{')));
    Ok(())
}

#[test]
fn denied_only_mode_and_sinks_off() -> TestResult {
    let host = probe_then_audit(json!({"record": "denied_only", "log_level": null})).build()?;
    let allowed = host.send(Request::get("/"))?;
    assert!(!allowed.filter_state.contains_key(RECORD));
    let denied = host.send(Request::get("/").header(
        "x-probe-request_headers",
        "set_state:meshguard.authz.decision=deny;local_reply:403",
    ))?;
    assert_eq!(
        record(&denied)["attributes"]["meshguard.denied_by"],
        "authz"
    );
    assert!(
        !denied
            .logs
            .iter()
            .any(|l| l.filter == "audit" && l.message.starts_with('{')),
        "log sink off"
    );
    assert_eq!(host.counter(&records("not_selected")), 1);

    let no_state = audit(json!({"filter_state": false})).build()?;
    let out = no_state.send(Request::get("/"))?;
    assert!(!out.filter_state.contains_key(RECORD));
    assert!(out
        .logs
        .iter()
        .any(|l| l.filter == "audit" && l.message.starts_with('{')));
    Ok(())
}

#[test]
fn invalid_config_is_refused_with_the_field_path() -> TestResult {
    for (config, expected) in [
        (json!({"sample_rat": 1}), "unknown field `sample_rat`"),
        (
            json!({"sample_rate": 2}),
            "sample_rate: 2 is not between 0 and 1",
        ),
        (
            json!({"upstream_headers": {"subject": "Bad Name"}}),
            "upstream_headers.subject:",
        ),
        (json!({"redaction": {"query": "hide"}}), "redaction.query:"),
    ] {
        match audit(config.clone()).build() {
            Err(HarnessError::ConfigureRejected { logs, .. }) => {
                assert!(
                    logs.iter().any(|l| l.contains(expected)),
                    "{config}: {logs:?}"
                );
            }
            Err(e) => panic!("{config}: unexpected error {e}"),
            Ok(host) => panic!("{config}: accepted; logs {:?}", host.logs()),
        }
    }
    // No config at all is the default config.
    let host = meshguard_harness::Host::builder(meshguard_wasm_artifacts::AUDIT).build()?;
    assert_eq!(host.send(Request::get("/"))?.status, 200);
    Ok(())
}
