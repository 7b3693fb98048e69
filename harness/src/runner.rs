//! Runs a [`Scenario`] through the harness: one JSON result per request, expectations checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{HarnessError, Result};
use crate::exchange::{Outcome, Request};
use crate::host::{FilterSpec, Host, HostBuilder};
use crate::scenario::{parse_duration, Expect, Scenario, ScenarioRequest, ScenarioUpstream};
use crate::types::Action;
use crate::upstream::{HttpResponse, Upstream};

/// A filter given on the command line: name, `.wasm` path, optional config file.
#[derive(Debug, Clone, Default)]
pub struct ChainOverride {
    /// `--filter NAME=PATH`, in order.
    pub filters: Vec<(String, PathBuf)>,
    /// `--config NAME=FILE`.
    pub configs: BTreeMap<String, PathBuf>,
    /// `--workers N`.
    pub workers: Option<usize>,
}

/// The result of one request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestResult {
    /// Request name (or `#<index>`).
    pub request: String,
    /// Copy number for repeated requests.
    pub copy: u32,
    /// Worker it ran on.
    pub worker: usize,
    /// `continue` if it reached the upstream, else `pause`.
    pub action: Action,
    /// Status the client got.
    pub status: u16,
    /// Headers sent upstream.
    pub upstream_headers: Option<Vec<(String, String)>>,
    /// The local reply, if any.
    pub local_reply: Option<crate::types::LocalReply>,
    /// Response headers the client got.
    pub response_headers: Option<Vec<(String, String)>>,
    /// Logs during the request: `LEVEL filter: message`.
    pub logs: Vec<String>,
    /// Metric values after the request.
    pub metrics: BTreeMap<String, i64>,
    /// Filter state after the request.
    pub filter_state: BTreeMap<String, String>,
    /// Whether every expectation held.
    pub passed: bool,
    /// The expectations that failed.
    pub failures: Vec<String>,
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|source| HarnessError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| HarnessError::Invalid(format!("{}: {e}", path.display())))
}

/// Finds `target/wasm-artifacts/wasm32-wasip1/release/meshguard_<name>.wasm` from `start` up.
fn artifact(start: &Path, name: &str) -> Option<PathBuf> {
    let file = format!("meshguard_{}.wasm", name.replace('-', "_"));
    let mut dir = Some(start.to_path_buf());
    while let Some(d) = dir {
        let candidate = d
            .join("target/wasm-artifacts/wasm32-wasip1/release")
            .join(&file);
        if candidate.exists() {
            return Some(candidate);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    None
}

fn upstream(u: &ScenarioUpstream) -> Result<Upstream> {
    let delay = match &u.delay {
        Some(d) => {
            parse_duration(d).ok_or_else(|| HarnessError::Invalid(format!("bad delay {d:?}")))?
        }
        None => std::time::Duration::ZERO,
    };
    if u.never_respond {
        return Ok(Upstream::Timeout);
    }
    if u.fail {
        return Ok(Upstream::Fail { delay });
    }
    let mut r = HttpResponse::status(u.status);
    for (k, v) in u.headers.pairs() {
        r = r.header(&k, &v);
    }
    if let Some(j) = &u.body_json {
        r = r.json(j);
    } else if let Some(b) = &u.body {
        r = r.body(b.clone());
    }
    Ok(Upstream::respond_after(r, delay))
}

/// Builds the host for a scenario (`base` = the scenario file's directory).
pub fn build_host(scenario: &Scenario, base: &Path, chain: &ChainOverride) -> Result<Host> {
    let mut builder = HostBuilder::new();
    let cwd = std::env::current_dir().unwrap_or_default();
    let filters: Vec<(
        String,
        PathBuf,
        Option<serde_json::Value>,
        Option<&crate::scenario::ScenarioFilter>,
    )> = if chain.filters.is_empty() {
        let mut out = Vec::new();
        for f in &scenario.filters {
            let wasm = match &f.wasm {
                Some(p) => base.join(p),
                None => artifact(base, &f.name)
                    .or_else(|| artifact(&cwd, &f.name))
                    .ok_or_else(|| {
                        HarnessError::Invalid(format!("no .wasm for filter {}", f.name))
                    })?,
            };
            let config = match (&f.config, &f.config_file) {
                (Some(c), _) => Some(c.clone()),
                (None, Some(file)) => Some(read_json(&base.join(file))?),
                (None, None) => None,
            };
            out.push((f.name.clone(), wasm, config, Some(f)));
        }
        out
    } else {
        chain
            .filters
            .iter()
            .map(|(name, path)| {
                let from_scenario = scenario.filters.iter().find(|f| f.name == *name);
                let config = match chain.configs.get(name) {
                    Some(file) => Some(read_json(file)?),
                    None => from_scenario.and_then(|f| f.config.clone()),
                };
                Ok((name.clone(), path.clone(), config, from_scenario))
            })
            .collect::<Result<Vec<_>>>()?
    };
    if filters.is_empty() {
        return Err(HarnessError::Invalid(
            "no filter: give --filter or a \"filters\" list".into(),
        ));
    }
    for (name, wasm, config, spec) in filters {
        let mut f = FilterSpec::new(wasm);
        f.name = name;
        if let Some(c) = config {
            f.plugin_config = c.to_string().into_bytes();
        }
        if let Some(s) = spec {
            f.root_id = s.root_id.clone().unwrap_or_default();
            f.vm_id = s.vm_id.clone().unwrap_or_default();
            f.failure_policy = s.failure_policy.unwrap_or_default();
        }
        builder = builder.filter(f);
    }
    for (name, u) in &scenario.upstreams {
        builder = builder.upstream(name, upstream(u)?);
    }
    let clock = scenario.now.map(Clock::fixed_unix).unwrap_or_default();
    builder
        .clock(clock)
        .workers(chain.workers.or(scenario.workers).unwrap_or(1))
        .build()
}

fn request(r: &ScenarioRequest) -> Request {
    let mut q = Request::new(&r.method, &r.path);
    if let Some(a) = &r.authority {
        q = q.authority(a);
    }
    for (k, v) in r.headers.pairs() {
        q = q.header(&k, v);
    }
    if let Some(b) = &r.body {
        q = q.body(b.clone());
    }
    if let Some(p) = &r.peer {
        q = q.peer(&p.spiffe_id);
    }
    if let Some(resp) = &r.response {
        let mut h = HttpResponse::status(resp.status);
        for (k, v) in resp.headers.pairs() {
            h = h.header(&k, &v);
        }
        if let Some(b) = &resp.body {
            h = h.body(b.clone());
        }
        q = q.respond_with(h);
    }
    q
}

/// Checks `expect` against an outcome; returns the failures.
pub fn check(expect: &Expect, out: &Outcome, metric_delta: &dyn Fn(&str) -> i64) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(s) = expect.status {
        if out.status != s {
            f.push(format!("status: expected {s}, got {}", out.status));
        }
    }
    if let Some(fw) = expect.forwarded {
        let got = out.action == Action::Continue;
        if got != fw {
            f.push(format!("forwarded: expected {fw}, got {got}"));
        }
    }
    for (k, v) in &expect.upstream_headers {
        let got = out.upstream_header(k);
        if got.as_deref() != Some(v.as_str()) {
            f.push(format!("upstream header {k}: expected {v:?}, got {got:?}"));
        }
    }
    for k in &expect.upstream_headers_present {
        if out.upstream_header(k).is_none() {
            f.push(format!("upstream header {k}: expected present"));
        }
    }
    for k in &expect.upstream_headers_absent {
        if let Some(v) = out.upstream_header(k) {
            f.push(format!("upstream header {k}: expected absent, got {v:?}"));
        }
    }
    for (k, v) in &expect.response_headers {
        let got = out.response_header(k);
        if got.as_deref() != Some(v.as_str()) {
            f.push(format!("response header {k}: expected {v:?}, got {got:?}"));
        }
    }
    for k in &expect.response_headers_absent {
        if let Some(v) = out.response_header(k) {
            f.push(format!("response header {k}: expected absent, got {v:?}"));
        }
    }
    if let Some(text) = &expect.body_contains {
        if !out.body_text().contains(text.as_str()) {
            f.push(format!(
                "body: expected to contain {text:?}, got {:?}",
                out.body_text()
            ));
        }
    }
    for (name, delta) in &expect.metrics {
        let got = metric_delta(name);
        if got != *delta {
            f.push(format!("metric {name}: expected delta {delta}, got {got}"));
        }
    }
    for (k, v) in &expect.filter_state {
        let key = if k.starts_with("wasm.") {
            k.clone()
        } else {
            format!("wasm.{k}")
        };
        let got = out.filter_state.get(&key);
        if got != Some(v) {
            f.push(format!("filter state {key}: expected {v:?}, got {got:?}"));
        }
    }
    f
}

/// Runs every request of `scenario` on `host`, calling `emit` with each result.
pub fn run(
    host: &Host,
    scenario: &Scenario,
    emit: &mut dyn FnMut(&RequestResult),
) -> Result<(usize, usize)> {
    let (mut passed, mut failed) = (0, 0);
    for (index, r) in scenario.requests.iter().enumerate() {
        if let Some(now) = r.now {
            host.clock().set_unix_secs(now);
        }
        let copies = r.repeat.unwrap_or(1).max(1);
        for copy in 0..copies {
            let before = host.metrics();
            let out = host.send(request(r))?;
            let after = host.metrics();
            let delta = |name: &str| {
                after.get(name).map_or(0, |m| m.value) - before.get(name).map_or(0, |m| m.value)
            };
            let expect = if copy + 1 == copies {
                r.expect_last.as_ref().or(r.expect.as_ref())
            } else {
                r.expect.as_ref()
            };
            let failures = expect.map(|e| check(e, &out, &delta)).unwrap_or_default();
            let result = RequestResult {
                request: r.name.clone().unwrap_or_else(|| format!("#{index}")),
                copy,
                worker: out.worker,
                action: out.action,
                status: out.status,
                upstream_headers: out.upstream_headers.as_ref().map(|h| h.to_pairs()),
                local_reply: out.local_reply.clone(),
                response_headers: out.response_headers.as_ref().map(|h| h.to_pairs()),
                logs: out
                    .logs
                    .iter()
                    .map(|l| format!("{:?} {}: {}", l.level, l.filter, l.message))
                    .collect(),
                metrics: after.iter().map(|(k, m)| (k.clone(), m.value)).collect(),
                filter_state: out.filter_state.clone(),
                passed: failures.is_empty(),
                failures,
            };
            if result.passed {
                passed += 1;
            } else {
                failed += 1;
            }
            emit(&result);
        }
    }
    Ok((passed, failed))
}
