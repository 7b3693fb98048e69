//! Audit headers to the upstream: anti-spoofing, values from the hand-off, escaping.

use meshguard_harness::Request;
use serde_json::json;

use crate::support::*;

const AUDIT_HEADERS: [&str; 6] = [
    "x-meshguard-subject",
    "x-meshguard-issuer",
    "x-meshguard-peer",
    "x-meshguard-authz-decision",
    "x-meshguard-authz-policy",
    "x-meshguard-ratelimit",
];

fn spoofed(mut request: Request) -> Request {
    for name in AUDIT_HEADERS {
        request = request.header(name, "spoofed").header(name, "twice");
    }
    request
}

#[test]
fn spoofed_audit_headers_are_removed_even_with_nothing_to_set() -> TestResult {
    let host = audit(json!({})).build()?;
    let out = host.send(spoofed(Request::get("/")))?;
    let up = out.upstream_headers.clone().expect("upstream");
    for name in AUDIT_HEADERS {
        assert!(
            up.get_all(name).is_empty(),
            "{name} reached the upstream: {:?}",
            up.get_all(name)
        );
    }
    no_traps(&host);
    Ok(())
}

#[test]
fn renamed_and_disabled_headers_still_strip_every_name() -> TestResult {
    let host = audit(json!({
        "upstream_headers": {"subject": "x-user", "ratelimit": null}
    }))
    .build()?;
    let out = host.send(
        spoofed(Request::get("/"))
            .header("x-user", "root")
            .property(&["meshguard.jwt_authn.outcome"], "verified")
            .property(&["meshguard.jwt_authn.subject"], "alice")
            .property(&["meshguard.ratelimit.decision"], "allow"),
    )?;
    let up = out.upstream_headers.clone().expect("upstream");
    assert_eq!(up.get_all("x-user"), vec!["alice"]);
    assert!(up.get_all("x-meshguard-subject").is_empty());
    assert!(
        up.get_all("x-meshguard-ratelimit").is_empty(),
        "disabled: removed, not set"
    );
    Ok(())
}

#[test]
fn audit_headers_carry_the_earlier_filters_handoff() -> TestResult {
    // The probe filter writes filter state the way jwt-authn, authz and ratelimit do.
    let host = probe_then_audit(json!({})).build()?;
    let state = [
        ("meshguard.jwt_authn.outcome", "verified"),
        ("meshguard.jwt_authn.subject", "alice"),
        ("meshguard.jwt_authn.issuer", "https://idp.example"),
        ("meshguard.authz.decision", "allow"),
        ("meshguard.authz.policy", "orders-read"),
        ("meshguard.ratelimit.decision", "allow"),
        ("meshguard.ratelimit.remaining", "7"),
    ];
    let ops: Vec<String> = state
        .iter()
        .map(|(k, v)| format!("set_state:{k}={v}"))
        .collect();
    let out = host.send(
        spoofed(Request::get("/orders"))
            .header("x-probe-request_headers", ops.join(";"))
            .peer("spiffe://cluster.local/ns/web/sa/frontend"),
    )?;
    let up = out.upstream_headers.clone().expect("upstream");
    let one = |name: &str| {
        let all = up.get_all(name);
        assert_eq!(all.len(), 1, "{name}: {all:?}");
        all[0].clone()
    };
    assert_eq!(one("x-meshguard-subject"), "alice");
    assert_eq!(one("x-meshguard-issuer"), "https://idp.example");
    assert_eq!(
        one("x-meshguard-peer"),
        "spiffe://cluster.local/ns/web/sa/frontend"
    );
    assert_eq!(one("x-meshguard-authz-decision"), "allow");
    assert_eq!(one("x-meshguard-authz-policy"), "orders-read");
    assert_eq!(one("x-meshguard-ratelimit"), "allow; remaining=7");
    no_traps(&host);
    Ok(())
}

#[test]
fn subject_of_an_unverified_token_is_not_forwarded() -> TestResult {
    let host = audit(json!({})).build()?;
    let out = host.send(
        Request::get("/")
            .property(&["meshguard.jwt_authn.outcome"], "failed")
            .property(&["meshguard.jwt_authn.subject"], "mallory"),
    )?;
    assert_eq!(out.upstream_header("x-meshguard-subject"), None);
    Ok(())
}

#[test]
fn crlf_and_non_ascii_values_are_escaped_never_copied_raw() -> TestResult {
    let host = audit(json!({})).build()?;
    let out = host.send(
        Request::get("/")
            .property(&["meshguard.jwt_authn.outcome"], "verified")
            .property(&["meshguard.jwt_authn.subject"], "alice\r\nx-admin: true")
            .property(&["meshguard.jwt_authn.issuer"], "https://idp.example/zoë\0")
            .property(&["meshguard.authz.policy"], b"p\xff\x01".to_vec()),
    )?;
    let up = out.upstream_headers.clone().expect("upstream");
    assert_eq!(
        up.get("x-meshguard-subject").as_deref(),
        Some("alice%0D%0Ax-admin: true")
    );
    assert_eq!(
        up.get("x-meshguard-issuer").as_deref(),
        Some("https://idp.example/zo%C3%AB%00")
    );
    assert!(up.get("x-admin").is_none(), "no header injected");
    let policy = up.get("x-meshguard-authz-policy").expect("policy header");
    assert!(
        policy.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{policy:?}"
    );
    for (name, value) in up.entries() {
        assert!(
            !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "{name} carries a raw control byte"
        );
    }

    let drop = audit(json!({"upstream_headers": {"unsafe_values": "drop"}})).build()?;
    let out = drop.send(
        Request::get("/")
            .property(&["meshguard.jwt_authn.outcome"], "verified")
            .property(&["meshguard.jwt_authn.subject"], "alice\r\nx-admin: true")
            .property(&["meshguard.jwt_authn.issuer"], "https://idp.example"),
    )?;
    assert_eq!(out.upstream_header("x-meshguard-subject"), None, "dropped");
    assert_eq!(
        out.upstream_header("x-meshguard-issuer").as_deref(),
        Some("https://idp.example")
    );
    no_traps(&host);
    no_traps(&drop);
    Ok(())
}

#[test]
fn hostile_request_headers_do_not_trap() -> TestResult {
    let host = audit(json!({"redaction": {"include_headers": ["user-agent"]}})).build()?;
    let big = "x".repeat(60_000);
    let out = host.send(
        Request::get("/\u{7f}?q=\u{1}")
            .header("user-agent", b"\xff\xfe\r\n\0")
            .header("x-request-id", big.as_str())
            .header("traceparent", b"\xff")
            .header("b3", "-".repeat(5_000)),
    )?;
    assert_eq!(out.status, 200);
    let r = record(&out);
    assert_eq!(
        r["attributes"]["http.request.header.user-agent"],
        json!(["%FF%FE%0D%0A%00"])
    );
    no_traps(&host);
    Ok(())
}
