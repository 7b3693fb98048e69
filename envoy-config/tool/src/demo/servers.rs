//! The demo upstream and JWKS server, as threads on 127.0.0.1 that the caller controls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{json, Value};

use super::http::{response, HttpServer, Message, Reply};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A canned upstream response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

#[derive(Default)]
struct UpstreamState {
    received: Vec<Message>,
    canned: Option<CannedResponse>,
}

/// The service behind the proxy. By default it answers 200 with a JSON echo of the request
/// (`{"method", "path", "headers": {name: value}}`); `/status/<code>` answers `<code>`;
/// [`Upstream::set_response`] makes every later request get a canned response. Every request
/// it receives is recorded, so a test can assert on what the filters forwarded.
pub struct Upstream {
    state: Arc<Mutex<UpstreamState>>,
    server: HttpServer,
}

fn echo(req: &Message) -> Value {
    let (method, path) = req.method_path();
    // Header name -> value (repeated headers joined with ", ").
    let mut headers = serde_json::Map::new();
    for (n, v) in &req.headers {
        let name = n.to_ascii_lowercase();
        let v = String::from_utf8_lossy(v).into_owned();
        let joined = match headers.get(&name).and_then(Value::as_str) {
            Some(prev) => format!("{prev}, {v}"),
            None => v,
        };
        headers.insert(name, Value::String(joined));
    }
    json!({ "upstream": "meshguard-demo", "method": method, "path": path, "headers": headers })
}

impl Upstream {
    /// Starts on `127.0.0.1:port` (`0` = any free port).
    pub fn start(port: u16) -> std::io::Result<Upstream> {
        let state = Arc::new(Mutex::new(UpstreamState::default()));
        let handler_state = state.clone();
        let server = HttpServer::start(
            port,
            Arc::new(move |req: &Message| {
                let mut st = lock(&handler_state);
                st.received.push(req.clone());
                if let Some(c) = &st.canned {
                    let mut resp = response(c.status, &[], c.body.clone());
                    resp.headers = c
                        .headers
                        .iter()
                        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
                        .collect();
                    return Reply::Respond(resp);
                }
                let (_, path) = req.method_path();
                let status = path
                    .strip_prefix("/status/")
                    .and_then(|s| s.split(['?', '/']).next())
                    .and_then(|s| s.parse::<u16>().ok())
                    .filter(|s| (200..600).contains(s))
                    .unwrap_or(200);
                let body = serde_json::to_vec_pretty(&echo(req)).unwrap_or_default();
                Reply::Respond(response(
                    status,
                    &[("content-type", "application/json"), ("x-upstream", "demo")],
                    body,
                ))
            }),
        )?;
        Ok(Upstream { state, server })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every later request gets `canned` (`None`: back to the echo).
    pub fn set_response(&self, canned: Option<CannedResponse>) {
        lock(&self.state).canned = canned;
    }

    /// Takes the requests received so far.
    pub fn take_received(&self) -> Vec<Message> {
        std::mem::take(&mut lock(&self.state).received)
    }
}

/// How the JWKS server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksMode {
    /// Serve the current JWKS.
    Serve,
    /// Answer every request with this status and an empty body.
    Status(u16),
    /// Close every connection without answering (a crashed server, as the proxy sees it).
    Drop,
}

struct JwksState {
    jwks: String,
    issuer: String,
    mode: JwksMode,
}

/// A JWKS server: `/.well-known/jwks.json` (any path ending in `jwks.json` or `/jwks`),
/// `/.well-known/openid-configuration` (OIDC discovery pointing at the JWKS). The JWKS can be
/// replaced (key rotation) and the server made to fail, and it counts the fetches.
pub struct JwksServer {
    state: Arc<Mutex<JwksState>>,
    fetches: Arc<AtomicUsize>,
    server: HttpServer,
}

impl JwksServer {
    /// Starts on `127.0.0.1:port` serving `jwks`, advertising `issuer` in discovery.
    pub fn start(port: u16, jwks: String, issuer: &str) -> std::io::Result<JwksServer> {
        let state = Arc::new(Mutex::new(JwksState {
            jwks,
            issuer: issuer.to_string(),
            mode: JwksMode::Serve,
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (st, count) = (state.clone(), fetches.clone());
        let server = HttpServer::start(
            port,
            Arc::new(move |req: &Message| {
                let st = lock(&st);
                let (_, path) = req.method_path();
                let path = path.split('?').next().unwrap_or("").to_string();
                let host = req.header("host").unwrap_or_default();
                match st.mode {
                    JwksMode::Serve => {}
                    JwksMode::Status(code) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        return Reply::Respond(response(code, &[], Vec::new()));
                    }
                    JwksMode::Drop => {
                        count.fetch_add(1, Ordering::SeqCst);
                        return Reply::Drop;
                    }
                }
                if path.ends_with("jwks.json") || path.ends_with("/jwks") {
                    count.fetch_add(1, Ordering::SeqCst);
                    Reply::Respond(response(
                        200,
                        &[("content-type", "application/json")],
                        st.jwks.clone(),
                    ))
                } else if path == "/.well-known/openid-configuration" {
                    let doc = json!({
                        "issuer": st.issuer,
                        "jwks_uri": format!("http://{host}/.well-known/jwks.json"),
                    });
                    Reply::Respond(response(
                        200,
                        &[("content-type", "application/json")],
                        doc.to_string(),
                    ))
                } else {
                    Reply::Respond(response(404, &[], Vec::new()))
                }
            }),
        )?;
        Ok(JwksServer {
            state,
            fetches,
            server,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Replaces the served JWKS (key rotation).
    pub fn set_jwks(&self, jwks: String) {
        lock(&self.state).jwks = jwks;
    }

    /// Changes how requests are answered.
    pub fn set_mode(&self, mode: JwksMode) {
        lock(&self.state).mode = mode;
    }

    /// JWKS requests seen so far (including failed ones).
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::send;
    use super::*;
    use std::time::Duration;

    fn get(port: u16, path: &str) -> Message {
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        send(addr, "GET", path, &[], b"", Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn upstream_echoes_records_and_serves_canned_responses() {
        let up = Upstream::start(0).unwrap();
        let resp = get(up.port(), "/hello");
        assert_eq!(resp.status(), 200);
        let body: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["path"], "/hello");
        assert_eq!(get(up.port(), "/status/503").status(), 503);
        assert_eq!(up.take_received().len(), 2);
        up.set_response(Some(CannedResponse {
            status: 418,
            headers: vec![("x-c".into(), "1".into())],
            body: b"tea".to_vec(),
        }));
        let resp = get(up.port(), "/");
        assert_eq!((resp.status(), resp.body.as_slice()), (418, &b"tea"[..]));
    }

    #[test]
    fn jwks_server_rotates_fails_and_counts() {
        let jwks = JwksServer::start(0, "{\"keys\":[]}".into(), "https://issuer").unwrap();
        assert_eq!(
            get(jwks.port(), "/.well-known/jwks.json").body,
            b"{\"keys\":[]}"
        );
        let disc: Value =
            serde_json::from_slice(&get(jwks.port(), "/.well-known/openid-configuration").body)
                .unwrap();
        assert!(disc["jwks_uri"]
            .as_str()
            .unwrap()
            .ends_with("/.well-known/jwks.json"));
        jwks.set_jwks("{\"keys\":[1]}".into());
        assert_eq!(get(jwks.port(), "/jwks.json").body, b"{\"keys\":[1]}");
        jwks.set_mode(JwksMode::Status(503));
        assert_eq!(get(jwks.port(), "/jwks.json").status(), 503);
        jwks.set_mode(JwksMode::Drop);
        let addr = format!("127.0.0.1:{}", jwks.port()).parse().unwrap();
        assert!(send(addr, "GET", "/jwks.json", &[], b"", Duration::from_secs(5)).is_err());
        assert_eq!(jwks.fetches(), 4);
    }
}
