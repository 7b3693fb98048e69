//! Replays a declarative scenario (`tests/scenarios/**.json`, the harness's format) against a
//! real Envoy and against the harness, and compares the two request by request.
//!
//! On Envoy: the scenario's chain is loaded from the same `.wasm` files with the same configs;
//! the application behind it is a local HTTP server answering each request's `response`; each
//! scenario `upstreams` cluster is a local HTTP server with that cluster name; requests with a
//! `peer` go through the mTLS listener with a client certificate carrying that SPIFFE ID.
//! Expectations are checked with the harness's own `runner::check`, on an `Outcome` built from
//! what Envoy's client, upstream, stats and access log saw, so both hosts are judged by the
//! same code. Harness-only knobs (`now`, `workers`) are ignored; Envoy runs 2 workers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use meshguard_harness::runner::{self, ChainOverride};
use meshguard_harness::scenario::{Expect, Scenario, ScenarioRequest, ScenarioUpstream};
use meshguard_harness::{Action, FailurePolicy, HeaderMap, Outcome};
use meshguard_tool::bootstrap::{Bootstrap, Plugin, Tls};
use meshguard_tool::demo::http::{response, HttpServer, Message, Reply};
use meshguard_tool::demo::servers::{CannedResponse, Upstream};

use super::certs;
use super::client::{send_mtls, send_plain, ClientCert, Req};
use super::process::Envoy;

/// What one host did with one request (copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// Status the client got (0: none).
    pub status: u16,
    /// Whether the request reached the application.
    pub forwarded: bool,
    /// Expectations that failed.
    pub failures: Vec<String>,
}

/// One request copy on both hosts.
#[derive(Debug, Clone)]
pub struct Row {
    /// Request name and copy.
    pub request: String,
    /// On the harness.
    pub harness: Side,
    /// On Envoy.
    pub envoy: Side,
}

impl Row {
    /// Same status, same forwarding, and both pass or both fail their expectations.
    pub fn agrees(&self) -> bool {
        self.harness.status == self.envoy.status
            && self.harness.forwarded == self.envoy.forwarded
            && self.harness.failures.is_empty() == self.envoy.failures.is_empty()
    }
}

/// A scenario on both hosts.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Scenario name (or file).
    pub name: String,
    /// Per request copy.
    pub rows: Vec<Row>,
    /// The harness could not run it (e.g. configure rejected): the reason.
    pub harness_error: Option<String>,
    /// Envoy could not run it (e.g. refused the config): the reason.
    pub envoy_error: Option<String>,
    /// Error/critical lines and panics in Envoy's log.
    pub envoy_log_errors: Vec<String>,
}

impl Comparison {
    /// Both hosts agree on every request (or both refused the scenario's config).
    pub fn agrees(&self) -> bool {
        match (&self.harness_error, &self.envoy_error) {
            (Some(_), Some(_)) => true,
            (None, None) => self.rows.iter().all(Row::agrees),
            _ => false,
        }
    }

    /// Envoy met every expectation.
    pub fn envoy_passed(&self) -> bool {
        self.envoy_error.is_none() && self.rows.iter().all(|r| r.envoy.failures.is_empty())
    }
}

/// Loads a scenario file.
pub fn load(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs `scenario` (from file `path`) on the harness and on Envoy and compares.
pub fn compare(envoy_bin: &Path, path: &Path, scenario: &Scenario, work: &Path) -> Comparison {
    let base = path.parent().unwrap_or(Path::new("."));
    let name = scenario
        .name
        .clone()
        .unwrap_or_else(|| path.display().to_string());
    let mut harness_sides = Vec::new();
    let harness_error = match runner::build_host(scenario, base, &ChainOverride::default()) {
        Ok(host) => runner::run(&host, scenario, &mut |r| {
            harness_sides.push((
                format!("{}#{}", r.request, r.copy),
                Side {
                    status: r.status,
                    forwarded: r.action == Action::Continue,
                    failures: r.failures.clone(),
                },
            ))
        })
        .err()
        .map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    let (envoy_sides, envoy_error, envoy_log_errors) =
        match run_on_envoy(envoy_bin, base, scenario, work) {
            Ok((sides, errors)) => (sides, None, errors),
            Err((e, errors)) => (Vec::new(), Some(e), errors),
        };
    let mut rows = Vec::new();
    let missing = Side {
        status: 0,
        forwarded: false,
        failures: vec!["not run".into()],
    };
    let n = harness_sides.len().max(envoy_sides.len());
    for i in 0..n {
        let (request, harness) = harness_sides
            .get(i)
            .cloned()
            .unwrap_or_else(|| (format!("#{i}"), missing.clone()));
        let envoy = envoy_sides
            .get(i)
            .cloned()
            .unwrap_or_else(|| missing.clone());
        rows.push(Row {
            request,
            harness,
            envoy,
        });
    }
    Comparison {
        name,
        rows,
        harness_error,
        envoy_error,
        envoy_log_errors,
    }
}

fn failure_policy(p: Option<FailurePolicy>) -> &'static str {
    match p.unwrap_or_default() {
        FailurePolicy::FailClosed => "FAIL_CLOSED",
        FailurePolicy::FailOpen => "FAIL_OPEN",
        FailurePolicy::FailReload => "FAIL_RELOAD",
    }
}

/// A local server answering like a scenario `upstreams` entry.
fn cluster_server(u: &ScenarioUpstream) -> std::io::Result<HttpServer> {
    let u = u.clone();
    let delay = u
        .delay
        .as_deref()
        .and_then(meshguard_harness::scenario::parse_duration)
        .unwrap_or(Duration::ZERO);
    HttpServer::start(
        0,
        Arc::new(move |_req: &Message| {
            std::thread::sleep(delay);
            if u.fail {
                return Reply::Drop;
            }
            if u.never_respond {
                std::thread::sleep(Duration::from_secs(60));
                return Reply::Drop;
            }
            let mut resp = response(u.status, &[], Vec::new());
            for (k, v) in u.headers.pairs() {
                resp.headers.push((k, v.into_bytes()));
            }
            if let Some(j) = &u.body_json {
                resp.headers
                    .push(("content-type".into(), b"application/json".to_vec()));
                resp.body = j.to_string().into_bytes();
            } else if let Some(b) = &u.body {
                resp.body = b.clone().into_bytes();
            }
            Reply::Respond(resp)
        }),
    )
}

fn expectations(r: &ScenarioRequest) -> impl Iterator<Item = &Expect> {
    r.expect.iter().chain(r.expect_last.iter())
}

fn state_key(k: &str) -> String {
    k.strip_prefix("wasm.").unwrap_or(k).to_string()
}

type EnvoyRun = Result<(Vec<Side>, Vec<String>), (String, Vec<String>)>;

fn run_on_envoy(envoy_bin: &Path, base: &Path, scenario: &Scenario, work: &Path) -> EnvoyRun {
    let fail = |e: String| (e, Vec::new());
    std::fs::create_dir_all(work).map_err(|e| fail(e.to_string()))?;
    // The chain, from the same files the harness loads.
    let mut plugins = Vec::new();
    for f in &scenario.filters {
        let wasm: PathBuf = match &f.wasm {
            Some(p) => base.join(p),
            None => meshguard_wasm_artifacts::by_name(&f.name)
                .map(PathBuf::from)
                .ok_or_else(|| fail(format!("no .wasm for filter {}", f.name)))?,
        };
        let config = match (&f.config, &f.config_file) {
            (Some(c), _) => c.to_string(),
            (None, Some(file)) => std::fs::read_to_string(base.join(file))
                .map_err(|e| fail(format!("{file}: {e}")))?,
            (None, None) => String::new(),
        };
        let mut p = Plugin::new(&f.name, &wasm.display().to_string(), config);
        p.root_id = f.root_id.clone();
        p.vm_id = f.vm_id.clone();
        p.failure_policy = failure_policy(f.failure_policy).to_string();
        plugins.push(p);
    }
    // The application and the filters' clusters.
    let app = Upstream::start(0).map_err(|e| fail(format!("upstream: {e}")))?;
    let mut servers = Vec::new();
    let mut clusters = Vec::new();
    for (name, u) in &scenario.upstreams {
        let server = cluster_server(u).map_err(|e| fail(format!("cluster {name}: {e}")))?;
        clusters.push((name.clone(), server.port().to_string()));
        servers.push(server);
    }
    // Client certificates, one per SPIFFE ID used.
    let ids: BTreeSet<String> = scenario
        .requests
        .iter()
        .filter_map(|r| r.peer.as_ref().map(|p| p.spiffe_id.clone()))
        .collect();
    let cert_dir = work.join("certs");
    let certs =
        certs::generate(&cert_dir, &ids.iter().cloned().collect::<Vec<_>>()).map_err(fail)?;
    // Filter-state keys the expectations read, printed in the access log.
    let keys: BTreeSet<String> = scenario
        .requests
        .iter()
        .flat_map(expectations)
        .flat_map(|e| e.filter_state.keys().map(|k| state_key(k)))
        .collect();
    let access_log = work.join("access.log");
    let _ = std::fs::remove_file(&access_log);
    let bootstrap = Bootstrap {
        header: format!("e2e bootstrap for scenario {:?}", scenario.name),
        admin_port: "0".into(),
        http_port: "0".into(),
        tls: Some(Tls {
            port: "0".into(),
            cert: cert_dir.join("server.pem").display().to_string(),
            key: cert_dir.join("server.key").display().to_string(),
            client_ca: cert_dir.join("ca.pem").display().to_string(),
        }),
        upstream_port: app.port().to_string(),
        clusters,
        extra_log_fields: keys
            .iter()
            .map(|k| (format!("fs:{k}"), format!("%FILTER_STATE(wasm.{k}:PLAIN)%")))
            .collect(),
        access_log: access_log.display().to_string(),
        plugins,
    };
    let config = work.join("envoy.yaml");
    std::fs::write(&config, bootstrap.render()).map_err(|e| fail(e.to_string()))?;
    let envoy = Envoy::start(envoy_bin, &config, work, &access_log, 2).map_err(fail)?;

    let mut sides = Vec::new();
    let mut sent = 0usize;
    for r in &scenario.requests {
        let copies = r.repeat.unwrap_or(1).max(1);
        for copy in 0..copies {
            let canned = match &r.response {
                Some(resp) => CannedResponse {
                    status: resp.status,
                    headers: resp.headers.pairs(),
                    body: resp.body.clone().unwrap_or_default().into_bytes(),
                },
                None => CannedResponse {
                    status: 200,
                    headers: Vec::new(),
                    body: Vec::new(),
                },
            };
            app.set_response(Some(canned));
            app.take_received();
            let before = envoy.stats();
            let mut req = Req {
                method: r.method.clone(),
                path: r.path.clone(),
                headers: vec![(
                    "host".into(),
                    r.authority
                        .clone()
                        .unwrap_or_else(|| "example.com".into())
                        .into_bytes(),
                )],
                body: r.body.clone().unwrap_or_default().into_bytes(),
            };
            for (k, v) in r.headers.pairs() {
                req.headers.push((k, v.into_bytes()));
            }
            let resp = match &r.peer {
                Some(p) => {
                    let cert: &ClientCert = certs
                        .get(&p.spiffe_id)
                        .ok_or_else(|| (format!("no cert for {}", p.spiffe_id), envoy.errors()))?;
                    send_mtls(envoy.listener("mtls"), cert, &req, work)
                }
                None => send_plain(envoy.listener("http"), &req),
            }
            .map_err(|e| (e, envoy.errors()))?;
            sent += 1;
            let entries = envoy.wait_access_log(sent);
            let after = envoy.stats();
            let received = app.take_received();
            let upstream = received.last();
            let mut filter_state = BTreeMap::new();
            if let Some(entry) = entries.get(sent - 1) {
                for k in &keys {
                    if let Some(v) = entry.get(format!("fs:{k}")).and_then(|v| v.as_str()) {
                        filter_state.insert(format!("wasm.{k}"), v.to_string());
                    }
                }
            }
            let outcome = outcome(&resp, upstream, filter_state);
            let delta = |name: &str| {
                let key = format!("wasmcustom.{name}");
                after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0)
            };
            let expect = if copy + 1 == copies {
                r.expect_last.as_ref().or(r.expect.as_ref())
            } else {
                r.expect.as_ref()
            };
            let failures = expect
                .map(|e| runner::check(e, &outcome, &delta))
                .unwrap_or_default();
            sides.push(Side {
                status: outcome.status,
                forwarded: upstream.is_some(),
                failures,
            });
        }
    }
    drop(servers);
    Ok((sides, envoy.errors()))
}

/// The harness `Outcome` of what Envoy's client and upstream saw.
fn outcome(
    resp: &Message,
    upstream: Option<&Message>,
    filter_state: BTreeMap<String, String>,
) -> Outcome {
    let upstream_headers = upstream.map(|m| {
        let (method, path) = m.method_path();
        let mut pairs: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), method.into_bytes()),
            (":path".into(), path.into_bytes()),
        ];
        if let Some(host) = m.header("host") {
            pairs.push((":authority".into(), host.into_bytes()));
        }
        pairs.extend(m.headers.iter().cloned());
        HeaderMap::from_pairs(pairs)
    });
    let mut response_pairs: Vec<(String, Vec<u8>)> =
        vec![(":status".into(), resp.status().to_string().into_bytes())];
    response_pairs.extend(resp.headers.iter().cloned());
    Outcome {
        worker: 0,
        status: resp.status(),
        action: if upstream.is_some() {
            Action::Continue
        } else {
            Action::Pause
        },
        upstream_headers,
        upstream_body: upstream.map(|m| m.body.clone()).unwrap_or_default(),
        local_reply: None,
        response_headers: Some(HeaderMap::from_pairs(response_pairs)),
        response_body: resp.body.clone(),
        filter_state,
        logs: Vec::new(),
        http_calls: Vec::new(),
        traps: Vec::new(),
        stuck: false,
        // Envoy does not expose route-cache clears; the comparison ignores this field.
        route_cache_cleared: 0,
    }
}
