//! Per-request cost of the audit logic, natively: the request phase (ids, trace, audit headers)
//! and `on_log` (verdict, sampling, record, JSON), on a typical admitted request.
//!
//! `cargo bench -p meshguard-core --bench audit`

use criterion::{criterion_group, criterion_main, Criterion};
use meshguard_core::audit::plan::{log_plan, request_plan, LogInput, Seen};
use meshguard_core::audit::stages::Handoff;
use meshguard_core::audit::AuditConfig;
use meshguard_core::config::FilterConfig;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn bench(c: &mut Criterion) {
    let config = AuditConfig::parse(b"{}").unwrap_or_default();
    let with_ids = headers(&[
        (":method", "GET"),
        (":path", "/orders/7?page=2"),
        (":authority", "api.example.com"),
        ("x-request-id", "3f2b8c1e-5d6a-4b7c-9e8f-0a1b2c3d4e5f"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ("user-agent", "curl/8.5"),
    ]);
    let without_ids: Vec<_> = with_ids
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "x-request-id" | "traceparent" | "tracestate"))
        .cloned()
        .collect();
    let handoff = Handoff {
        jwt_outcome: Some("verified".into()),
        jwt_subject: Some("alice".into()),
        jwt_issuer: Some("https://idp.example".into()),
        authz_decision: Some("allow".into()),
        authz_policy: Some("orders".into()),
        ratelimit_decision: Some("allow".into()),
        ratelimit_remaining: Some("9".into()),
        ..Default::default()
    };
    let peer = b"spiffe://cluster.local/ns/web/sa/frontend".as_slice();
    let mut random = |buf: &mut [u8]| buf.fill(0x5a);

    c.bench_function("audit request_plan (ids kept)", |b| {
        b.iter(|| request_plan(&config, &with_ids, &handoff, Some(peer), &mut random))
    });
    c.bench_function("audit request_plan (ids generated)", |b| {
        b.iter(|| request_plan(&config, &without_ids, &handoff, Some(peer), &mut random))
    });
    let plan = request_plan(&config, &with_ids, &handoff, Some(peer), &mut random);
    let seen = Seen {
        request_id: plan.request_id.as_str().to_string(),
        trace: (plan.trace.context, plan.trace.source),
    };
    let input = LogInput {
        seen: Some(&seen),
        request_headers: &with_ids,
        handoff: &handoff,
        time_unix_nanos: 1_700_000_000_123_456_789,
        status: Some(200),
        duration_nanos: Some(1_234_567),
        source_address: Some("10.1.2.3:50000"),
        peer_principal: Some("spiffe://cluster.local/ns/web/sa/frontend"),
    };
    c.bench_function("audit log_plan + JSON", |b| {
        b.iter(|| {
            let plan = log_plan(&config, &input, &mut random);
            plan.record.map(|r| r.to_json().map(|j| j.len()))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
