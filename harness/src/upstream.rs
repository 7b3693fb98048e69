//! Scripted upstreams for `proxy_http_call`, and the record of each call.

use std::time::Duration;

use serde::Serialize;

use crate::types::{lossy_bytes, HeaderMap};

/// An HTTP response: from a scripted upstream to a `proxy_http_call`, or from the application
/// behind the filter chain to the main request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpResponse {
    /// Status code (sent as the `:status` header).
    pub status: u16,
    /// Headers other than `:status`.
    pub headers: HeaderMap,
    /// Body.
    #[serde(serialize_with = "lossy_bytes")]
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: HeaderMap,
}

impl HttpResponse {
    /// A response with this status, no headers, no body.
    pub fn status(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: HeaderMap::new(),
            body: Vec::new(),
            trailers: HeaderMap::new(),
        }
    }

    /// 200 OK.
    pub fn ok() -> HttpResponse {
        HttpResponse::status(200)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.add(name, value.as_bytes());
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> HttpResponse {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: &str, value: &str) -> HttpResponse {
        self.trailers.add(name, value.as_bytes());
        self
    }

    /// The headers as the guest sees them: `:status` first, then the others.
    pub(crate) fn wire_headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.add(":status", self.status.to_string().as_bytes());
        for (k, v) in self.headers.entries() {
            map.add(k, v);
        }
        map
    }
}

/// What a scripted upstream does with the calls it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Answers every call with this response after `delay` of fake time (zero: as soon as the
    /// callback that made the call has returned).
    Respond {
        /// The response.
        response: HttpResponse,
        /// Fake time before it arrives.
        delay: Duration,
    },
    /// The connection is reset after `delay`: `proxy_on_http_call_response` gets 0 headers and
    /// `proxy_get_status` says "reset".
    Fail {
        /// Fake time before the failure.
        delay: Duration,
    },
    /// Never answers: the call's own timeout fires (Envoy answers the caller with a 504
    /// `upstream request timeout`); a call without timeout stays pending.
    Timeout,
    /// Calls wait until the test delivers them with [`crate::Host::deliver_http_call`] (or
    /// their timeout fires).
    Manual,
}

impl Upstream {
    /// Answers with `response` at once.
    pub fn respond(response: HttpResponse) -> Upstream {
        Upstream::Respond {
            response,
            delay: Duration::ZERO,
        }
    }

    /// Answers with `response` after `delay` of fake time.
    pub fn respond_after(response: HttpResponse, delay: Duration) -> Upstream {
        Upstream::Respond { response, delay }
    }

    /// Resets every call at once.
    pub fn fail() -> Upstream {
        Upstream::Fail {
            delay: Duration::ZERO,
        }
    }
}

/// An HTTP call a filter made with `proxy_http_call`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpCall {
    /// The token the host returned (unique per host).
    pub token: u32,
    /// Worker whose VM made the call.
    pub worker: usize,
    /// Filter index.
    pub filter: usize,
    /// Cluster name.
    pub upstream: String,
    /// Request headers (`:method`, `:path`, `:authority`, …).
    pub headers: HeaderMap,
    /// Request body.
    #[serde(serialize_with = "lossy_bytes")]
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: HeaderMap,
    /// Timeout the filter asked for (`None` = no timeout).
    pub timeout: Option<Duration>,
    /// Id of the stream that was the effective context when the call was made, if any.
    pub stream: Option<u64>,
}

impl HttpCall {
    /// The first value of a request header of the call.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)
    }
}

/// How a pending call is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallReply {
    /// A response.
    Response(HttpResponse),
    /// A connection failure (0 headers, status "reset").
    Failure,
}

impl From<HttpResponse> for CallReply {
    fn from(response: HttpResponse) -> CallReply {
        CallReply::Response(response)
    }
}

/// The 504 Envoy's async client produces when a call's timeout fires.
pub(crate) fn timeout_response() -> HttpResponse {
    HttpResponse::status(504)
        .header("content-length", "24")
        .header("content-type", "text/plain")
        .body("upstream request timeout")
}
