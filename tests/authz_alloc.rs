//! Authz evaluation makes no heap allocation proportional to the number of rules: the same
//! request is evaluated against 10 and 1000 rules under a counting global allocator, and the
//! allocation count must not grow.
//!
//! Every rule passes the path index and the method/path/principal checks and is decided only
//! by its last conditions (a request header given twice, so Envoy-style joining is exercised,
//! a claim, a typed claim and scopes), so each of the 1000 rules is evaluated in full.
//!
//! One test in this binary on purpose: the allocator is process-wide, and a second test
//! running in parallel would be counted too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::hint::black_box;

use meshguard_core::config::FilterConfig;
use meshguard_core::policy::{ip, Authorizer, Jwt, Outcome, Request};
use serde_json::{json, Value};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn config(rules: usize) -> Authorizer {
    let rule = |i: usize| {
        json!({
            "name": format!("r{i}"),
            "from": [{"source": {"principals": ["cluster.local/ns/prod/sa/web"],
                                 "not_namespaces": ["dev"]}}],
            "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/api/{*}/items/{**}"],
                                  "hosts": ["*.example.com"]}}],
            "when": [
                {"key": "request.headers[x-tenant]", "values": [format!("t{i},*")]},
                {"key": "request.auth.claims[groups]", "values": [format!("g{i}"), "all"]},
                {"claim": "realm_access.roles", "contains_any": [format!("role{i}"), "reader"]},
                {"scopes": {"all_of": ["items:read"]}}
            ]
        })
    };
    let policies: Vec<Value> = (0..rules.div_ceil(10))
        .map(|p| {
            let range = p * 10..((p + 1) * 10).min(rules);
            json!({"name": format!("p{p}"), "rules": range.map(rule).collect::<Vec<_>>()})
        })
        .collect();
    let mut all = vec![json!({"name": "deny-admin", "action": "DENY",
        "rules": [{"to": [{"operation": {"paths": ["/admin/{**}"]}}]},
                  {"when": [{"key": "request.headers[x-tenant]", "values": ["blocked*"]}]}]})];
    all.extend(policies);
    Authorizer::parse(json!({ "policies": all }).to_string().as_bytes()).unwrap()
}

/// The fewest allocations seen over a few evaluations (after a warm-up one).
fn allocations(authz: &Authorizer, request: &Request<'_>) -> usize {
    black_box(authz.evaluate(request));
    (0..5)
        .map(|_| {
            let region = Region::new(GLOBAL);
            black_box(authz.evaluate(black_box(request)));
            region.change().allocations
        })
        .min()
        .unwrap_or(usize::MAX)
}

#[test]
fn evaluation_allocations_do_not_grow_with_the_rule_count() {
    // The counter works: an allocation is seen.
    let region = Region::new(GLOBAL);
    black_box(vec![0u8; 64]);
    assert!(region.change().allocations >= 1);

    let payload = json!({"iss": "https://idp.example.com", "sub": "alice",
        "groups": ["all"], "realm_access": {"roles": ["reader"]}, "scope": "items:read"});
    let request_for = |headers: &'static [(String, Vec<u8>)]| Request {
        source_ip: ip::parse_address("10.1.2.3:45678"),
        peer_identity: Some("spiffe://cluster.local/ns/prod/sa/web"),
        jwt: Some(Jwt {
            issuer: Some("https://idp.example.com"),
            subject: Some("alice"),
            payload: &payload,
        }),
        ..Request::from_headers(headers)
    };
    let headers = |tenant: &str| -> &'static [(String, Vec<u8>)] {
        let list = vec![
            (":method".to_owned(), b"GET".to_vec()),
            (":path".to_owned(), b"/api/v1/items/42?page=2".to_vec()),
            (":authority".to_owned(), b"api.example.com".to_vec()),
            ("x-tenant".to_owned(), tenant.as_bytes().to_vec()),
            ("x-tenant".to_owned(), b"eu".to_vec()),
        ];
        Box::leak(list.into_boxed_slice())
    };

    let mut counts = Vec::new();
    for rules in [10usize, 1000] {
        let authz = config(rules);
        let last = request_for(headers(&format!("t{}", rules - 1)));
        let none = request_for(headers("nobody"));
        assert_eq!(authz.evaluate(&last).outcome, Outcome::Allow);
        assert_eq!(
            authz.evaluate(&last).recorded.rule_name(),
            Some(format!("r{}", rules - 1).as_str())
        );
        assert_eq!(authz.evaluate(&none).outcome, Outcome::Deny);
        counts.push((
            rules,
            allocations(&authz, &last),
            allocations(&authz, &none),
        ));
    }
    println!("(rules, allocations when the last rule matches, when none does): {counts:?}");
    let (_, last_10, none_10) = counts[0];
    let (_, last_1000, none_1000) = counts[1];
    assert!(
        last_1000 <= last_10 && none_1000 <= none_10,
        "allocations grow with the rule count: {counts:?}"
    );
}
