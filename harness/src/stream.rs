//! One HTTP stream through the filter chain, driven step by step by a test.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::codec::{self, Side};
use crate::driver;
use crate::error::{HarnessError, Result};
use crate::host::HostInner;
use crate::properties;
use crate::shared::lock;
use crate::stream_state::{Dir, Item, StreamRef, StreamState};
use crate::types::{Action, HeaderMap, LocalReply};
use crate::upstream::HttpCall;

/// What one step (headers, body, trailers) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `Continue` when what was sent went through every filter; `Pause` when a filter holds it
    /// (or a local reply ended the stream).
    pub action: Action,
    /// Index of the filter holding the stream, when paused.
    pub paused_by: Option<usize>,
    /// The local reply, once a filter sent one.
    pub local_reply: Option<LocalReply>,
}

/// An HTTP stream on one worker. Its filter contexts are created when the request headers
/// arrive; [`HttpStream::finish`] runs the end-of-stream callbacks (also run on drop if the test
/// did not).
pub struct HttpStream {
    host: Arc<HostInner>,
    worker: usize,
    state: StreamRef,
}

impl std::fmt::Debug for HttpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStream")
            .field("id", &self.id())
            .field("worker", &self.worker)
            .finish()
    }
}

impl HttpStream {
    pub(crate) fn new(host: Arc<HostInner>, worker: usize) -> Result<HttpStream> {
        {
            let mut w = lock(host.worker(worker)?);
            host.reload_failed(&mut w)?;
        }
        let id = host.next_stream.fetch_add(1, Ordering::SeqCst);
        let mut state = StreamState::new(
            id,
            host.filter_count(),
            host.shared.clock.unix_nanos(),
            host.properties.clone(),
        );
        state.codec = host.header_codec;
        Ok(HttpStream {
            host,
            worker,
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// Stream id (unique per host).
    pub fn id(&self) -> u64 {
        lock(&self.state).id
    }

    /// Worker the stream runs on.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Sets a property of this stream (`path` segments, value serialized as Envoy does: see
    /// [`crate::properties`]).
    pub fn set_property(&self, path: &[&str], value: impl Into<Vec<u8>>) {
        lock(&self.state)
            .properties
            .insert(path.join("\0"), Some(value.into()));
    }

    /// Removes a property (then NOT_FOUND unless Envoy derives it).
    pub fn remove_property(&self, path: &[&str]) {
        lock(&self.state).properties.insert(path.join("\0"), None);
    }

    /// An mTLS connection from a peer with this URI SAN (SPIFFE id): `connection.mtls` true and
    /// `connection.uri_san_peer_certificate` set.
    pub fn set_peer_spiffe_id(&self, spiffe_id: &str) {
        self.set_property(&["connection", "mtls"], properties::boolean(true));
        self.set_property(
            &["connection", "uri_san_peer_certificate"],
            properties::string(spiffe_id),
        );
    }

    fn step(&self, dir: Dir, item: Item, prepare: impl FnOnce(&mut StreamState)) -> Result<Step> {
        {
            let mut s = lock(&self.state);
            if s.finished {
                return Err(HarnessError::StreamFinished);
            }
            prepare(&mut s);
        }
        {
            let mut w = lock(self.host.worker(self.worker)?);
            driver::push(&self.host, &mut w, &self.state, dir, item);
        }
        Ok(self.snapshot(dir))
    }

    fn snapshot(&self, dir: Dir) -> Step {
        let mut s = lock(&self.state);
        let n = self.host.filter_count();
        let local_reply = s.local_reply.clone();
        let p = s.pipe(dir);
        let held = p.paused || !p.items.is_empty();
        let paused_by = (p.paused && p.pos < n).then(|| match dir {
            Dir::Decode => p.pos,
            Dir::Encode => n - 1 - p.pos,
        });
        let action = if held || local_reply.is_some() && dir == Dir::Decode {
            Action::Pause
        } else {
            Action::Continue
        };
        Step {
            action,
            paused_by,
            local_reply,
        }
    }

    /// Request headers arrive from the client, one pair per header line: names lower-cased,
    /// repeated lines merged as the host's [`HeaderCodec`] does (Envoy by default: inline
    /// headers such as `authorization` joined with `,`; others kept as separate entries).
    pub fn request_headers<I, K, V>(&mut self, headers: I, end_of_stream: bool) -> Result<Step>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let map = codec::incoming(self.host.header_codec, Side::Request, headers);
        self.step(Dir::Decode, Item::Headers { eos: end_of_stream }, |s| {
            s.request_headers = map
        })
    }

    /// A request body chunk arrives.
    pub fn request_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<Step> {
        self.step(
            Dir::Decode,
            Item::Data {
                bytes: chunk.to_vec(),
                eos: end_of_stream,
            },
            |_| {},
        )
    }

    /// Request trailers arrive (end of the request).
    pub fn request_trailers<I, K, V>(&mut self, trailers: I) -> Result<Step>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let map = HeaderMap::from_pairs(trailers);
        self.step(Dir::Decode, Item::Trailers, |s| {
            s.request_trailers = Some(map)
        })
    }

    /// Response headers arrive from the upstream (include `:status`), merged like request
    /// headers (with Envoy's inline response headers). Ignored once a local reply was sent.
    pub fn response_headers<I, K, V>(&mut self, headers: I, end_of_stream: bool) -> Result<Step>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        if lock(&self.state).local_reply.is_some() {
            return Ok(self.snapshot(Dir::Encode));
        }
        let map = codec::incoming(self.host.header_codec, Side::Response, headers);
        self.step(Dir::Encode, Item::Headers { eos: end_of_stream }, |s| {
            s.response_headers = Some(map)
        })
    }

    /// A response body chunk arrives from the upstream.
    pub fn response_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<Step> {
        if lock(&self.state).local_reply.is_some() {
            return Ok(self.snapshot(Dir::Encode));
        }
        self.step(
            Dir::Encode,
            Item::Data {
                bytes: chunk.to_vec(),
                eos: end_of_stream,
            },
            |_| {},
        )
    }

    /// Response trailers arrive from the upstream.
    pub fn response_trailers<I, K, V>(&mut self, trailers: I) -> Result<Step>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        if lock(&self.state).local_reply.is_some() {
            return Ok(self.snapshot(Dir::Encode));
        }
        let map = HeaderMap::from_pairs(trailers);
        self.step(Dir::Encode, Item::Trailers, |s| {
            s.response_trailers = Some(map)
        })
    }

    /// Ends the stream: pending HTTP calls it made are cancelled, then `on_log`, `on_done`,
    /// `on_delete` run for every filter in the host's lifecycle order. Idempotent.
    pub fn finish(&mut self) -> Result<()> {
        if lock(&self.state).finished {
            return Ok(());
        }
        let mut w = lock(self.host.worker(self.worker)?);
        driver::finish(&self.host, &mut w, &self.state);
        driver::deliver_ready(&self.host, &mut w);
        Ok(())
    }

    /// `Continue` when the request went through every filter to the upstream, else `Pause`.
    pub fn action(&self) -> Action {
        let s = lock(&self.state);
        if s.upstream_headers.is_some() && s.local_reply.is_none() {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    /// Whether some filter holds the request or the response now.
    pub fn is_paused(&self) -> bool {
        let s = lock(&self.state);
        s.decode.paused || s.encode.paused
    }

    /// Whether some filter called `proxy_continue_stream` on this stream.
    pub fn is_resumed(&self) -> bool {
        lock(&self.state).resumed
    }

    /// Whether a filter reset the stream (`proxy_close_stream`).
    pub fn is_reset(&self) -> bool {
        lock(&self.state).reset
    }

    /// The local reply, if a filter sent one (or the 503 of a failed VM).
    pub fn local_reply(&self) -> Option<LocalReply> {
        lock(&self.state).local_reply.clone()
    }

    /// The request headers as they are now (after the filters' edits so far).
    pub fn request_header_map(&self) -> HeaderMap {
        lock(&self.state).request_headers.clone()
    }

    /// The first value of a request header as it is now.
    pub fn request_header(&self, name: &str) -> Option<String> {
        lock(&self.state).request_headers.get(name)
    }

    /// The request headers as forwarded upstream (`None` until they passed every filter).
    pub fn upstream_headers(&self) -> Option<HeaderMap> {
        lock(&self.state).upstream_headers.clone()
    }

    /// The request body as forwarded upstream so far.
    pub fn upstream_body(&self) -> Vec<u8> {
        lock(&self.state).upstream_body.clone()
    }

    /// The response headers as sent to the client (`None` until they passed every filter).
    pub fn downstream_headers(&self) -> Option<HeaderMap> {
        lock(&self.state).downstream_headers.clone()
    }

    /// The response body as sent to the client so far.
    pub fn downstream_body(&self) -> Vec<u8> {
        lock(&self.state).downstream_body.clone()
    }

    /// The HTTP status sent to the client, once response headers went out.
    pub fn status(&self) -> Option<u16> {
        lock(&self.state)
            .downstream_headers
            .as_ref()
            .and_then(|h| h.get(":status"))
            .and_then(|s| s.parse().ok())
    }

    /// How many times a filter's request-header change cleared Envoy's route cache (Envoy calls
    /// `clearRouteCache()` after every add, replace, remove or set-pairs on the request headers,
    /// so the router picks the route again with the changed headers).
    pub fn route_cache_cleared(&self) -> u32 {
        lock(&self.state).route_cache_cleared
    }

    /// Filter state of the stream (`wasm.<key>` → value); readable after [`Self::finish`].
    pub fn filter_state(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.state).filter_state.clone()
    }

    /// One filter-state value as text, by key with or without the `wasm.` prefix.
    pub fn filter_state_value(&self, key: &str) -> Option<String> {
        let s = lock(&self.state);
        let v = s
            .filter_state
            .get(key)
            .or_else(|| s.filter_state.get(&format!("wasm.{key}")))?;
        Some(String::from_utf8_lossy(v).into_owned())
    }

    /// HTTP calls made while this stream was the effective context and not yet answered.
    pub fn pending_http_calls(&self) -> Vec<HttpCall> {
        let id = self.id();
        lock(&self.host.shared.calls)
            .values()
            .filter(|c| c.call.stream == Some(id))
            .map(|c| c.call.clone())
            .collect()
    }

    /// Every HTTP call made for this stream.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        let id = self.id();
        lock(&self.host.shared.all_calls)
            .iter()
            .filter(|c| c.stream == Some(id))
            .cloned()
            .collect()
    }

    /// Whether the stream finished.
    pub fn is_finished(&self) -> bool {
        lock(&self.state).finished
    }

    pub(crate) fn state(&self) -> &StreamRef {
        &self.state
    }
}

impl Drop for HttpStream {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
