//! Fault injection for the real-Envoy tests: a JWKS endpoint that misbehaves on purpose (slow,
//! garbage, huge, unusable keys), a port nobody listens on, the signs of a failed wasm VM in
//! Envoy's log, and a file-based LDS setup to push a new listener config to a running Envoy.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use meshguard_tool::bootstrap::Bootstrap;
use meshguard_tool::demo::http::{response, HttpServer, Message, Reply};

use super::process::Envoy;

/// How the faulty JWKS endpoint answers every request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Waits this long, then answers 200 with the body (slower than the fetch timeout).
    Slow(Duration, Vec<u8>),
    /// Answers 200 with this body at once (garbage, a huge document, keys that don't parse).
    Body(Vec<u8>),
}

/// A JWKS endpoint with a fault; counts the requests it got. Stops when dropped.
pub struct FaultyJwks {
    server: HttpServer,
    hits: Arc<AtomicUsize>,
}

impl FaultyJwks {
    /// Starts on a free port of 127.0.0.1.
    pub fn start(fault: Fault) -> FaultyJwks {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let server = HttpServer::start(
            0,
            Arc::new(move |_req: &Message| {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = match &fault {
                    Fault::Slow(delay, body) => {
                        std::thread::sleep(*delay);
                        body.clone()
                    }
                    Fault::Body(body) => body.clone(),
                };
                Reply::Respond(response(200, &[("content-type", "application/json")], body))
            }),
        )
        .unwrap();
        FaultyJwks { server, hits }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A port on 127.0.0.1 with nothing listening (connection refused): a JWKS server that is down.
pub fn closed_port() -> u16 {
    free_port()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Lines of Envoy's log that show a wasm VM failing at run time (a trap, a panic, an uncaught
/// runtime error). A plugin refused at configure time is not in this list.
pub fn vm_failures(envoy: &Envoy) -> Vec<String> {
    std::fs::read_to_string(&envoy.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains("Uncaught")
                || l.contains("panicked")
                || l.contains("RuntimeError")
                || l.contains("wasm trap")
        })
        .map(str::to_string)
        .collect()
}

/// A counter or gauge by full name (0 if absent).
pub fn stat(envoy: &Envoy, name: &str) -> i64 {
    envoy.stats().get(name).copied().unwrap_or(0)
}

/// The sum of every stat whose name contains all of `parts`.
pub fn stat_sum(envoy: &Envoy, parts: &[&str]) -> i64 {
    envoy
        .stats()
        .iter()
        .filter(|(k, _)| parts.iter().all(|p| k.contains(p)))
        .map(|(_, v)| *v)
        .sum()
}

/// A bootstrap split for file-based LDS: the bootstrap proper (admin, clusters, and
/// `dynamic_resources.lds_config.path_config_source` pointing at `lds`) and the listeners.
pub struct Lds {
    /// The bootstrap file to start Envoy with.
    pub bootstrap: PathBuf,
    /// The LDS file Envoy watches.
    pub lds: PathBuf,
}

/// Splits a rendered bootstrap into the bootstrap (no static listeners) and the LDS resources.
fn split(rendered: &str) -> (String, String) {
    let start = rendered.find("  listeners:\n").unwrap();
    let end = rendered.find("  clusters:\n").unwrap();
    let head = &rendered[..start];
    let tail = &rendered[end..];
    let listeners = &rendered[start + "  listeners:\n".len()..end];
    let mut lds = String::from("resources:\n");
    for line in listeners.lines() {
        let line = line.strip_prefix("  ").unwrap_or(line);
        if let Some(name) = line.strip_prefix("- name: ") {
            lds.push_str(
                "- \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n  name: ",
            );
            lds.push_str(name);
        } else {
            lds.push_str(line);
        }
        lds.push('\n');
    }
    (format!("{head}{tail}"), lds)
}

impl Lds {
    /// Writes `bootstrap` as a file-LDS pair under `dir`. Listener ports must be fixed (not 0),
    /// so that a listener update keeps its address.
    pub fn write(dir: &Path, bootstrap: &Bootstrap) -> Lds {
        let lds = dir.join("lds.yaml");
        let (boot, listeners) = split(&bootstrap.render());
        let boot = format!(
            "{boot}dynamic_resources:\n  lds_config:\n    resource_api_version: V3\n    \
             path_config_source:\n      path: {}\n",
            serde_json::to_string(&lds.display().to_string()).unwrap()
        );
        let path = dir.join("envoy-lds.yaml");
        std::fs::write(&path, boot).unwrap();
        std::fs::write(&lds, listeners).unwrap();
        Lds {
            bootstrap: path,
            lds,
        }
    }

    /// Pushes the listeners of `bootstrap` to the running Envoy: written next to the LDS file
    /// and renamed over it (Envoy reacts to the move, never sees a half-written file).
    pub fn push(&self, bootstrap: &Bootstrap) {
        let (_, listeners) = split(&bootstrap.render());
        let tmp = self.lds.with_extension("tmp");
        std::fs::write(&tmp, listeners).unwrap();
        std::fs::rename(&tmp, &self.lds).unwrap();
    }
}
