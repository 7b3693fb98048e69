//! The e2e tests of what only a real proxy shows: remote JWKS rotation and outage, mTLS peer
//! identity, a rate limit across two worker threads, audit records and Prometheus metrics.

use std::time::Duration;

use meshguard_tool::bootstrap::Plugin;
use meshguard_tool::demo::keys::{jwks, SigningKey};
use meshguard_tool::demo::servers::{JwksMode, JwksServer};
use meshguard_tool::examples;
use serde_json::{json, Map, Value};

use crate::envoy::chain::{bearer, mint, plugin, serial, start_chain, AUD, ISS};
use crate::envoy::client::{send_plain, Req};
use crate::envoy::process::envoy_binary;

/// Remote JWKS through a real cluster: keys fetched once for both workers, an unknown `kid`
/// refetched (rotation without an outage), the last good keys kept while the JWKS server fails,
/// then failing closed once they are too stale, and recovery when it is back.
#[test]
fn remote_jwks_rotation_and_outage() {
    if envoy_binary().is_none() {
        return;
    }
    let _one = serial();
    let k1 = SigningKey::generate("k1");
    let k2 = SigningKey::generate("k2");
    let k3 = SigningKey::generate("k3");
    let server = JwksServer::start(0, jwks(&[&k1]), ISS).unwrap();
    let config = json!({
        "providers": {"e2e": {
            "issuer": ISS, "audiences": [AUD],
            "remote_jwks": {
                "http_uri": {"uri": "http://jwks.e2e.test/.well-known/jwks.json",
                             "cluster": "meshguard_jwks", "timeout": "1s"},
                "cache_duration": "2s", "max_stale": "2s", "failed_refetch_duration": "200ms",
                "unknown_kid_refetch_interval": "500ms", "cold_start_timeout": "2s"
            },
            "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "e2e"}}]
    });
    let chain = start_chain(
        vec![plugin("jwt_authn", config)],
        vec![("meshguard_jwks".into(), server.port().to_string())],
        &[],
    );
    let t1 = mint(&k1, "alice", json!({}));

    // Cold start: the first requests wait for the keys; both workers use one fetch.
    for _ in 0..10 {
        assert_eq!(
            chain.status(&bearer(&t1)),
            200,
            "{}",
            chain.envoy.log_tail(30)
        );
    }
    let got = chain.app.take_received();
    assert_eq!(
        got.last().unwrap().header("x-jwt-sub").as_deref(),
        Some("alice")
    );
    assert!(
        got.iter().all(|m| m.header("authorization").is_none()),
        "the token was forwarded upstream"
    );
    assert_eq!(
        server.fetches(),
        1,
        "keys must be fetched once per process, not per worker"
    );
    assert_eq!(chain.status(&Req::get("/api/orders")), 401);
    let tampered = format!("{}x", &t1[..t1.len() - 1]);
    assert_eq!(chain.status(&bearer(&tampered)), 401);

    // Rotation: a token signed by a new key triggers a refetch and passes.
    server.set_jwks(jwks(&[&k1, &k2]));
    let t2 = mint(&k2, "bob", json!({}));
    assert_eq!(
        chain.eventually(&bearer(&t2), 200, Duration::from_secs(5)),
        200
    );

    // Outage: the JWKS server answers 503, then drops connections. The cached keys keep
    // working within cache_duration + max_stale; a key it never saw cannot be verified.
    server.set_mode(JwksMode::Status(503));
    assert_eq!(chain.status(&bearer(&t1)), 200);
    let t3 = mint(&k3, "carol", json!({}));
    assert_eq!(chain.status(&bearer(&t3)), 401);
    server.set_mode(JwksMode::Drop);
    // Past cache_duration (2 s) + max_stale (2 s) without a successful refresh: fail closed.
    assert_eq!(
        chain.eventually(&bearer(&t1), 401, Duration::from_secs(10)),
        401
    );

    // The server comes back with the newest key: requests recover without a restart.
    server.set_jwks(jwks(&[&k3]));
    server.set_mode(JwksMode::Serve);
    assert_eq!(
        chain.eventually(&bearer(&t3), 200, Duration::from_secs(10)),
        200
    );
    assert!(
        chain.envoy.errors().iter().all(|l| !l.contains("panicked")),
        "{:?}",
        chain.envoy.errors()
    );
}

/// Authorization on the mTLS peer identity (the client certificate's SPIFFE URI SAN, read by
/// the filter from `connection.uri_san_peer_certificate`), through the TLS listener.
#[test]
fn authz_on_mtls_peer_identity() {
    if envoy_binary().is_none() {
        return;
    }
    let _one = serial();
    let config = json!({
        "policies": [
            {"name": "deny-dev", "action": "DENY", "rules": [
                {"name": "dev", "from": [{"source": {"namespaces": ["dev"]}}]}]},
            {"name": "frontend", "action": "ALLOW", "rules": [
                {"name": "web", "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}],
                 "to": [{"operation": {"paths": ["/orders/{*}"]}}]},
                {"name": "any-dev-call", "from": [{"source": {"principals": ["spiffe://cluster.local/ns/dev/sa/web"]}}]}]}
        ]
    });
    let chain = start_chain(
        vec![plugin("authz", config)],
        Vec::new(),
        &[
            "spiffe://cluster.local/ns/shop/sa/web",
            "spiffe://cluster.local/ns/shop/sa/batch",
            "spiffe://cluster.local/ns/dev/sa/web",
        ],
    );
    assert_eq!(chain.mtls_status(1, &Req::get("/orders/7")), 200);
    assert_eq!(chain.mtls_status(1, &Req::get("/admin")), 403);
    assert_eq!(chain.mtls_status(2, &Req::get("/orders/7")), 403);
    assert_eq!(
        chain.mtls_status(3, &Req::get("/orders/7")),
        403,
        "DENY wins over ALLOW"
    );
    assert_eq!(
        chain.status(&Req::get("/orders/7")),
        403,
        "no peer identity on plain HTTP"
    );
    // A client cannot claim an identity with a header.
    let spoof = Req::get("/orders/7")
        .header(
            "x-forwarded-client-cert",
            "URI=spiffe://cluster.local/ns/shop/sa/web",
        )
        .header("x-meshguard-peer", "spiffe://cluster.local/ns/shop/sa/web");
    assert_eq!(chain.status(&spoof), 403);
    let log = chain.envoy.wait_access_log(6);
    let decisions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| {
            (
                e["authz_decision"].as_str().unwrap_or("-"),
                e["authz_policy"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(decisions[0], ("allow", "frontend"), "{log:#?}");
    assert_eq!(decisions[3], ("deny", "deny-dev"), "{log:#?}");
    assert_eq!(
        log[0]["downstream_peer_uri_san"],
        "spiffe://cluster.local/ns/shop/sa/web"
    );
}

/// A limit is exact for the whole proxy: two worker threads (two VMs) serving concurrent
/// connections admit exactly `max_tokens` requests between them.
#[test]
fn rate_limit_holds_across_both_workers() {
    if envoy_binary().is_none() {
        return;
    }
    let _one = serial();
    let limit = 20usize;
    let config = json!({
        "rules": [{"name": "global", "limits": [
            {"token_bucket": {"max_tokens": limit, "tokens_per_fill": limit, "fill_interval": "1h"}}]}]
    });
    let chain = start_chain(vec![plugin("ratelimit", config)], Vec::new(), &[]);
    let addr = chain.envoy.listener("http");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(move || {
                    (0..8)
                        .map(|_| send_plain(addr, &Req::get("/x")).unwrap().status())
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(admitted, limit, "statuses: {statuses:?}");
    assert_eq!(limited, statuses.len() - limit, "statuses: {statuses:?}");
    // Both workers served connections, so the limit was shared, not per VM.
    let stats = chain.envoy.stats();
    for worker in ["worker_0", "worker_1"] {
        let cx = stats
            .get(&format!("listener.http.{worker}.downstream_cx_total"))
            .copied()
            .unwrap_or(0);
        assert!(
            cx > 0,
            "{worker} got no connection; stats: {:?}",
            stats
                .iter()
                .filter(|(k, _)| k.contains("worker_"))
                .collect::<Vec<_>>()
        );
    }
}

/// The full chain with the example configs (the demo's): audit records in the access log, one
/// per request including the ones earlier filters refused; metrics in `/stats/prometheus`
/// with labels extracted and no `envoy_` prefix; no token anywhere in the log.
#[test]
fn full_chain_audit_records_and_prometheus_metrics() {
    if envoy_binary().is_none() {
        return;
    }
    let _one = serial();
    let key = SigningKey::generate("demo-1");
    let server = JwksServer::start(0, jwks(&[&key]), examples::DEMO_ISSUER).unwrap();
    let plugins: Vec<Plugin> = meshguard_tool::filters::Filter::CHAIN
        .iter()
        .map(|f| {
            let config: Value =
                serde_json::from_str(&examples::example_config(*f).unwrap()).unwrap();
            plugin(f.name(), config)
        })
        .collect();
    let chain = start_chain(
        plugins,
        vec![("meshguard_jwks".into(), server.port().to_string())],
        &["spiffe://cluster.local/ns/default/sa/demo-client"],
    );
    let tok = |sub: &str, extra: Value| {
        let extra: Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
        key.mint(
            examples::DEMO_ISSUER,
            sub,
            examples::DEMO_AUDIENCE,
            3600,
            &extra,
        )
        .unwrap()
    };
    let reader = tok("alice", json!({"roles": ["reader"]}));
    let nobody = tok("nobody", json!({}));
    let limited = tok("carol", json!({"roles": ["reader"]}));
    let mut expected = vec![
        (chain.status(&bearer(&reader)), 200),
        (chain.status(&Req::get("/api/orders")), 401),
        (chain.status(&bearer(&nobody)), 403),
        (
            chain.status(&Req {
                method: "DELETE".into(),
                ..bearer(&reader)
            }),
            403,
        ),
        (chain.mtls_status(1, &Req::get("/internal/status")), 200),
        (chain.status(&Req::get("/healthz")), 200),
    ];
    for i in 0..6 {
        expected.push((
            chain.status(&bearer(&limited)),
            if i < 5 { 200 } else { 429 },
        ));
    }
    let statuses: Vec<u16> = expected.iter().map(|(got, _)| *got).collect();
    let wanted: Vec<u16> = expected.iter().map(|(_, want)| *want).collect();
    assert_eq!(statuses, wanted, "{}", chain.envoy.log_tail(30));

    let n = statuses.len();
    let log = chain.envoy.wait_access_log(n);
    assert_eq!(log.len(), n, "one access-log entry per request");
    let raw_log = std::fs::read_to_string(&chain.envoy.access_log).unwrap();
    for token in [&reader, &nobody, &limited] {
        assert!(
            !raw_log.contains(token.as_str()),
            "a token leaked into the access log"
        );
    }
    for (entry, status) in log.iter().zip(&statuses) {
        assert_eq!(entry["status"], *status);
        let record: Value = serde_json::from_str(
            entry["audit_record"]
                .as_str()
                .unwrap_or_else(|| panic!("no audit record in {entry:#}")),
        )
        .unwrap();
        assert_eq!(
            record["attributes"]["http.response.status_code"], *status,
            "record {record:#}"
        );
        assert_eq!(
            record["request_id"], entry["request_id"],
            "record {record:#}"
        );
    }
    // jwt_authn's hand-off shows in the log for the verified request.
    assert_eq!(log[0]["jwt_outcome"], "verified");
    assert_eq!(log[0]["jwt_subject"], "alice");
    assert_eq!(log[1]["jwt_outcome"], "missing");

    let prom = chain.envoy.admin("/stats/prometheus");
    let ours: Vec<&str> = prom.lines().filter(|l| l.contains("meshguard_")).collect();
    assert!(
        ours.iter()
            .all(|l| !l.contains("envoy_meshguard") && !l.contains("=.=")),
        "custom metrics must have extracted labels and no envoy_ prefix: {ours:#?}"
    );
    let sum = |prefix: &str| -> f64 {
        prom.lines()
            .filter(|l| {
                l.starts_with(prefix)
                    && (l.as_bytes().get(prefix.len()) == Some(&b'{')
                        || l.as_bytes().get(prefix.len()) == Some(&b' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(sum("meshguard_audit_requests_total"), n as f64, "{ours:#?}");
    assert!(
        prom.contains("meshguard_ratelimit_requests_total{") && prom.contains("decision=\""),
        "{ours:#?}"
    );
    assert!(
        prom.contains("meshguard_jwt_authn_requests_total{outcome=\""),
        "{ours:#?}"
    );
    assert!(
        prom.contains("meshguard_authz_requests_total{"),
        "{ours:#?}"
    );
}
