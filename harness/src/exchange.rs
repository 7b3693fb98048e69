//! `Host::send`: one whole request through the chain, the way filter authors mostly test.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::host::Host;
use crate::shared::lock;
use crate::stream::HttpStream;
use crate::types::{lossy_bytes, Action, HeaderMap, LocalReply, LogEntry, TrapInfo};
use crate::upstream::{HttpCall, HttpResponse};

/// A request from a client, plus what the application behind the chain answers.
#[derive(Debug, Clone)]
pub struct Request {
    /// `:method`
    pub method: String,
    /// `:path`
    pub path: String,
    /// `:authority` (default `example.com`)
    pub authority: String,
    /// `:scheme` (default `https`)
    pub scheme: String,
    /// Other headers, in order, duplicates allowed.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body (`None`: headers end the request).
    pub body: Option<Vec<u8>>,
    /// Per-request properties: path segments and serialized value.
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    /// mTLS peer identity (URI SAN), if the client connects with a certificate.
    pub peer_spiffe_id: Option<String>,
    /// What the upstream application answers if the request reaches it (default 200, empty).
    pub response: HttpResponse,
    /// Worker to run on (default: round-robin).
    pub worker: Option<usize>,
}

impl Request {
    /// A request with this method and path.
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            authority: "example.com".to_owned(),
            scheme: "https".to_owned(),
            headers: Vec::new(),
            body: None,
            properties: Vec::new(),
            peer_spiffe_id: None,
            response: HttpResponse::ok(),
            worker: None,
        }
    }

    /// GET `path`.
    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// POST `path` with a body.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::new("POST", path).body(body)
    }

    /// Adds a header (duplicates allowed).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets `:authority`.
    pub fn authority(mut self, authority: &str) -> Request {
        self.authority = authority.to_owned();
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Sets a property for this request.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Request {
        self.properties
            .push((path.iter().map(|s| (*s).to_owned()).collect(), value.into()));
        self
    }

    /// The client presents a certificate with this URI SAN.
    pub fn peer(mut self, spiffe_id: &str) -> Request {
        self.peer_spiffe_id = Some(spiffe_id.to_owned());
        self
    }

    /// What the upstream application answers.
    pub fn respond_with(mut self, response: HttpResponse) -> Request {
        self.response = response;
        self
    }

    /// Runs on this worker.
    pub fn on_worker(mut self, worker: usize) -> Request {
        self.worker = Some(worker);
        self
    }

    fn wire_headers(&self) -> Vec<(String, Vec<u8>)> {
        let mut h = vec![
            (":method".to_owned(), self.method.as_bytes().to_vec()),
            (":path".to_owned(), self.path.as_bytes().to_vec()),
            (":authority".to_owned(), self.authority.as_bytes().to_vec()),
            (":scheme".to_owned(), self.scheme.as_bytes().to_vec()),
        ];
        h.extend(self.headers.iter().cloned());
        h
    }
}

/// What happened to a request sent with [`Host::send`].
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Worker it ran on.
    pub worker: usize,
    /// Status the client got (0 if it got no response: stream reset, or held by a filter).
    pub status: u16,
    /// `Continue` if the request reached the upstream, else `Pause`.
    pub action: Action,
    /// Request headers as forwarded upstream.
    pub upstream_headers: Option<HeaderMap>,
    /// Request body as forwarded upstream.
    #[serde(serialize_with = "lossy_bytes")]
    pub upstream_body: Vec<u8>,
    /// The local reply, if a filter sent one.
    pub local_reply: Option<LocalReply>,
    /// Response headers as the client got them.
    pub response_headers: Option<HeaderMap>,
    /// Response body as the client got it.
    #[serde(serialize_with = "lossy_bytes")]
    pub response_body: Vec<u8>,
    /// Filter state after the stream (`wasm.<key>` → value as text).
    pub filter_state: BTreeMap<String, String>,
    /// Logs written while the request ran.
    pub logs: Vec<LogEntry>,
    /// HTTP calls the filters made for it.
    pub http_calls: Vec<HttpCall>,
    /// Traps while the request ran.
    pub traps: Vec<TrapInfo>,
    /// A filter still held the request when the harness gave up waiting (nothing was pending).
    pub stuck: bool,
    /// Times the filters' request-header changes cleared Envoy's route cache (gotcha 21).
    pub route_cache_cleared: u32,
}

impl Outcome {
    /// First value of a header as forwarded upstream.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream_headers.as_ref().and_then(|h| h.get(name))
    }

    /// First value of a response header as the client got it.
    pub fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.as_ref().and_then(|h| h.get(name))
    }

    /// The response body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.response_body).into_owned()
    }
}

impl Host {
    /// Runs a whole request: request headers (and body), waiting in fake time for HTTP calls a
    /// filter holds it for; if it reaches the upstream, the scripted response goes back through
    /// the chain; then the end-of-stream callbacks. Returns what the client and the upstream saw.
    pub fn send(&self, request: Request) -> Result<Outcome> {
        let mut stream = match request.worker {
            Some(w) => self.stream_on(w)?,
            None => self.stream()?,
        };
        let logs_before = self.log_count();
        let traps_before = self.traps().len();
        for (path, value) in &request.properties {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            stream.set_property(&path, value.clone());
        }
        if let Some(id) = &request.peer_spiffe_id {
            stream.set_peer_spiffe_id(id);
        }
        stream.request_headers(request.wire_headers(), request.body.is_none())?;
        if let Some(body) = &request.body {
            stream.request_body(body, true)?;
        }
        let mut stuck = self.settle(&stream, true)?;
        let reached = {
            let s = lock(stream.state());
            s.upstream_complete && s.local_reply.is_none() && !s.reset
        };
        if reached {
            let r = &request.response;
            let end = r.body.is_empty() && r.trailers.is_empty();
            stream.response_headers(r.wire_headers().entries().to_vec(), end)?;
            if !r.body.is_empty() {
                stream.response_body(&r.body, r.trailers.is_empty())?;
            }
            if !r.trailers.is_empty() {
                stream.response_trailers(r.trailers.entries().to_vec())?;
            }
            stuck = self.settle(&stream, false)?;
        }
        stream.finish()?;
        let logs = self.logs().into_iter().skip(logs_before).collect();
        let traps = self.traps().into_iter().skip(traps_before).collect();
        Ok(outcome(&stream, logs, traps, stuck))
    }

    /// Advances fake time to deliver the HTTP calls this stream waits for. Returns true when the
    /// stream is still held with nothing pending.
    fn settle(&self, stream: &HttpStream, request: bool) -> Result<bool> {
        for _ in 0..1000 {
            let held = {
                let s = lock(stream.state());
                let p = if request { &s.decode } else { &s.encode };
                !s.reset && (p.paused || !p.items.is_empty())
            };
            if !held {
                return Ok(false);
            }
            let now = self.clock().unix_nanos();
            let next = lock(&self.inner.shared.calls)
                .values()
                .filter_map(|c| c.due)
                .min();
            match next {
                Some(due) => self.advance(Duration::from_nanos(due.saturating_sub(now)))?,
                None => return Ok(true),
            }
        }
        Ok(true)
    }
}

fn outcome(stream: &HttpStream, logs: Vec<LogEntry>, traps: Vec<TrapInfo>, stuck: bool) -> Outcome {
    Outcome {
        worker: stream.worker(),
        status: stream.status().unwrap_or(0),
        action: stream.action(),
        upstream_headers: stream.upstream_headers(),
        upstream_body: stream.upstream_body(),
        local_reply: stream.local_reply(),
        response_headers: stream.downstream_headers(),
        response_body: stream.downstream_body(),
        filter_state: stream
            .filter_state()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect(),
        logs,
        http_calls: stream.http_calls(),
        traps,
        stuck,
        route_cache_cleared: stream.route_cache_cleared(),
    }
}
