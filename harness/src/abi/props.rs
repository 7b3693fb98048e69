//! Property lookup as Envoy does it: explicit per-stream values, attributes derived from the
//! request, plugin attributes, and filter state (`wasm.<name>`) for unknown top-level names.

use crate::stream_state::StreamState;
use crate::vm::FilterInfo;

use super::pairs::serialize_pairs;

fn int(v: i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The serialized value of property `path` (segments), or `None` (NOT_FOUND).
pub(crate) fn property_value(
    info: &FilterInfo,
    stream: Option<&StreamState>,
    path: &[String],
) -> Option<Vec<u8>> {
    let first = path.first()?.as_str();
    if path.len() == 1 {
        match first {
            "plugin_name" => return Some(info.name.clone().into_bytes()),
            "plugin_root_id" => return Some(info.root_id.clone().into_bytes()),
            "plugin_vm_id" => return Some(info.vm_id.clone().into_bytes()),
            _ => {}
        }
    }
    let stream = stream?;
    let key = path.join("\0");
    match stream.properties.get(&key) {
        Some(explicit) => return explicit.clone(),
        None => {
            if let Some(v) = stream.defaults.get(&key) {
                return Some(v.clone());
            }
        }
    }
    if let Some(v) = derived(stream, path) {
        return Some(v);
    }
    if path.len() == 1 && !KNOWN_ROOTS.contains(&first) {
        return stream.filter_state.get(&format!("wasm.{first}")).cloned();
    }
    None
}

/// Top-level names Envoy resolves itself (never looked up as filter state).
const KNOWN_ROOTS: &[&str] = &[
    "request",
    "response",
    "source",
    "destination",
    "connection",
    "upstream",
    "metadata",
    "filter_state",
    "upstream_filter_state",
    "xds",
    "node",
    "cluster_name",
    "route_name",
    "listener_direction",
];

fn derived(s: &StreamState, path: &[String]) -> Option<Vec<u8>> {
    let seg: Vec<&str> = path.iter().map(String::as_str).collect();
    let header = |name: &str| s.request_headers.get_bytes(name).map(<[u8]>::to_vec);
    let full_path = || header(":path").unwrap_or_default();
    match seg.as_slice() {
        ["request", "path"] => header(":path"),
        ["request", "url_path"] => {
            let p = full_path();
            Some(p.split(|b| *b == b'?').next().unwrap_or_default().to_vec())
        }
        ["request", "query"] => {
            let p = full_path();
            let at = p.iter().position(|b| *b == b'?')?;
            Some(p.get(at + 1..).unwrap_or_default().to_vec())
        }
        ["request", "host"] => header(":authority"),
        ["request", "scheme"] => header(":scheme"),
        ["request", "method"] => header(":method"),
        ["request", "referer"] => header("referer"),
        ["request", "useragent"] => header("user-agent"),
        ["request", "id"] => header("x-request-id"),
        ["request", "protocol"] => Some(b"HTTP/1.1".to_vec()),
        ["request", "time"] => Some(int(i64::try_from(s.start_nanos).unwrap_or(i64::MAX))),
        ["request", "headers"] => Some(serialize_pairs(s.request_headers.entries())),
        ["request", "headers", name] => header(name),
        ["response", rest @ ..] => {
            let headers = s
                .downstream_headers
                .as_ref()
                .or(s.response_headers.as_ref())?;
            match rest {
                ["code"] => {
                    let code = headers.get(":status")?.parse::<i64>().ok()?;
                    Some(int(code))
                }
                ["code_details"] => Some(
                    s.local_reply
                        .as_ref()
                        .map(|r| r.details.clone())
                        .unwrap_or_else(|| "via_upstream".to_owned())
                        .into_bytes(),
                ),
                ["headers"] => Some(serialize_pairs(headers.entries())),
                ["headers", name] => headers.get_bytes(name).map(<[u8]>::to_vec),
                _ => None,
            }
        }
        _ => None,
    }
}
