//! The state of one HTTP stream, shared by every filter of the chain (header maps, bodies,
//! properties, filter state) plus each filter's view of it (its context id and which maps are
//! live for it in the current phase).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::codec::HeaderCodec;
use crate::types::{HeaderMap, LocalReply};

/// A stream as the VMs see it.
pub(crate) type StreamRef = Arc<Mutex<StreamState>>;

/// Direction through the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Request: filters in configuration order.
    Decode,
    /// Response: filters in reverse order.
    Encode,
}

/// What flows through a filter chain direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Headers { eos: bool },
    Data { bytes: Vec<u8>, eos: bool },
    Trailers,
}

/// One direction of the chain (decode = request, encode = response): items waiting, and the
/// position of the first item in the filter order.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    pub items: VecDeque<Item>,
    pub pos: usize,
    pub paused: bool,
    /// Paused on a data item without end of stream: the next chunk is appended to it and the
    /// same filter called again with the whole buffer (StopIterationAndBuffer).
    pub buffering: bool,
}

/// One filter's view of the stream.
#[derive(Debug, Default, Clone)]
pub(crate) struct Slot {
    /// Context id in that filter's VM, once created.
    pub ctx: Option<u32>,
    pub req_headers: bool,
    pub req_body: bool,
    pub req_trailers: bool,
    pub resp_headers: bool,
    pub resp_body: bool,
    pub resp_trailers: bool,
    /// The filter sent a local reply on this stream.
    pub local_reply_sent: bool,
    /// The 503 `wasm_fail_stream` was sent for this filter.
    pub failure_reply_sent: bool,
    /// on_delete ran.
    pub deleted: bool,
}

/// The shared state of one stream.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub id: u64,
    /// How repeated header lines become map entries (the host's setting).
    pub codec: HeaderCodec,
    /// Times a request-header change by a filter cleared Envoy's route cache.
    pub route_cache_cleared: u32,
    pub request_headers: HeaderMap,
    pub request_trailers: Option<HeaderMap>,
    pub response_headers: Option<HeaderMap>,
    pub response_trailers: Option<HeaderMap>,
    /// Property path (segments joined by NUL) → serialized value.
    /// `None` = removed by the test (hides a default).
    pub properties: HashMap<String, Option<Vec<u8>>>,
    /// The host's default properties (looked up after `properties`; shared, not copied).
    pub defaults: Arc<HashMap<String, Vec<u8>>>,
    /// Envoy filter state (`wasm.<key>`).
    pub filter_state: BTreeMap<String, Vec<u8>>,
    pub slots: Vec<Slot>,
    pub decode: Pipeline,
    pub encode: Pipeline,
    /// Request headers once they passed every filter (what the upstream gets).
    pub upstream_headers: Option<HeaderMap>,
    pub upstream_body: Vec<u8>,
    pub upstream_trailers: Option<HeaderMap>,
    /// Whether the request reached the upstream completely (end of stream passed the chain).
    pub upstream_complete: bool,
    /// Response headers once they passed every filter (what the client gets).
    pub downstream_headers: Option<HeaderMap>,
    pub downstream_body: Vec<u8>,
    pub downstream_complete: bool,
    pub local_reply: Option<LocalReply>,
    /// `proxy_on_log` is running (maps readable, not writable).
    pub log_phase: bool,
    pub finished: bool,
    /// A filter reset the stream (`proxy_close_stream`).
    pub reset: bool,
    /// Some filter called `proxy_continue_stream` on this stream.
    pub resumed: bool,
    /// Start of the stream, fake unix nanos (`request.time`).
    pub start_nanos: u64,
}

impl StreamState {
    pub(crate) fn new(
        id: u64,
        filters: usize,
        start_nanos: u64,
        defaults: Arc<HashMap<String, Vec<u8>>>,
    ) -> StreamState {
        StreamState {
            id,
            codec: HeaderCodec::default(),
            route_cache_cleared: 0,
            request_headers: HeaderMap::new(),
            request_trailers: None,
            response_headers: None,
            response_trailers: None,
            properties: HashMap::new(),
            defaults,
            filter_state: BTreeMap::new(),
            slots: vec![Slot::default(); filters],
            decode: Pipeline::default(),
            encode: Pipeline::default(),
            upstream_headers: None,
            upstream_body: Vec::new(),
            upstream_trailers: None,
            upstream_complete: false,
            downstream_headers: None,
            downstream_body: Vec::new(),
            downstream_complete: false,
            local_reply: None,
            log_phase: false,
            finished: false,
            reset: false,
            resumed: false,
            start_nanos,
        }
    }

    pub(crate) fn slot(&self, filter: usize) -> Option<&Slot> {
        self.slots.get(filter)
    }

    pub(crate) fn slot_mut(&mut self, filter: usize) -> Option<&mut Slot> {
        self.slots.get_mut(filter)
    }

    pub(crate) fn pipe(&mut self, dir: Dir) -> &mut Pipeline {
        match dir {
            Dir::Decode => &mut self.decode,
            Dir::Encode => &mut self.encode,
        }
    }

    /// The data chunk at the front of a pipeline, if that is a data item.
    pub(crate) fn front_data(&mut self, request: bool) -> Option<&mut Vec<u8>> {
        let pipe = if request {
            &mut self.decode
        } else {
            &mut self.encode
        };
        match pipe.items.front_mut() {
            Some(Item::Data { bytes, .. }) => Some(bytes),
            _ => None,
        }
    }
}
