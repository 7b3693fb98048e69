//! Per-request cost of authz policy evaluation natively, for 10, 100 and 1000 rules, and the
//! number of heap allocations one evaluation makes (counted with `stats_alloc`; it must not grow
//! with the number of rules).
//!
//! Every rule has the shape of a real one: a principal, methods, a path template, an Istio claim
//! condition and a typed claim condition. The request carries the principal and method of every
//! rule, so each rule is evaluated down to its path template; only the last rule (or none)
//! matches, the worst case for a first-match scan.
//!
//! Run: `cargo bench -p meshguard-core --bench policy`.
//!
//! Instruction counts (stable on a loaded machine): with `POLICY_BENCH_ONCE=<rules>` the binary
//! builds that config, evaluates the last-rule request once outside the measured function (to
//! warm up), then once through `evaluate_once` and exits; count that call with
//! `valgrind --tool=callgrind --toggle-collect='*evaluate_once*' target/release/deps/policy-<hash>`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion};
use meshguard_core::config::FilterConfig;
use meshguard_core::policy::{ip, Authorizer, Jwt, Outcome, Request};
use serde_json::{json, Value};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const RULES_PER_POLICY: usize = 10;

/// `rules` rules in ALLOW policies of 10 rules each, plus one DENY policy evaluated first.
fn config(rules: usize) -> Authorizer {
    let rule = |i: usize| {
        json!({
            "name": format!("r{i}"),
            "from": [{"source": {"principals": ["cluster.local/ns/prod/sa/web"]}}],
            "to": [{"operation": {"methods": ["GET", "POST"], "paths": [format!("/api/v{i}/{{*}}/items/{{**}}")]}}],
            "when": [
                {"key": "request.auth.claims[groups]", "values": [format!("g{i}"), "all"]},
                {"claim": "realm_access.roles", "contains_any": [format!("role{i}"), "reader"]}
            ]
        })
    };
    let mut policies = vec![json!({"name": "deny-admin", "action": "DENY",
        "rules": [{"to": [{"operation": {"paths": ["/admin/{**}"]}}]}]})];
    for p in 0..rules.div_ceil(RULES_PER_POLICY) {
        let range = p * RULES_PER_POLICY..((p + 1) * RULES_PER_POLICY).min(rules);
        policies
            .push(json!({"name": format!("p{p}"), "rules": range.map(rule).collect::<Vec<_>>()}));
    }
    let json = json!({ "policies": policies }).to_string();
    Authorizer::parse(json.as_bytes()).unwrap()
}

struct Fixture {
    headers: Vec<(String, Vec<u8>)>,
    payload: Value,
}

impl Fixture {
    fn new(path: &str) -> Self {
        Fixture {
            headers: vec![
                (":method".into(), b"GET".to_vec()),
                (":path".into(), path.as_bytes().to_vec()),
                (":authority".into(), b"api.example.com".to_vec()),
                ("user-agent".into(), b"bench".to_vec()),
                ("accept".into(), b"application/json".to_vec()),
            ],
            payload: json!({"iss": "https://idp.example.com", "sub": "alice",
                "groups": ["all"], "realm_access": {"roles": ["reader"]}, "scope": "items:read"}),
        }
    }

    fn request(&self) -> Request<'_> {
        Request {
            source_ip: ip::parse_address("10.1.2.3:45678"),
            peer_identity: Some("spiffe://cluster.local/ns/prod/sa/web"),
            jwt: Some(Jwt {
                issuer: Some("https://idp.example.com"),
                subject: Some("alice"),
                payload: &self.payload,
            }),
            ..Request::from_headers(&self.headers)
        }
    }
}

/// Heap allocations made by one evaluation (after a warm-up one).
fn allocations_per_evaluation(authz: &Authorizer, request: &Request<'_>) -> usize {
    black_box(authz.evaluate(request));
    let region = Region::new(GLOBAL);
    black_box(authz.evaluate(request));
    region.change().allocations
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("authz_evaluate");
    for rules in [10usize, 100, 1000] {
        let authz = config(rules);
        let last = Fixture::new(&format!("/api/v{}/acme/items/42/x?page=2", rules - 1));
        let none = Fixture::new("/api/unknown/acme/items/42");
        let (last_req, none_req) = (last.request(), none.request());
        assert_eq!(authz.evaluate(&last_req).outcome, Outcome::Allow);
        assert_eq!(authz.evaluate(&none_req).outcome, Outcome::Deny);
        println!(
            "authz_evaluate rules={rules}: heap allocations per evaluation: last-rule match {}, no match {}",
            allocations_per_evaluation(&authz, &last_req),
            allocations_per_evaluation(&authz, &none_req),
        );
        group.bench_with_input(
            BenchmarkId::new("last_rule_matches", rules),
            &rules,
            |b, _| b.iter(|| black_box(authz.evaluate(black_box(&last_req)))),
        );
        group.bench_with_input(
            BenchmarkId::new("no_rule_matches", rules),
            &rules,
            |b, _| b.iter(|| black_box(authz.evaluate(black_box(&none_req)))),
        );
    }
    group.finish();

    // For scale: what the filter does once per request before evaluating.
    let payload = Fixture::new("/").payload.to_string();
    c.bench_function("authz_jwt_payload_parse", |b| {
        b.iter(|| black_box(serde_json::from_str::<Value>(black_box(&payload)).unwrap()))
    });
    c.bench_function("authz_compile_100_rules", |b| {
        b.iter(|| black_box(config(100)))
    });
}

/// The one evaluation callgrind counts (kept out of line so it has a symbol).
#[inline(never)]
fn evaluate_once(authz: &Authorizer, request: &Request<'_>) -> Outcome {
    authz.evaluate(request).outcome
}

criterion_group!(benches, bench);

fn main() {
    if let Some(rules) = std::env::var("POLICY_BENCH_ONCE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let authz = config(rules);
        let fixture = Fixture::new(&format!("/api/v{}/acme/items/42/x?page=2", rules - 1));
        let request = fixture.request();
        black_box(authz.evaluate(&request));
        let outcome = evaluate_once(black_box(&authz), black_box(&request));
        assert_eq!(outcome, Outcome::Allow);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
