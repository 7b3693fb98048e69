//! Per-request cost of the rate limiter natively: `evaluate` against an in-process shared data
//! with Envoy's CAS semantics (so the numbers exclude hostcall cost; the harness benchmark
//! `cargo bench -p meshguard-tests --bench ratelimit_bench` adds it).
//!
//! Run: `cargo bench -p meshguard-core --bench limiter`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use meshguard_core::config::FilterConfig;
use meshguard_core::limiter::memory::MemoryStore;
use meshguard_core::limiter::store::prepare;
use meshguard_core::limiter::{evaluate, RateLimitConfig, RequestView};
use serde_json::json;

const SALT: &[u8] = b"0123456789abcdef";

fn config(json: serde_json::Value) -> RateLimitConfig {
    RateLimitConfig::parse(json.to_string().as_bytes()).unwrap()
}

fn bench(c: &mut Criterion) {
    let one = config(
        json!({"rules": [{"name": "per_user", "descriptors": [{"jwt_claim": "sub"}],
        "limits": [{"token_bucket": {"max_tokens": 1_000_000_000u64, "tokens_per_fill": 1, "fill_interval": "1s"}}],
        "max_keys": 10000}]}),
    );
    let full = config(json!({"rules": [
        {"name": "per_user", "descriptors": [{"jwt_claim": "sub"}, "remote_address"],
         "limits": [{"token_bucket": {"max_tokens": 1_000_000_000u64, "tokens_per_fill": 1, "fill_interval": "1s"}},
                    {"sliding_window": {"requests": 1_000_000_000u64, "window": "1h"}}],
         "limits_by_claim": {"claim": "plan", "tiers": {"gold": [{"token_bucket": {"max_tokens": 1_000_000_000u64, "fill_interval": "1s"}}]}},
         "max_keys": 10000},
        {"name": "logins", "match": {"path": "/login", "methods": ["POST"]}, "descriptors": ["remote_address"],
         "limits": [{"sliding_window": {"requests": 5, "window": "15m"}}], "count_on_response_statuses": [401]}]}));
    let payload = json!({"sub": "alice", "plan": "gold", "iss": "https://idp"});
    let headers = vec![("x-forwarded-for".to_owned(), b"203.0.113.9".to_vec())];
    let view = RequestView {
        method: "GET",
        path: "/api/orders?page=2",
        headers: &headers,
        source_address: Some("10.1.2.3:51234"),
        mtls_principal: None,
        jwt_payload: Some(&payload),
        jwt_subject: Some("alice"),
    };

    let mut store = MemoryStore::new();
    prepare(&mut store, &one).unwrap();
    c.bench_function("limiter/one_rule_token_bucket_same_key", |b| {
        b.iter(|| black_box(evaluate(&one, SALT, black_box(&view), &mut store, 1_000)))
    });

    let mut store = MemoryStore::new();
    prepare(&mut store, &full).unwrap();
    c.bench_function("limiter/two_limits_tier_two_descriptors_same_key", |b| {
        b.iter(|| black_box(evaluate(&full, SALT, black_box(&view), &mut store, 1_000)))
    });

    let mut store = MemoryStore::new();
    prepare(&mut store, &one).unwrap();
    let mut i = 0u64;
    c.bench_function("limiter/one_rule_unique_key_flood", |b| {
        b.iter(|| {
            i += 1;
            let p = json!({"sub": i.to_string()});
            let v = RequestView {
                jwt_payload: Some(&p),
                ..view
            };
            black_box(evaluate(&one, SALT, &v, &mut store, 1_000))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
