//! Plain data the harness hands to tests: statuses, actions, logs, header maps, replies, events.

use serde::Serialize;

/// A proxy-wasm status code (`proxy_status_t`) as the host returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 0
    Ok,
    /// 1
    NotFound,
    /// 2 (e.g. a header map that is not available in the current phase)
    BadArgument,
    /// 3
    SerializationFailure,
    /// 4
    ParseFailure,
    /// 6 — the Rust SDK cannot represent it.
    InvalidMemoryAccess,
    /// 7
    Empty,
    /// 8
    CasMismatch,
    /// 10
    InternalFailure,
    /// 11 (only as the code of `proxy_get_status` after a failed HTTP call)
    BrokenConnection,
    /// 12 — the Rust SDK cannot represent it (its wrappers panic).
    Unimplemented,
}

impl Status {
    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::NotFound => 1,
            Status::BadArgument => 2,
            Status::SerializationFailure => 3,
            Status::ParseFailure => 4,
            Status::InvalidMemoryAccess => 6,
            Status::Empty => 7,
            Status::CasMismatch => 8,
            Status::InternalFailure => 10,
            Status::BrokenConnection => 11,
            Status::Unimplemented => 12,
        }
    }
}

/// What a filter callback returned (`proxy_action_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 0: go on to the next filter.
    Continue,
    /// 1 (or anything else): stop the chain until `proxy_continue_stream` or a local reply.
    Pause,
}

/// `proxy_log_level_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2 (also WASI stdout)
    Info,
    /// 3
    Warn,
    /// 4 (also WASI stderr, where Rust panic messages go)
    Error,
    /// 5
    Critical,
}

impl LogLevel {
    pub(crate) fn from_raw(level: i32) -> Option<LogLevel> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Worker that logged it (`None` for the canary VM).
    pub worker: Option<usize>,
    /// Name of the filter.
    pub filter: String,
    /// Level.
    pub level: LogLevel,
    /// The message (for WASI fd writes, without the trailing newline).
    pub message: String,
}

/// An HTTP header map as Envoy keeps it: lower-cased names, order and duplicates kept, values as
/// bytes (a client can send non-UTF-8).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, Vec<u8>)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// A map from pairs; names are lower-cased, duplicates kept.
    pub fn from_pairs<I, K, V>(pairs: I) -> HeaderMap
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v.as_ref());
        }
        map
    }

    /// The first value of `name`, as text (lossy).
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_bytes(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The first value of `name`.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Number of entries (duplicates counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }

    /// The entries as text pairs (lossy).
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    /// Adds a value (Envoy `addCopy`).
    pub fn add(&mut self, name: &str, value: &[u8]) {
        self.entries
            .push((name.to_ascii_lowercase(), value.to_vec()));
    }

    /// Envoy's `appendToHeader` on an inline slot: `value` is appended to the first entry of
    /// `name` after `delimiter` (nothing when `value` is empty; no delimiter when the entry is
    /// empty), or the header is added when absent.
    pub(crate) fn append_joined(&mut self, name: &str, value: &[u8], delimiter: &[u8]) {
        let name = name.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some((_, existing)) => {
                if value.is_empty() {
                    return;
                }
                if !existing.is_empty() {
                    existing.extend_from_slice(delimiter);
                }
                existing.extend_from_slice(value);
            }
            None => self.entries.push((name, value.to_vec())),
        }
    }

    /// Replaces every value of `name` with one (Envoy `setCopy`): the first occurrence keeps
    /// its position, or the header is appended.
    pub fn replace(&mut self, name: &str, value: &[u8]) {
        let name = name.to_ascii_lowercase();
        match self.entries.iter().position(|(k, _)| *k == name) {
            Some(first) => {
                if let Some(entry) = self.entries.get_mut(first) {
                    entry.1 = value.to_vec();
                }
                let mut index = 0;
                self.entries.retain(|(k, _)| {
                    let keep = index <= first || *k != name;
                    index += 1;
                    keep
                });
            }
            None => self.entries.push((name, value.to_vec())),
        }
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.entries.retain(|(k, _)| *k != name);
    }

    /// Envoy's `byteSize()`: sum of name and value lengths.
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl std::fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.to_pairs()).finish()
    }
}

impl Serialize for HeaderMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_pairs().serialize(s)
    }
}

/// A local reply a filter sent with `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalReply {
    /// Index in the chain of the filter that sent it.
    pub filter: usize,
    /// HTTP status.
    pub status: u32,
    /// Response code details (spaces replaced by `_` as Envoy does); `wasm_fail_stream` for
    /// the 503 of a failed VM.
    pub details: String,
    /// Body.
    #[serde(serialize_with = "lossy_bytes")]
    pub body: Vec<u8>,
    /// Headers the filter added (names lower-cased).
    pub headers: HeaderMap,
    /// gRPC status, when the filter gave one in 0..=16.
    pub grpc_status: Option<u32>,
}

impl LocalReply {
    /// The first value of a reply header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(crate) fn lossy_bytes<S: serde::Serializer>(
    bytes: &[u8],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// What Envoy does with a worker VM after it trapped (`failure_policy` of the Wasm filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Every later stream on that worker gets a local reply 503 `wasm_fail_stream` (default).
    #[default]
    FailClosed,
    /// Streams go on as if the filter were absent.
    FailOpen,
    /// The failing stream gets the 503; the next stream on that worker gets a fresh VM (the
    /// harness reloads at once; Envoy waits for a backoff, 1 s by default).
    FailReload,
}

/// Order of the end-of-stream callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Lifecycle {
    /// Envoy 1.40: `proxy_on_log` → `proxy_on_done` → `proxy_on_delete` (default).
    #[default]
    Envoy,
    /// The spec's prose: `proxy_on_done` → `proxy_on_log` → `proxy_on_delete`.
    Spec,
}

/// Why a VM trapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrapInfo {
    /// Worker (`None` for the canary VM).
    pub worker: Option<usize>,
    /// Index of the filter in the chain.
    pub filter: usize,
    /// Name of the filter.
    pub filter_name: String,
    /// The guest export that trapped (`proxy_on_request_headers`, …).
    pub callback: String,
    /// wasmtime's message, including the trap code (`wasm trap: wasm \`unreachable\` ...`,
    /// `all fuel consumed`, …) and the backtrace.
    pub message: String,
}

/// One entry of the host's call log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostEvent {
    /// The guest called a host function.
    Hostcall {
        /// Worker (`None` for the canary VM).
        worker: Option<usize>,
        /// Filter index.
        filter: usize,
        /// The (effective) context id the call ran on.
        context_id: u32,
        /// Import name, e.g. `proxy_get_header_map_value`.
        name: &'static str,
        /// Decoded arguments, human-readable.
        args: String,
        /// What the host returned.
        status: Status,
    },
    /// The host called a guest export.
    Callback {
        /// Worker (`None` for the canary VM).
        worker: Option<usize>,
        /// Filter index.
        filter: usize,
        /// Export name, e.g. `proxy_on_log`.
        name: &'static str,
        /// Context id the callback was called with (0 for `_initialize`).
        context_id: u32,
    },
}

/// Something the harness noticed that Envoy tolerates but that is a bug in the filter or a
/// hostcall Envoy does not implement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flag {
    /// A filter returned `Continue` from the callback in which it sent a local reply (Envoy
    /// forces a stop and logs an `envoy bug`).
    ContinueAfterLocalReply {
        /// Worker.
        worker: usize,
        /// Filter index.
        filter: usize,
        /// The callback.
        callback: &'static str,
    },
    /// A hostcall returned UNIMPLEMENTED (12), which the Rust SDK cannot represent.
    Unimplemented {
        /// Worker (`None` for the canary VM).
        worker: Option<usize>,
        /// Filter index.
        filter: usize,
        /// The hostcall.
        name: String,
    },
    /// `proxy_on_done` returned false and the filter never called `proxy_done`.
    DoneDeferred {
        /// Worker.
        worker: usize,
        /// Filter index.
        filter: usize,
    },
}
