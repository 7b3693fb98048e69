//! The compiled authz filter in the harness, chained after the compiled jwt-authn filter
//! (tokens and keys from `fixtures/jwt_authn/fixtures.json`, inline JWKS, fake clock at the
//! fixtures' `now`): mTLS principal and claim rules, spoofed claim headers, dry-run, AUDIT,
//! per-rule responses, metrics, configure errors. `authz/handoff.rs` drives authz alone with the
//! jwt-authn hand-off set directly as stream properties (claims no fixture token carries, and
//! what authz does with a hand-off that is not `verified`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "authz/handoff.rs"]
mod handoff;
// The scenario runner shared with the ratelimit tests.
#[path = "ratelimit/scenarios.rs"]
mod scenarios;

use meshguard_harness::{Clock, HarnessError, Host, Outcome, Request};
use meshguard_wasm_artifacts::{AUTHZ, JWT_AUTHN};
use serde_json::{json, Value};

const FIXTURES: &str = include_str!("fixtures/jwt_authn/fixtures.json");
const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";

fn fx() -> Value {
    serde_json::from_str(FIXTURES).unwrap()
}

fn bearer(name: &str) -> String {
    format!("Bearer {}", fx()["tokens"][name].as_str().unwrap())
}

/// jwt-authn: provider `idp` (k1 inline), a missing token allowed, an invalid one refused;
/// claim headers on, so the upstream sees `x-roles` etc. (authz must not care).
fn jwt_config() -> Value {
    json!({
        "providers": {"idp": {
            "issuer": fx()["issuer"],
            "audiences": ["api"],
            "local_jwks": {"inline_string": fx()["jwks_k1"]},
            "claim_to_headers": [{"header_name": "x-roles", "claim_name": "roles"}]
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}]
    })
}

/// jwt-authn → authz on 2 workers.
fn chain(authz: Value) -> Host {
    Host::builder(JWT_AUTHN)
        .plugin_config_json(jwt_config())
        .then(AUTHZ)
        .plugin_config_json(authz)
        .workers(2)
        .clock(Clock::fixed_unix(fx()["now"].as_u64().unwrap()))
        .build()
        .unwrap()
}

pub(crate) fn state(out: &Outcome, key: &str) -> Option<String> {
    out.filter_state
        .get(&format!("wasm.meshguard.authz.{key}"))
        .cloned()
}

pub(crate) fn decision(out: &Outcome) -> (u16, Option<String>, Option<String>, Option<String>) {
    (
        out.status,
        state(out, "decision"),
        state(out, "policy"),
        state(out, "rule"),
    )
}

pub(crate) fn metric(policy: &str, decision: &str) -> String {
    format!("meshguard_authz_requests_total_policy=.={policy};.;_decision=.={decision};.;")
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// Identity (mTLS principal + JWT request principal) AND claims (Istio and typed).
fn orders_policy() -> Value {
    json!({"policies": [
        {"name": "deny-dev", "action": "DENY",
         "rules": [{"name": "dev-namespace", "from": [{"source": {"namespaces": ["dev"]}}]}]},
        {"name": "orders", "action": "ALLOW", "rules": [{
            "name": "web-alice",
            "from": [{"source": {
                "principals": ["cluster.local/ns/shop/sa/web"],
                "request_principals": ["https://idp.example.com/alice"]}}],
            "to": [{"operation": {"methods": ["GET"], "paths": ["/orders", "/orders/{*}"]}}],
            "when": [
                {"key": "request.auth.claims[realm_access][roles]", "values": ["r1"]},
                {"claim": "roles", "contains_all": ["admin", "dev"]},
                {"claim": "tier", "equals": "gold"}
            ]}]}
    ]})
}

#[test]
fn mtls_principal_and_claim_rules_through_the_real_jwt_chain() {
    let host = chain(orders_policy());
    let alice = || Request::get("/orders/42").header("authorization", bearer("valid_k1"));

    let out = host.send(alice().peer(WEB)).unwrap();
    assert_eq!(
        decision(&out),
        (200, s("allow"), s("orders"), s("web-alice"))
    );
    assert!(out.upstream_headers.is_some(), "forwarded");
    assert_eq!(out.upstream_header("x-roles").as_deref(), Some("admin,dev"));

    // Each part of the rule is needed.
    let denied = [
        ("no mTLS peer", alice()),
        (
            "another workload",
            alice().peer("spiffe://cluster.local/ns/shop/sa/batch"),
        ),
        (
            "another subject",
            Request::get("/orders/42")
                .header("authorization", bearer("valid_k1_bob"))
                .peer(WEB),
        ),
        ("no token", Request::get("/orders/42").peer(WEB)),
        (
            "wrong method",
            Request::new("DELETE", "/orders/42")
                .header("authorization", bearer("valid_k1"))
                .peer(WEB),
        ),
        (
            "path outside the template",
            alice().peer(WEB).path_override("/orders/42/items"),
        ),
    ];
    for (why, request) in denied {
        let out = host.send(request).unwrap();
        assert_eq!(
            decision(&out),
            (403, s("deny"), s("_default"), None),
            "{why}"
        );
        assert_eq!(out.body_text(), r#"{"error":"forbidden"}"#, "{why}");
        assert_eq!(
            out.response_header("content-type").as_deref(),
            Some("application/json")
        );
        assert!(out.upstream_headers.is_none(), "{why}: never forwarded");
    }

    // DENY first, whatever the ALLOW policies say.
    let out = host
        .send(alice().peer("spiffe://cluster.local/ns/dev/sa/web"))
        .unwrap();
    assert_eq!(
        decision(&out),
        (403, s("deny"), s("deny-dev"), s("dev-namespace"))
    );

    // An invalid token never reaches authz: jwt-authn answers 401.
    let out = host
        .send(
            Request::get("/orders/42")
                .header("authorization", bearer("forged_k1"))
                .peer(WEB),
        )
        .unwrap();
    assert_eq!(out.status, 401);
    assert_eq!(state(&out, "decision"), None);

    assert_eq!(host.counter(&metric("orders", "allowed")), 1);
    assert_eq!(host.counter(&metric("_default", "denied")), 6);
    assert_eq!(host.counter(&metric("deny-dev", "denied")), 1);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

/// Builds a request with another path but the same headers and peer.
trait PathOverride {
    fn path_override(self, path: &str) -> Self;
}

impl PathOverride for Request {
    fn path_override(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }
}

#[test]
fn spoofed_claim_headers_are_ignored() {
    let host = chain(orders_policy());
    let payload = r#"{"iss":"https://idp.example.com","sub":"alice","roles":["admin","dev"],"realm_access":{"roles":["r1"]},"tier":"gold"}"#;
    let out = host
        .send(
            Request::get("/orders/42")
                .peer(WEB)
                .header("x-roles", "admin,dev")
                .header("x-jwt-claim-roles", "admin,dev")
                .header("x-jwt-payload", payload)
                .header("meshguard.jwt_authn.payload", payload)
                .header("meshguard.jwt_authn.outcome", "verified")
                .header("x-forwarded-client-cert", format!("URI={WEB}")),
        )
        .unwrap();
    assert_eq!(decision(&out), (403, s("deny"), s("_default"), None));
    assert!(out.upstream_headers.is_none());
}

#[test]
fn dry_run_policy_records_the_would_be_denial() {
    let host = chain(json!({"policies": [
        {"name": "block-exports", "action": "DENY", "dry_run": true,
         "rules": [{"name": "exports", "to": [{"operation": {"paths": ["/export/{**}"]}}]}]},
        {"name": "open", "rules": [{}]}
    ]}));
    let out = host.send(Request::get("/export/all.csv")).unwrap();
    assert_eq!(
        decision(&out),
        (200, s("dry_run_deny"), s("block-exports"), s("exports"))
    );
    assert!(out.upstream_headers.is_some(), "not enforced");
    let out = host.send(Request::get("/orders")).unwrap();
    assert_eq!(decision(&out), (200, s("allow"), s("open"), s("rules[0]")));
    assert_eq!(host.counter(&metric("block-exports", "dry_run_denied")), 1);
    assert_eq!(host.counter(&metric("open", "allowed")), 1);
}

#[test]
fn global_dry_run_never_enforces() {
    let mut config = orders_policy();
    config["dry_run"] = json!(true);
    let host = chain(config);
    let out = host.send(Request::get("/orders/42")).unwrap();
    assert_eq!(
        decision(&out),
        (200, s("dry_run_deny"), s("_default"), None)
    );
    let out = host
        .send(Request::get("/orders/42").peer("spiffe://cluster.local/ns/dev/sa/x"))
        .unwrap();
    assert_eq!(
        decision(&out),
        (200, s("dry_run_deny"), s("deny-dev"), s("dev-namespace"))
    );
    let out = host
        .send(
            Request::get("/orders")
                .header("authorization", bearer("valid_k1"))
                .peer(WEB),
        )
        .unwrap();
    assert_eq!(
        decision(&out),
        (200, s("allow"), s("orders"), s("web-alice"))
    );
    assert_eq!(host.counter(&metric("_default", "dry_run_denied")), 1);
    assert_eq!(host.counter(&metric("deny-dev", "dry_run_denied")), 1);
}

#[test]
fn audit_policies_only_record() {
    let host = chain(json!({"policies": [
        {"name": "audit-admin", "action": "AUDIT",
         "rules": [{"name": "admins", "when": [{"claim": "roles", "contains_any": ["admin"]}]}]},
        {"name": "no-delete", "action": "DENY", "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}]}
    ]}));
    let out = host
        .send(Request::get("/x").header("authorization", bearer("valid_k1")))
        .unwrap();
    assert_eq!(decision(&out), (200, s("allow"), s("_default"), None));
    assert_eq!(state(&out, "audit"), s("audit-admin"));
    let out = host.send(Request::get("/x")).unwrap();
    assert_eq!(state(&out, "audit"), None, "no token, no admin role");
    let out = host
        .send(Request::new("DELETE", "/x").header("authorization", bearer("valid_k1")))
        .unwrap();
    assert_eq!(out.status, 403);
    assert_eq!(state(&out, "audit"), s("audit-admin"));
    assert_eq!(host.counter(&metric("audit-admin", "audited")), 2);
}

#[test]
fn per_rule_deny_responses() {
    let host = chain(json!({
    "deny_response": {"status": 403, "body": {"error": "forbidden", "docs": "https://docs.example.com/authz"}},
    "policies": [
        {"name": "hide-internal", "action": "DENY", "rules": [
            {"name": "internal", "to": [{"operation": {"paths": ["/internal/{**}"]}}],
             "deny_response": {"status": 404, "body": "no such page", "headers": {"cache-control": "no-store"}}},
            {"name": "teapot", "to": [{"operation": {"paths": ["/brew"]}}],
             "deny_response": {"status": 418, "body": {"error": "teapot"}}}
        ]},
        {"name": "bob-out", "action": "DENY", "rules": [
            {"from": [{"source": {"request_principals": ["*/bob"]}}]}]}
    ]}));
    let out = host.send(Request::get("/internal/metrics")).unwrap();
    assert_eq!(out.status, 404);
    assert_eq!(out.body_text(), "no such page");
    assert_eq!(
        out.response_header("cache-control").as_deref(),
        Some("no-store")
    );
    assert_eq!(
        out.response_header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let out = host.send(Request::get("/brew")).unwrap();
    assert_eq!(
        (out.status, out.body_text()),
        (418, r#"{"error":"teapot"}"#.to_owned())
    );
    let out = host
        .send(Request::get("/a").header("authorization", bearer("valid_k1_bob")))
        .unwrap();
    assert_eq!(out.status, 403);
    assert_eq!(
        out.body_text(),
        r#"{"docs":"https://docs.example.com/authz","error":"forbidden"}"#
    );
    let out = host
        .send(Request::get("/a").header("authorization", bearer("valid_k1")))
        .unwrap();
    assert_eq!(out.status, 200);
}

#[test]
fn invalid_config_is_refused_with_the_field_path() {
    let bad = [
        (
            json!({"policies": [{"name": "p", "rules": [{"from": [{"source": {"ip_blocks": ["10.0.0.0/33"]}}]}]}]}),
            r#"policies[0].rules[0].from[0].source.ip_blocks[0]: invalid CIDR "10.0.0.0/33""#,
        ),
        (
            json!({"policies": [{"name": "p", "rules": [{"to": [{"operation": {"paths": ["/a/{**}/{*}"]}}]}]}]}),
            "policies[0].rules[0].to[0].operation.paths[0]: invalid path template",
        ),
        (
            json!({"policies": [{"name": "p", "rules": [{"when": [{"claim": "a..b", "present": true}]}]}]}),
            r#"policies[0].rules[0].when[0].claim: invalid claim path "a..b""#,
        ),
        (
            json!({"policies": [{"name": "p", "rules": [{"when": [{"key": "request.bogus", "values": ["1"]}]}]}]}),
            r#"policies[0].rules[0].when[0].key: unknown key "request.bogus""#,
        ),
        (json!({}), "policies: no policies"),
        (
            json!({"policies": [], "alow_all": true}),
            "unknown field `alow_all`",
        ),
    ];
    for (config, expected) in bad {
        let err = Host::builder(AUTHZ)
            .plugin_config_json(config.clone())
            .build()
            .err()
            .unwrap_or_else(|| panic!("accepted: {config}"));
        match err {
            HarnessError::ConfigureRejected { logs, .. } => assert!(
                logs.iter().any(|l| l.contains(expected)),
                "{expected:?} not in {logs:?}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn hostile_input_never_traps() {
    let host = Host::builder(AUTHZ)
        .plugin_config_json(json!({"policies": [{"name": "p", "rules": [{
            "to": [{"operation": {"hosts": ["*.example.com"], "paths": ["/a/{*}/{**}"]}}],
            "when": [{"key": "request.headers[x-tenant]", "values": ["acme"]}]}]}]}))
        .build()
        .unwrap();
    let long_path = format!("/a/{}", "x/".repeat(10_000));
    let requests = [
        Request::get("/a/b/c")
            .authority("api.example.com")
            .header("x-tenant", [0xff, 0xfe, b'a']),
        Request::get(&long_path)
            .authority("api.example.com")
            .header("x-tenant", "acme"),
        Request::get("/a/%00/..%2f")
            .authority("API.Example.com:8080")
            .header("x-tenant", "acme"),
        Request::get("/a/b/")
            .authority("api.example.com")
            .header("x-tenant", "acme")
            .header("x-tenant", "acme"),
    ];
    let statuses: Vec<u16> = requests
        .into_iter()
        .map(|r| host.send(r).unwrap().status)
        .collect();
    // Duplicate x-tenant values are joined ("acme,acme") as Envoy's header matchers see them.
    assert_eq!(statuses, vec![403, 200, 403, 403]);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn ip_blocks_match_the_source_address() {
    let host = Host::builder(AUTHZ)
        .plugin_config_json(json!({"policies": [{"name": "internal", "rules": [
            {"from": [{"source": {"ip_blocks": ["10.0.0.0/8", "2001:db8::/32"], "not_ip_blocks": ["10.9.0.0/16"]}}]}]}]}))
        .build()
        .unwrap();
    let from = |addr: &str| {
        host.send(Request::get("/").property(&["source", "address"], addr.as_bytes().to_vec()))
            .unwrap()
            .status
    };
    assert_eq!(from("10.1.2.3:5555"), 200);
    assert_eq!(from("[2001:db8::7]:443"), 200);
    assert_eq!(from("10.9.1.1:5555"), 403);
    assert_eq!(from("192.168.1.1:5555"), 403);
    assert_eq!(from("127.0.0.1:45678"), 403);
}

/// The scenario files under `tests/scenarios/authz` (also replayed on Envoy by the e2e suite)
/// pass on the harness.
#[test]
fn scenarios_pass_on_the_harness() {
    assert_eq!(scenarios::run_area("authz"), 3);
}
