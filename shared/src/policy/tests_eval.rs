//! Evaluation: each matcher and its negation, Istio's evaluation order, dry-run, AUDIT, typed
//! claims, scopes and deny replies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

use super::*;
use crate::config::FilterConfig;

const WEB: &str = "spiffe://cluster.local/ns/prod/sa/web";

#[derive(Clone)]
struct Fixture {
    headers: Vec<(String, Vec<u8>)>,
    payload: Option<Value>,
    peer: Option<String>,
    source: Option<IpAddr>,
    destination: Option<IpAddr>,
    port: Option<u16>,
    sni: Option<String>,
}

impl Fixture {
    fn new(method: &str, path: &str) -> Self {
        Fixture {
            headers: vec![
                (":method".into(), method.as_bytes().to_vec()),
                (":path".into(), path.as_bytes().to_vec()),
                (":authority".into(), b"api.example.com".to_vec()),
            ],
            payload: None,
            peer: None,
            source: None,
            destination: None,
            port: None,
            sni: None,
        }
    }
    fn get(path: &str) -> Self {
        Self::new("GET", path)
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.as_bytes().to_vec()));
        self
    }
    fn authority(mut self, value: &str) -> Self {
        self.headers.retain(|(n, _)| n != ":authority");
        self.header(":authority", value)
    }
    fn jwt(mut self, payload: Value) -> Self {
        self.payload = Some(payload);
        self
    }
    fn peer(mut self, id: &str) -> Self {
        self.peer = Some(id.into());
        self
    }
    fn source(mut self, ip: &str) -> Self {
        self.source = ip::parse_address(ip);
        self
    }
    fn destination(mut self, ip: &str, port: u16) -> Self {
        self.destination = ip::parse_address(ip);
        self.port = Some(port);
        self
    }
    fn sni(mut self, name: &str) -> Self {
        self.sni = Some(name.into());
        self
    }
    fn request(&self) -> Request<'_> {
        Request {
            source_ip: self.source,
            destination_ip: self.destination,
            destination_port: self.port,
            peer_identity: self.peer.as_deref(),
            sni: self.sni.as_deref(),
            jwt: self.payload.as_ref().map(|payload| Jwt {
                issuer: None,
                subject: None,
                payload,
            }),
            ..Request::from_headers(&self.headers)
        }
    }
}

fn authz(json: &str) -> Authorizer {
    Authorizer::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

/// An ALLOW policy with one rule given as JSON.
fn allow(rule: &str) -> Authorizer {
    authz(&format!(
        r#"{{"policies":[{{"name":"p","action":"ALLOW","rules":[{rule}]}}]}}"#
    ))
}

fn allowed(a: &Authorizer, f: &Fixture) -> bool {
    let d = a.evaluate(&f.request());
    d.outcome == Outcome::Allow
}

fn outcome(a: &Authorizer, f: &Fixture) -> (Outcome, String, Option<String>) {
    let d = a.evaluate(&f.request());
    let v = d.recorded;
    (
        d.outcome,
        v.policy_name().to_owned(),
        v.rule_name().map(str::to_owned),
    )
}

#[wasm_bindgen_test(unsupported = test)]
fn principals_and_negation() {
    let a = allow(r#"{"from":[{"source":{"principals":["cluster.local/ns/prod/sa/web"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/").peer(WEB)));
    assert!(!allowed(
        &a,
        &Fixture::get("/").peer("spiffe://cluster.local/ns/prod/sa/api")
    ));
    assert!(
        !allowed(&a, &Fixture::get("/")),
        "plaintext has no principal"
    );
    let a = allow(r#"{"from":[{"source":{"principals":["spiffe://cluster.local/ns/prod/*"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/").peer(WEB)));
    let a = allow(r#"{"from":[{"source":{"not_principals":["*/sa/web"]}}]}"#);
    assert!(!allowed(&a, &Fixture::get("/").peer(WEB)));
    assert!(allowed(
        &a,
        &Fixture::get("/").peer("spiffe://td/ns/x/sa/api")
    ));
    assert!(
        allowed(&a, &Fixture::get("/")),
        "Istio: not_ holds when absent"
    );
    let a = allow(r#"{"from":[{"source":{"principals":["*"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/").peer(WEB)));
    assert!(!allowed(&a, &Fixture::get("/")));
}

#[wasm_bindgen_test(unsupported = test)]
fn namespaces_and_negation() {
    let a = allow(r#"{"from":[{"source":{"namespaces":["prod","stag*"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/").peer(WEB)));
    assert!(allowed(
        &a,
        &Fixture::get("/").peer("spiffe://td/ns/staging/sa/x")
    ));
    assert!(!allowed(
        &a,
        &Fixture::get("/").peer("spiffe://td/ns/dev/sa/x")
    ));
    assert!(!allowed(&a, &Fixture::get("/")));
    let a = allow(r#"{"from":[{"source":{"not_namespaces":["prod"]}}]}"#);
    assert!(!allowed(&a, &Fixture::get("/").peer(WEB)));
    assert!(allowed(
        &a,
        &Fixture::get("/").peer("spiffe://td/ns/dev/sa/x")
    ));
}

#[wasm_bindgen_test(unsupported = test)]
fn request_principals_and_negation() {
    let alice = json!({"iss": "https://idp", "sub": "alice"});
    let bob = json!({"iss": "https://idp", "sub": "bob"});
    let a = allow(r#"{"from":[{"source":{"request_principals":["https://idp/alice"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/").jwt(alice.clone())));
    assert!(!allowed(&a, &Fixture::get("/").jwt(bob.clone())));
    assert!(!allowed(&a, &Fixture::get("/")));
    let a = allow(r#"{"from":[{"source":{"not_request_principals":["*/alice"]}}]}"#);
    assert!(!allowed(&a, &Fixture::get("/").jwt(alice.clone())));
    assert!(allowed(&a, &Fixture::get("/").jwt(bob)));
    // The hand-off's issuer/subject take precedence over the payload's.
    let a = allow(r#"{"from":[{"source":{"request_principals":["https://idp/carol"]}}]}"#);
    let f = Fixture::get("/").jwt(alice);
    let mut req = f.request();
    req.jwt = req.jwt.map(|j| Jwt {
        subject: Some("carol"),
        ..j
    });
    assert_eq!(a.evaluate(&req).outcome, Outcome::Allow);
}

#[wasm_bindgen_test(unsupported = test)]
fn ip_blocks_and_negation() {
    for field in ["ip_blocks", "remote_ip_blocks"] {
        let a = allow(&format!(
            r#"{{"from":[{{"source":{{"{field}":["10.0.0.0/8","2001:db8::/32"]}}}}]}}"#
        ));
        assert!(allowed(&a, &Fixture::get("/").source("10.2.3.4:999")));
        assert!(allowed(&a, &Fixture::get("/").source("[2001:db8::5]:999")));
        assert!(!allowed(&a, &Fixture::get("/").source("192.168.0.1:999")));
        assert!(!allowed(&a, &Fixture::get("/")));
        let a = allow(&format!(
            r#"{{"from":[{{"source":{{"not_{field}":["10.0.0.0/8"]}}}}]}}"#
        ));
        assert!(!allowed(&a, &Fixture::get("/").source("10.2.3.4:999")));
        assert!(allowed(&a, &Fixture::get("/").source("11.2.3.4:999")));
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn hosts_ports_methods_and_negations() {
    let a = allow(r#"{"to":[{"operation":{"hosts":["API.example.com","*.internal"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/")));
    assert!(allowed(&a, &Fixture::get("/").authority("db.INTERNAL")));
    assert!(!allowed(
        &a,
        &Fixture::get("/").authority("api.example.com:8080")
    ));
    let a = allow(r#"{"to":[{"operation":{"not_hosts":["*.example.com"]}}]}"#);
    assert!(!allowed(&a, &Fixture::get("/")));
    assert!(allowed(&a, &Fixture::get("/").authority("other.org")));

    let a = allow(r#"{"to":[{"operation":{"ports":["8080", 9090]}}]}"#);
    assert!(allowed(
        &a,
        &Fixture::get("/").destination("10.0.0.1", 9090)
    ));
    assert!(!allowed(&a, &Fixture::get("/").destination("10.0.0.1", 80)));
    assert!(!allowed(&a, &Fixture::get("/")));
    let a = allow(r#"{"to":[{"operation":{"not_ports":["8080"]}}]}"#);
    assert!(!allowed(
        &a,
        &Fixture::get("/").destination("10.0.0.1", 8080)
    ));
    assert!(allowed(&a, &Fixture::get("/").destination("10.0.0.1", 80)));

    let a = allow(r#"{"to":[{"operation":{"methods":["GET","HEAD"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/")));
    assert!(
        !allowed(&a, &Fixture::new("get", "/")),
        "methods are case-sensitive"
    );
    assert!(!allowed(&a, &Fixture::new("POST", "/")));
    let a = allow(r#"{"to":[{"operation":{"not_methods":["DELETE"]}}]}"#);
    assert!(allowed(&a, &Fixture::new("POST", "/")));
    assert!(!allowed(&a, &Fixture::new("DELETE", "/")));
}

#[wasm_bindgen_test(unsupported = test)]
fn paths_templates_and_negation() {
    let a =
        allow(r#"{"to":[{"operation":{"paths":["/public/*","/v1/{*}/items/{**}","/health"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/public/a/b")));
    assert!(allowed(&a, &Fixture::get("/v1/acme/items/1/2?x=y")));
    assert!(allowed(&a, &Fixture::get("/health?probe=1")));
    assert!(!allowed(&a, &Fixture::get("/v1/acme/x/items/1")));
    assert!(!allowed(&a, &Fixture::get("/healthz")));
    let a = allow(r#"{"to":[{"operation":{"paths":["/api/*"],"not_paths":["/api/admin/{**}"]}}]}"#);
    assert!(allowed(&a, &Fixture::get("/api/users")));
    assert!(!allowed(&a, &Fixture::get("/api/admin/users")));
}

#[wasm_bindgen_test(unsupported = test)]
fn istio_when_keys_and_not_values() {
    let payload = json!({"iss":"https://idp","sub":"alice","aud":["a1","a2"],"azp":"web",
        "realm_access":{"roles":["reader"]},"groups":["g1"],"admin":true});
    let base = Fixture::get("/")
        .jwt(payload)
        .peer(WEB)
        .source("10.0.0.9:1234")
        .destination("172.16.0.2", 8443)
        .sni("api.example.com")
        .header("x-tenant", "acme")
        .header("x-multi", "a")
        .header("x-multi", "b");
    let cases: &[(&str, &str, bool)] = &[
        ("request.auth.claims[groups]", "g1", true),
        ("request.auth.claims[realm_access][roles]", "read*", true),
        ("request.auth.claims[admin]", "true", false), // Istio: bools never match
        ("request.auth.claims[missing]", "*", false),
        ("request.auth.principal", "https://idp/alice", true),
        ("request.auth.audiences", "a2", true),
        ("request.auth.audiences", "a3", false),
        ("request.auth.presenter", "web", true),
        ("request.headers[X-Tenant]", "acme", true),
        ("request.headers[x-tenant]", "*", true),
        ("request.headers[x-absent]", "*", false),
        ("request.headers[x-multi]", "a,b", true),
        ("source.ip", "10.0.0.0/24", true),
        ("remote.ip", "10.0.0.9", true),
        ("source.ip", "10.0.1.0/24", false),
        ("source.namespace", "prod", true),
        ("source.principal", "cluster.local/ns/prod/sa/web", true),
        ("destination.ip", "172.16.0.0/12", true),
        ("destination.port", "8443", true),
        ("destination.port", "443", false),
        ("connection.sni", "*.example.com", true),
        ("connection.sni", "other", false),
    ];
    for &(key, value, expected) in cases {
        let a = allow(&format!(
            r#"{{"when":[{{"key":"{key}","values":["{value}"]}}]}}"#
        ));
        assert_eq!(allowed(&a, &base), expected, "{key} values {value}");
        let a = allow(&format!(
            r#"{{"when":[{{"key":"{key}","not_values":["{value}"]}}]}}"#
        ));
        assert_eq!(allowed(&a, &base), !expected, "{key} not_values {value}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn claims_never_come_from_headers() {
    let a = allow(
        r#"{"when":[{"key":"request.auth.claims[role]","values":["admin"]},
                    {"claim":"role","equals":"admin"}]}"#,
    );
    let spoofed = Fixture::get("/")
        .header("x-jwt-claim-role", "admin")
        .header("x-jwt-payload", r#"{"role":"admin"}"#)
        .header("role", "admin");
    assert!(!allowed(&a, &spoofed));
    assert!(allowed(&a, &Fixture::get("/").jwt(json!({"role":"admin"}))));
}

#[wasm_bindgen_test(unsupported = test)]
fn typed_claims_in_rules() {
    let f = Fixture::get("/")
        .jwt(json!({"email_verified": true, "tier": 2, "roles": ["a","b"], "s": "true"}));
    let cases: &[(&str, bool)] = &[
        (r#"{"claim":"email_verified","equals":true}"#, true),
        (r#"{"claim":"email_verified","equals":"true"}"#, false),
        (r#"{"claim":"s","equals":true}"#, false),
        (r#"{"claim":"s","equals":"true"}"#, true),
        (r#"{"claim":"tier","equals":2}"#, true),
        (r#"{"claim":"tier","not_equals":3}"#, true),
        (r#"{"claim":"roles","contains_any":["x","b"]}"#, true),
        (r#"{"claim":"roles","contains_all":["a","b"]}"#, true),
        (r#"{"claim":"roles","contains_all":["a","c"]}"#, false),
        (r#"{"claim":"roles","not_contains_any":["c"]}"#, true),
        (r#"{"claim":"roles","not_contains_all":["a","b"]}"#, false),
        (r#"{"claim":"roles","present":true}"#, true),
        (r#"{"claim":"nope","present":false}"#, true),
        (
            r#"{"claim":"tier","present":true,"contains_any":[1,2]}"#,
            true,
        ),
    ];
    for &(cond, expected) in cases {
        let a = allow(&format!(r#"{{"when":[{cond}]}}"#));
        assert_eq!(allowed(&a, &f), expected, "{cond}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn rule_structure_or_and_semantics() {
    // from: OR of sources; fields of one source: AND.
    let a = allow(
        r#"{"from":[{"source":{"namespaces":["prod"],"ip_blocks":["10.0.0.0/8"]}},
                    {"source":{"principals":["td/ns/ops/sa/admin"]}}]}"#,
    );
    assert!(allowed(
        &a,
        &Fixture::get("/").peer(WEB).source("10.1.1.1:1")
    ));
    assert!(!allowed(
        &a,
        &Fixture::get("/").peer(WEB).source("11.1.1.1:1")
    ));
    assert!(allowed(
        &a,
        &Fixture::get("/").peer("spiffe://td/ns/ops/sa/admin")
    ));
    // from AND to AND all when.
    let a = allow(
        r#"{"from":[{"source":{"namespaces":["prod"]}}],
            "to":[{"operation":{"methods":["GET"]}},{"operation":{"paths":["/w"]}}],
            "when":[{"key":"request.headers[x-a]","values":["1"]},{"key":"request.headers[x-b]","values":["2"]}]}"#,
    );
    let ok = Fixture::get("/r")
        .peer(WEB)
        .header("x-a", "1")
        .header("x-b", "2");
    assert!(allowed(&a, &ok));
    assert!(allowed(
        &a,
        &Fixture::new("POST", "/w")
            .peer(WEB)
            .header("x-a", "1")
            .header("x-b", "2")
    ));
    assert!(!allowed(
        &a,
        &Fixture::new("POST", "/r")
            .peer(WEB)
            .header("x-a", "1")
            .header("x-b", "2")
    ));
    assert!(!allowed(
        &a,
        &Fixture::get("/r").peer(WEB).header("x-a", "1")
    ));
    // An empty rule matches everything; a policy without rules matches nothing.
    assert!(allowed(&allow("{}"), &Fixture::get("/anything")));
    let nothing = authz(r#"{"policies":[{"name":"allow-nothing"}]}"#);
    assert_eq!(outcome(&nothing, &Fixture::get("/")).0, Outcome::Deny);
}

#[wasm_bindgen_test(unsupported = test)]
fn deny_beats_allow_and_allow_list_applies() {
    let a = authz(
        r#"{"policies":[
          {"name":"allow-get","action":"ALLOW","rules":[{"name":"gets","to":[{"operation":{"methods":["GET"]}}]}]},
          {"name":"deny-admin","action":"DENY","rules":[{"name":"admin","to":[{"operation":{"paths":["/admin*"]}}]}]},
          {"name":"allow-health","rules":[{"to":[{"operation":{"paths":["/health"]}}]}]}
        ]}"#,
    );
    assert_eq!(
        outcome(&a, &Fixture::get("/admin/x")),
        (Outcome::Deny, "deny-admin".into(), Some("admin".into()))
    );
    assert_eq!(
        outcome(&a, &Fixture::get("/x")),
        (Outcome::Allow, "allow-get".into(), Some("gets".into()))
    );
    assert_eq!(
        outcome(&a, &Fixture::new("POST", "/health")),
        (
            Outcome::Allow,
            "allow-health".into(),
            Some("rules[0]".into())
        )
    );
    assert_eq!(
        outcome(&a, &Fixture::new("POST", "/x")),
        (Outcome::Deny, DEFAULT_POLICY.into(), None)
    );
    // Only DENY policies: everything else is allowed.
    let a = authz(
        r#"{"policies":[{"name":"d","action":"DENY","rules":[{"to":[{"operation":{"paths":["/x"]}}]}]}]}"#,
    );
    assert_eq!(
        outcome(&a, &Fixture::get("/y")),
        (Outcome::Allow, DEFAULT_POLICY.into(), None)
    );
    assert_eq!(outcome(&a, &Fixture::get("/x")).0, Outcome::Deny);
}

#[wasm_bindgen_test(unsupported = test)]
fn audit_only_records() {
    let a = authz(
        r#"{"policies":[
          {"name":"audit-writes","action":"AUDIT","rules":[{"name":"w","to":[{"operation":{"methods":["POST"]}}]}]},
          {"name":"d","action":"DENY","rules":[{"to":[{"operation":{"paths":["/x"]}}]}]}
        ]}"#,
    );
    let d = a.evaluate(&Fixture::new("POST", "/y").request());
    assert_eq!(d.outcome, Outcome::Allow);
    let (p, r) = d.audit.unwrap();
    assert_eq!((p.name.as_str(), r.name.as_str()), ("audit-writes", "w"));
    let d = a.evaluate(&Fixture::new("POST", "/x").request());
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(
        d.audit.is_some(),
        "AUDIT is recorded on denied requests too"
    );
    assert!(a.evaluate(&Fixture::get("/y").request()).audit.is_none());
    // AUDIT-only config: no ALLOW policies, so everything is allowed.
    let a = authz(r#"{"policies":[{"name":"a","action":"AUDIT","rules":[{}]}]}"#);
    assert_eq!(outcome(&a, &Fixture::get("/")).0, Outcome::Allow);
}

#[wasm_bindgen_test(unsupported = test)]
fn dry_run_policies_record_without_enforcing() {
    let a = authz(
        r#"{"policies":[
          {"name":"try-deny","action":"DENY","dry_run":true,"rules":[{"name":"r","to":[{"operation":{"paths":["/x"]}}]}]},
          {"name":"deny-y","action":"DENY","rules":[{"to":[{"operation":{"paths":["/y"]}}]}]}
        ]}"#,
    );
    let d = a.evaluate(&Fixture::get("/x").request());
    assert_eq!(d.outcome, Outcome::DryRunDeny);
    assert!(d.enforced.allowed);
    assert_eq!(d.recorded.policy_name(), "try-deny");
    assert_eq!(d.recorded.rule_name(), Some("r"));
    assert_eq!(outcome(&a, &Fixture::get("/y")).0, Outcome::Deny);
    assert_eq!(outcome(&a, &Fixture::get("/z")).0, Outcome::Allow);

    // A dry-run ALLOW list: would deny what it does not list.
    let a = authz(
        r#"{"policies":[{"name":"try-allow","dry_run":true,"rules":[{"to":[{"operation":{"paths":["/ok"]}}]}]}]}"#,
    );
    assert_eq!(
        outcome(&a, &Fixture::get("/ok")),
        (Outcome::Allow, "try-allow".into(), Some("rules[0]".into()))
    );
    assert_eq!(
        outcome(&a, &Fixture::get("/other")),
        (Outcome::DryRunDeny, DEFAULT_POLICY.into(), None)
    );

    // Enforced ALLOW plus a dry-run ALLOW: the dry-run one can only widen what is allowed.
    let a = authz(
        r#"{"policies":[
          {"name":"live","rules":[{"to":[{"operation":{"paths":["/a"]}}]}]},
          {"name":"candidate","dry_run":true,"rules":[{"to":[{"operation":{"paths":["/b"]}}]}]}
        ]}"#,
    );
    assert_eq!(outcome(&a, &Fixture::get("/a")).0, Outcome::Allow);
    assert_eq!(outcome(&a, &Fixture::get("/b")).0, Outcome::Deny);
}

#[wasm_bindgen_test(unsupported = test)]
fn global_dry_run_never_enforces() {
    let a = authz(
        r#"{"dry_run":true,"policies":[
          {"name":"d","action":"DENY","rules":[{"to":[{"operation":{"paths":["/x"]}}]}]},
          {"name":"a","rules":[{"to":[{"operation":{"paths":["/x","/ok"]}}]}]}
        ]}"#,
    );
    assert!(a.dry_run());
    assert_eq!(
        outcome(&a, &Fixture::get("/x")),
        (Outcome::DryRunDeny, "d".into(), Some("rules[0]".into()))
    );
    assert_eq!(
        outcome(&a, &Fixture::get("/nope")),
        (Outcome::DryRunDeny, DEFAULT_POLICY.into(), None)
    );
    assert_eq!(
        outcome(&a, &Fixture::get("/ok")),
        (Outcome::Allow, "a".into(), Some("rules[0]".into())),
        "a global dry-run still names the policy that would allow"
    );
    let a = authz(r#"{"dry_run":true,"deny_all":true}"#);
    assert_eq!(outcome(&a, &Fixture::get("/")).0, Outcome::DryRunDeny);
    assert_eq!(
        outcome(&authz(r#"{"deny_all":true}"#), &Fixture::get("/")).0,
        Outcome::Deny
    );
    assert_eq!(
        outcome(&authz(r#"{"allow_all":true}"#), &Fixture::get("/")).0,
        Outcome::Allow
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn scopes_conditions_and_insufficient_scope_replies() {
    let a = authz(
        r#"{"policies":[{"name":"api","rules":[
            {"name":"read","to":[{"operation":{"methods":["GET"]}}],"when":[{"scopes":{"all_of":["items:read"]}}]},
            {"name":"write","to":[{"operation":{"methods":["POST"]}}],"when":[{"scopes":{"any_of":["items:write","admin"]}}]}
        ]}]}"#,
    );
    let token = |scope: Value| Fixture::get("/items").jwt(json!({"scope": scope}));
    assert!(allowed(&a, &token(json!("items:read other"))));
    let f = token(json!("other"));
    let d = a.evaluate(&f.request());
    assert_eq!(d.outcome, Outcome::Deny);
    let reply = a.deny_reply(&d.enforced);
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, br#"{"error":"insufficient_scope"}"#);
    assert!(reply.headers.contains(&(
        "www-authenticate",
        r#"Bearer error="insufficient_scope", scope="items:read""#
    )));
    let f = Fixture::new("POST", "/items").jwt(json!({"scp": ["items:write"]}));
    assert!(allowed(&a, &f));
    // A request failing on something else than scopes is a plain 403.
    let d = a.evaluate(
        &Fixture::new("DELETE", "/items")
            .jwt(json!({"scope": "x"}))
            .request(),
    );
    let reply = a.deny_reply(&d.enforced);
    assert_eq!(reply.body, br#"{"error":"forbidden"}"#);
    assert!(!reply.headers.iter().any(|(n, _)| *n == "www-authenticate"));

    // DENY with not_scopes: missing admin scope on /admin.
    let a = authz(
        r#"{"policies":[{"name":"admin","action":"DENY","rules":[
            {"to":[{"operation":{"paths":["/admin/*"]}}],"when":[{"not_scopes":{"all_of":["admin"]}}]}]}]}"#,
    );
    assert!(allowed(
        &a,
        &Fixture::get("/admin/x").jwt(json!({"scope":"admin"}))
    ));
    let d = a.evaluate(
        &Fixture::get("/admin/x")
            .jwt(json!({"scope":"user"}))
            .request(),
    );
    assert_eq!(d.outcome, Outcome::Deny);
    let reply = a.deny_reply(&d.enforced);
    assert!(reply.headers.contains(&(
        "www-authenticate",
        r#"Bearer error="insufficient_scope", scope="admin""#
    )));
}

#[wasm_bindgen_test(unsupported = test)]
fn per_rule_and_global_deny_responses() {
    let a = authz(
        r#"{"deny_response":{"status":401,"body":{"error":"nope"}},
            "policies":[
              {"name":"hide","action":"DENY","rules":[
                {"name":"internal","to":[{"operation":{"paths":["/internal/*"]}}],
                 "deny_response":{"status":404,"body":"not found","headers":{"X-Why":"hidden"}}},
                {"name":"plain","to":[{"operation":{"paths":["/plain"]}}]}]},
              {"name":"allow","rules":[{"to":[{"operation":{"paths":["/ok","/plain"]}}]}]}]}"#,
    );
    let reply_for = |path: &str| {
        let f = Fixture::get(path);
        let d = a.evaluate(&f.request());
        assert_eq!(d.outcome, Outcome::Deny, "{path}");
        let r = a.deny_reply(&d.enforced);
        (
            r.status,
            r.headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>(),
            String::from_utf8(r.body.to_vec()).unwrap(),
        )
    };
    assert_eq!(
        reply_for("/internal/x"),
        (
            404,
            vec![
                "content-type: text/plain; charset=utf-8".into(),
                "x-why: hidden".into()
            ],
            "not found".into()
        )
    );
    assert_eq!(
        reply_for("/plain"),
        (
            401,
            vec!["content-type: application/json".into()],
            r#"{"error":"nope"}"#.into()
        )
    );
    assert_eq!(reply_for("/else").0, 401);
}

#[wasm_bindgen_test(unsupported = test)]
fn evaluation_reads_only_the_request_it_is_given() {
    // Same authorizer, many requests: no state leaks between evaluations.
    let a = allow(r#"{"from":[{"source":{"principals":["*"]}}]}"#);
    for i in 0..3 {
        assert!(allowed(&a, &Fixture::get("/").peer(WEB)), "{i}");
        assert!(!allowed(&a, &Fixture::get("/")), "{i}");
    }
    assert_eq!(Authorizer::FILTER, "authz");
}
