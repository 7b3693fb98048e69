//! Faults in a real Envoy 1.40 (issue 9): a JWKS endpoint that is down, slower than the fetch
//! timeout, answering garbage, a huge body or keys that all fail to parse; a wasm VM that traps;
//! a bad plugin config at startup and one pushed to a running Envoy over file-based LDS. In every
//! case the chain fails closed (never a pass-through) and no filter VM fails.

use std::time::Duration;

use meshguard_tool::bootstrap::{Bootstrap, Plugin};
use meshguard_tool::demo::keys::{jwks, SigningKey};
use meshguard_tool::demo::servers::{JwksServer, Upstream};
use serde_json::{json, Map};

use crate::envoy::chain::{bearer, plugin, serial, start_chain, tempdir, AUD};
use crate::envoy::client::{send_plain, Req};
use crate::envoy::faults::{
    closed_port, free_port, stat, stat_sum, vm_failures, Fault, FaultyJwks, Lds,
};
use crate::envoy::process::{envoy_binary, Envoy};

fn issuer(name: &str) -> String {
    format!("https://{name}.faults.e2e.test")
}

/// A JWKS document of 100 000 keys that all fail to parse (about 6 MiB).
fn huge_jwks() -> Vec<u8> {
    let mut body = String::from("{\"keys\":[");
    for i in 0..100_000 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"kty\":\"RSA\",\"kid\":\"k{i}\",\"alg\":\"RS256\",\"n\":\"AA\",\"e\":\"AQAB\"}}"
        ));
    }
    body.push_str("]}");
    body.into_bytes()
}

/// The same `kid` as the signing key, in shapes that all fail to parse or may not be used.
fn unusable_keys(kid: &str) -> Vec<u8> {
    json!({"keys": [
        {"kty": "RSA", "kid": kid, "alg": "RS256", "n": "!!not-base64!!", "e": "AQAB"},
        {"kty": "EC", "kid": kid, "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "EC", "kid": kid, "crv": "P-999", "x": "AA", "y": "AA"},
        {"kty": "oct", "kid": kid, "k": "c2VjcmV0"},
        {"kty": "OKP", "kid": kid, "crv": "X25519", "x": "AA"},
        {"kid": kid},
        "not a key"
    ]})
    .to_string()
    .into_bytes()
}

/// One provider per JWKS fault, plus a healthy one: the faulty ones answer every request with a
/// valid-looking token `keys_unavailable_status` (503 here) with the `keys_unavailable` reason,
/// nothing reaches the upstream, the healthy provider keeps working, no VM fails.
#[test]
fn jwks_faults_fail_closed() {
    if envoy_binary().is_none() {
        return;
    }
    let _one = serial();
    let key = SigningKey::generate("k1");
    let healthy = JwksServer::start(0, jwks(&[&key]), &issuer("ok")).unwrap();
    let slow = FaultyJwks::start(Fault::Slow(
        Duration::from_secs(3),
        jwks(&[&key]).into_bytes(),
    ));
    let garbage = FaultyJwks::start(Fault::Body(b"<html>not json {\"keys\": [".to_vec()));
    let huge = FaultyJwks::start(Fault::Body(huge_jwks()));
    let unusable = FaultyJwks::start(Fault::Body(unusable_keys(key.kid())));
    let faults: Vec<(&str, u16, Option<&FaultyJwks>)> = vec![
        ("down", closed_port(), None),
        ("slow", slow.port(), Some(&slow)),
        ("garbage", garbage.port(), Some(&garbage)),
        ("huge", huge.port(), Some(&huge)),
        ("unusable", unusable.port(), Some(&unusable)),
    ];
    let mut providers = Map::new();
    let mut rules = Vec::new();
    let mut clusters = Vec::new();
    let all = faults
        .iter()
        .map(|(n, p, _)| (*n, *p))
        .chain([("ok", healthy.port())]);
    for (name, port) in all {
        let cluster = format!("jwks_{name}");
        providers.insert(
            name.into(),
            json!({
                "issuer": issuer(name), "audiences": [AUD],
                "remote_jwks": {
                    "http_uri": {"uri": format!("http://jwks.e2e.test/{name}/jwks.json"),
                                 "cluster": cluster, "timeout": "500ms"},
                    "cache_duration": "5m", "failed_refetch_duration": "200ms",
                    "cold_start_timeout": "1s"
                }
            }),
        );
        rules.push(json!({"match": {"prefix": format!("/{name}/")},
                          "requires": {"provider_name": name}}));
        clusters.push((cluster, port.to_string()));
    }
    let config = json!({
        "providers": providers, "rules": rules,
        "failure": {"keys_unavailable_status": 503}
    });
    let chain = start_chain(vec![plugin("jwt_authn", config)], clusters, &[]);
    let token = |name: &str| {
        key.mint(&issuer(name), "alice", AUD, 3600, &Map::new())
            .unwrap()
    };

    // Every fault at once (each request may wait for the cold start): 6 requests per fault,
    // each on a new connection, so both workers see them.
    let results: Vec<(String, Vec<(u16, String)>)> = std::thread::scope(|s| {
        let handles: Vec<_> = faults
            .iter()
            .map(|(name, _, _)| {
                let (chain, token) = (&chain, token(name));
                s.spawn(move || {
                    let got: Vec<(u16, String)> = (0..6)
                        .map(|_| {
                            let mut req = bearer(&token);
                            req.path = format!("/{name}/orders");
                            let r = send_plain(chain.envoy.listener("http"), &req).unwrap();
                            let www = r.header("www-authenticate").unwrap_or_default();
                            (r.status(), www)
                        })
                        .collect();
                    (name.to_string(), got)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, got) in &results {
        let statuses: Vec<u16> = got.iter().map(|(s, _)| *s).collect();
        println!("JWKS fault {name}: statuses {statuses:?}");
        for (status, www) in got {
            assert_eq!(
                *status,
                503,
                "{name}: {got:?}\n{}",
                chain.envoy.log_tail(30)
            );
            assert!(www.contains("keys_unavailable"), "{name}: {www}");
        }
    }
    assert!(
        chain.app.take_received().is_empty(),
        "a request passed a provider without keys"
    );
    // The healthy provider is not affected; a bad signature there is still refused.
    let mut req = bearer(&token("ok"));
    req.path = "/ok/orders".into();
    assert_eq!(chain.status(&req), 200, "{}", chain.envoy.log_tail(30));
    let mut forged = bearer(
        &SigningKey::generate("k1")
            .mint(&issuer("ok"), "eve", AUD, 60, &Map::new())
            .unwrap(),
    );
    forged.path = "/ok/orders".into();
    assert_eq!(chain.status(&forged), 401);
    assert_eq!(chain.app.take_received().len(), 1);

    // Each faulty endpoint was really asked, and the filter counted its failed fetches.
    for (name, _, server) in &faults {
        if let Some(server) = server {
            assert!(
                server.hits() >= 1,
                "{name}: the JWKS endpoint was never called"
            );
        }
        // (the huge document may still be in flight when the cold start gave up)
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let failed = loop {
            // `too_large`: a body over the filter's size cap (where it has one).
            let failed: i64 = ["result=.=failed;.;", "result=.=too_large;.;"]
                .iter()
                .map(|r| stat_sum(&chain.envoy, &[&format!("provider=.={name};.;"), r]))
                .sum();
            if failed >= 1 || std::time::Instant::now() > deadline {
                break failed;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(failed >= 1, "{name}: no failed fetch counted");
    }
    let vm = vm_failures(&chain.envoy);
    assert!(vm.is_empty(), "a wasm VM failed: {vm:#?}");
}

/// A VM that traps in the middle of a request (the abi-probe filter's `trap` operation, in front
/// of authz): that request gets Envoy's 503 (`wasm_fail_stream`), nothing reaches the upstream,
/// and with `FAIL_CLOSED` the broken VM keeps failing closed. With `FAIL_RELOAD` a new VM serves
/// again.
#[test]
fn trapping_vm_fails_closed() {
    if envoy_binary().is_none() {
        return;
    }
    let _one = serial();
    for policy in ["FAIL_CLOSED", "FAIL_RELOAD"] {
        let mut probe = plugin("abi_probe", json!({}));
        probe.failure_policy = policy.into();
        let authz = plugin(
            "authz",
            json!({"policies": [{"name": "ok-only", "action": "ALLOW", "rules": [
                {"name": "ok", "to": [{"operation": {"paths": ["/ok"]}}]}]}]}),
        );
        let chain = start_chain(vec![probe, authz], Vec::new(), &[]);
        assert_eq!(chain.status(&Req::get("/ok")), 200);
        assert_eq!(chain.status(&Req::get("/other")), 403);
        let _ = chain.app.take_received();
        let trap = Req::get("/ok").header("x-probe-request_headers", "trap");
        let mut after = Vec::new();
        for _ in 0..4 {
            assert_eq!(chain.status(&trap), 503, "{policy}");
            after.push(chain.status(&Req::get("/ok")));
            after.push(chain.status(&Req::get("/other")));
        }
        println!("{policy}: statuses after traps (/ok, /other)…: {after:?}");
        let passed = after.iter().filter(|s| **s == 200).count();
        assert!(
            after.iter().all(|s| [200, 403, 503].contains(s)),
            "{policy}: {after:?}"
        );
        // Only /ok may pass, and only the ones answered 200 reached the upstream.
        let received = chain.app.take_received();
        assert_eq!(received.len(), passed, "{policy}: {after:?}");
        assert!(received.iter().all(|m| m.method_path().1 == "/ok"));
        assert!(received
            .iter()
            .all(|m| m.header("x-probe-request_headers").is_none()));
        let log = chain.envoy.wait_access_log(2 + 12);
        let details: Vec<&str> = log
            .iter()
            .filter(|e| e["status"] == 503)
            .map(|e| e["response_code_details"].as_str().unwrap_or("-"))
            .collect();
        println!("{policy}: 503 details: {details:?}");
        assert!(details.len() >= 4, "{policy}: {details:?}");
        assert!(
            details.iter().all(|d| d.contains("wasm")),
            "{policy}: {details:?}"
        );
        assert!(
            !vm_failures(&chain.envoy).is_empty(),
            "the trap was not seen"
        );
        if policy == "FAIL_RELOAD" {
            // Reloaded VMs serve again: 10 requests in a row (new connections, both workers)
            // pass /ok, and /other is still refused.
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            let mut in_a_row = 0;
            while in_a_row < 10 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "FAIL_RELOAD: no recovery"
                );
                if chain.status(&Req::get("/ok")) == 200 {
                    in_a_row += 1;
                } else {
                    in_a_row = 0;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            assert_eq!(chain.status(&Req::get("/other")), 403);
            let reloads: Vec<(String, i64)> = chain
                .envoy
                .stats()
                .into_iter()
                .filter(|(k, _)| k.contains("vm_reload"))
                .collect();
            println!("FAIL_RELOAD: {reloads:?}");
            assert!(
                reloads
                    .iter()
                    .any(|(k, v)| k.ends_with("vm_reload_success") && *v >= 1),
                "{reloads:?}"
            );
        }
    }
}

fn bootstrap(port: u16, upstream: u16, plugins: Vec<Plugin>, access_log: &str) -> Bootstrap {
    Bootstrap {
        header: "faults".into(),
        admin_port: "0".into(),
        http_port: port.to_string(),
        tls: None,
        upstream_port: upstream.to_string(),
        clusters: Vec::new(),
        extra_log_fields: Vec::new(),
        access_log: access_log.into(),
        plugins,
    }
}

fn authz_paths(paths: &[&str]) -> Plugin {
    plugin(
        "authz",
        json!({"policies": [{"name": "p", "action": "ALLOW", "rules": [
            {"name": "r", "to": [{"operation": {"paths": paths}}]}]}]}),
    )
}

/// A bad plugin config in the bootstrap: Envoy (not only `--mode validate`) refuses to start and
/// logs the field path; nothing serves.
#[test]
fn bad_config_at_startup_stops_envoy() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let _one = serial();
    let dir = tempdir();
    let bad = plugin(
        "authz",
        json!({"policies": [{"name": "p", "action": "ALOW", "rules": []}]}),
    );
    let b = bootstrap(0, 1, vec![bad], "/dev/null");
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, b.render()).unwrap();
    let err = match Envoy::start(
        &envoy_bin,
        &config,
        dir.path(),
        &dir.path().join("a.log"),
        2,
    ) {
        Ok(_) => panic!("Envoy started with a bad plugin config"),
        Err(e) => e,
    };
    assert!(err.contains("policies[0].action"), "{err}");
}

/// A bad config pushed to a running Envoy (file-based LDS, `path_config_source`): the listener
/// update is rejected (`listener_manager.lds.update_rejected`), the old config keeps serving,
/// and a later good config is applied.
#[test]
fn bad_config_pushed_over_lds_keeps_the_old_one_serving() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let _one = serial();
    let dir = tempdir();
    let app = Upstream::start(0).unwrap();
    let access_log = dir.path().join("access.log");
    let log = access_log.display().to_string();
    let port = free_port();
    let v1 = bootstrap(port, app.port(), vec![authz_paths(&["/v1"])], &log);
    let lds = Lds::write(dir.path(), &v1);
    let envoy = Envoy::start(&envoy_bin, &lds.bootstrap, dir.path(), &access_log, 2).unwrap();
    let status = |path: &str| {
        send_plain(envoy.listener("http"), &Req::get(path))
            .unwrap()
            .status()
    };
    assert_eq!((status("/v1"), status("/v2")), (200, 403));

    for bad_config in [
        json!({"policies": [{"name": "p", "action": "ALLOW", "no_such_field": 1, "rules": []}]}),
        json!({"policies": []}),
        json!("not an object"),
    ] {
        let rejected = stat(&envoy, "listener_manager.lds.update_rejected");
        let bad = bootstrap(port, app.port(), vec![plugin("authz", bad_config)], &log);
        lds.push(&bad);
        wait_for(|| stat(&envoy, "listener_manager.lds.update_rejected") > rejected);
        // The old listener and its plugin config keep serving.
        for _ in 0..4 {
            assert_eq!((status("/v1"), status("/v2")), (200, 403));
        }
    }
    assert!(envoy.log_tail(200).contains("config rejected"));

    let v2 = bootstrap(port, app.port(), vec![authz_paths(&["/v2"])], &log);
    let ok = stat(&envoy, "listener_manager.lds.update_success");
    lds.push(&v2);
    wait_for(|| stat(&envoy, "listener_manager.lds.update_success") > ok);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while status("/v2") != 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..4 {
        assert_eq!((status("/v1"), status("/v2")), (403, 200));
    }
    let vm = vm_failures(&envoy);
    assert!(vm.is_empty(), "a wasm VM failed: {vm:#?}");
}

fn wait_for(cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for Envoy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
