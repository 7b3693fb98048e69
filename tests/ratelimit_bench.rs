//! Per-request cost of the ratelimit filter in the harness (compiled .wasm on wasmtime, every
//! hostcall included), next to the passthrough filter as the host's floor.
//!
//! `cargo bench -p meshguard-tests --bench ratelimit_bench` (the native limiter math alone:
//! `cargo bench -p meshguard-core --bench limiter`). Short warm-up and measurement times by
//! default so the run stays in minutes on a loaded 2-core machine; the release build it needs
//! (wasmtime with fat LTO) is the slow part, once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use meshguard_core::handoff;
use meshguard_harness::{properties, Clock, Host, Request};
use meshguard_wasm_artifacts::{PASSTHROUGH, RATELIMIT};
use serde_json::json;

fn host(wasm: &str, config: serde_json::Value) -> Host {
    Host::builder(wasm)
        .vm_id("rl")
        .plugin_config_json(config)
        .workers(2)
        .clock(Clock::fixed_unix(1_700_000_000))
        .record_hostcalls(false)
        .property(
            &["source", "address"],
            properties::string("192.0.2.10:40000"),
        )
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let huge = json!({"token_bucket": {"max_tokens": 1_000_000_000u64, "tokens_per_fill": 1, "fill_interval": "1s"}});
    let passthrough = host(PASSTHROUGH, json!({}));
    let one = host(
        RATELIMIT,
        json!({"rules": [{"name": "per_user", "descriptors": [{"jwt_claim": "sub"}], "limits": [huge],
            "max_keys": 1000}]}),
    );
    let full = host(
        RATELIMIT,
        json!({"rules": [
            {"name": "per_user", "descriptors": [{"jwt_claim": "sub"}, "remote_address"],
             "limits": [huge, {"sliding_window": {"requests": 1_000_000_000u64, "window": "1h"}}],
             "limits_by_claim": {"claim": "plan", "tiers": {"gold": [huge]}}, "max_keys": 1000},
            {"name": "logins", "match": {"path": "/login", "methods": ["POST"]}, "descriptors": ["remote_address"],
             "limits": [{"sliding_window": {"requests": 5, "window": "15m"}}], "count_on_response_statuses": [401]}],
            "headers_on_allowed": true}),
    );
    let payload = json!({"sub": "alice", "plan": "gold"})
        .to_string()
        .into_bytes();
    let request = || Request::get("/api/orders").property(&[handoff::JWT_PAYLOAD], payload.clone());

    let mut group = c.benchmark_group("harness_request");
    group.bench_function("passthrough", |b| {
        b.iter(|| black_box(passthrough.send(request()).unwrap()))
    });
    group.bench_function("ratelimit_one_rule", |b| {
        b.iter(|| black_box(one.send(request()).unwrap()))
    });
    group.bench_function("ratelimit_two_rules_two_limits_headers", |b| {
        b.iter(|| black_box(full.send(request()).unwrap()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
