//! Starting a filter chain in a real Envoy for a test, and small request/token helpers.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use meshguard_tool::bootstrap::{Bootstrap, Plugin, Tls};
use meshguard_tool::demo::keys::SigningKey;
use meshguard_tool::demo::servers::Upstream;
use serde_json::{Map, Value};

use super::client::{send_mtls, send_plain, ClientCert, Req};
use super::process::{envoy_binary, Envoy};

/// One Envoy at a time: the machine has 2 cores, and rate-limit timing must not depend on load
/// from another test's proxy.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn wasm_dir() -> PathBuf {
    Path::new(meshguard_wasm_artifacts::PASSTHROUGH)
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("meshguard-e2e-")
        .tempdir()
        .unwrap()
}

/// A running chain: Envoy with `plugins` in front of an echo upstream, clusters as given.
pub struct Chain {
    /// The proxy.
    pub envoy: Envoy,
    /// The application behind it.
    pub app: Upstream,
    /// Scratch directory (certificates, logs).
    pub dir: tempfile::TempDir,
}

pub fn start_chain(
    plugins: Vec<Plugin>,
    clusters: Vec<(String, String)>,
    spiffe_ids: &[&str],
) -> Chain {
    let envoy_bin = envoy_binary().unwrap();
    let dir = tempdir();
    let ids: Vec<String> = spiffe_ids.iter().map(|s| s.to_string()).collect();
    super::certs::generate(&dir.path().join("certs"), &ids).unwrap();
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

pub fn plugin(filter: &str, config: Value) -> Plugin {
    let wasm = meshguard_wasm_artifacts::by_name(filter).unwrap();
    Plugin::new(filter, wasm, config.to_string())
}

pub fn bearer(token: &str) -> Req {
    Req::get("/api/orders").header("authorization", &format!("Bearer {token}"))
}

impl Chain {
    pub fn status(&self, req: &Req) -> u16 {
        send_plain(self.envoy.listener("http"), req)
            .unwrap()
            .status()
    }

    pub fn mtls_status(&self, client: usize, req: &Req) -> u16 {
        let cert = ClientCert {
            ca: self.dir.path().join("certs/ca.pem"),
            cert: self.dir.path().join(format!("certs/client{client}.pem")),
            key: self.dir.path().join(format!("certs/client{client}.key")),
        };
        send_mtls(self.envoy.listener("mtls"), &cert, req, self.dir.path())
            .unwrap()
            .status()
    }

    /// Repeats `req` until it gets `want` or `within` passes; the last status.
    pub fn eventually(&self, req: &Req, want: u16, within: Duration) -> u16 {
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

pub const ISS: &str = "https://issuer.e2e.test";
pub const AUD: &str = "e2e";

pub fn mint(key: &SigningKey, sub: &str, extra: Value) -> String {
    let extra: Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
    key.mint(ISS, sub, AUD, 3600, &extra).unwrap()
}
