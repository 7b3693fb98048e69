//! Header maps and buffers, with Envoy's phase availability.

use wasmtime::Linker;

use super::proxy::{hostcall, plugin_config_readable};
use super::{
    copy_out, parse_pairs, read, read_str, run, serialize_pairs, stream, write_u32, Cx, Hc,
};
use crate::codec::{self, Side};
use crate::shared::lock;
use crate::stream_state::StreamState;
use crate::types::{HeaderMap, Status};
use crate::vm::VmState;

pub(super) fn define(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    hostcall!(l, "proxy_get_header_map_pairs", get_pairs(kind, pp, lp));
    hostcall!(l, "proxy_set_header_map_pairs", set_pairs(kind, p, len));
    hostcall!(l, "proxy_get_header_map_size", get_size(kind, sp));
    hostcall!(
        l,
        "proxy_get_header_map_value",
        get_value(kind, kp, kl, vpp, vlp)
    );
    hostcall!(
        l,
        "proxy_add_header_map_value",
        add_value(kind, kp, kl, vp, vl)
    );
    hostcall!(
        l,
        "proxy_replace_header_map_value",
        replace_value(kind, kp, kl, vp, vl)
    );
    hostcall!(
        l,
        "proxy_remove_header_map_value",
        remove_value(kind, kp, kl)
    );
    hostcall!(
        l,
        "proxy_get_buffer_bytes",
        get_buffer(kind, start, max, pp, lp)
    );
    hostcall!(
        l,
        "proxy_set_buffer_bytes",
        set_buffer(kind, start, size, p, len)
    );
    hostcall!(
        l,
        "proxy_get_buffer_status",
        get_buffer_status(kind, lp, fp)
    );
    Ok(())
}

/// A readable copy of map `kind`, `Ok(None)` when it is not available in this phase, or
/// BAD_ARGUMENT for an unknown map type.
fn read_map(c: Cx, kind: i32) -> Result<Option<HeaderMap>, Status> {
    match kind {
        0..=3 => {
            let Some(s) = stream(c) else { return Ok(None) };
            let filter = c.data().info.index;
            let s = lock(&s);
            Ok(stream_map(&s, filter, kind, false).cloned())
        }
        4 | 5 => Ok(None),
        6 => Ok(c
            .data()
            .delivery
            .as_ref()
            .and_then(|d| d.response.as_ref())
            .map(|r| r.wire_headers())),
        7 => Ok(c
            .data()
            .delivery
            .as_ref()
            .and_then(|d| d.response.as_ref())
            .map(|r| r.trailers.clone())),
        _ => Err(Status::BadArgument),
    }
}

/// The map of a stream as filter `filter` may see it now. In `on_log` the request headers are
/// the final ones and nothing is writable.
fn stream_map(s: &StreamState, filter: usize, kind: i32, write: bool) -> Option<&HeaderMap> {
    let slot = s.slot(filter)?;
    if s.log_phase {
        if write {
            return None;
        }
        return match kind {
            0 => Some(&s.request_headers),
            2 => s
                .downstream_headers
                .as_ref()
                .or(s.response_headers.as_ref()),
            3 => s.response_trailers.as_ref(),
            _ => None,
        };
    }
    match kind {
        0 if slot.req_headers => Some(&s.request_headers),
        1 if slot.req_trailers => s.request_trailers.as_ref(),
        2 if slot.resp_headers => s.response_headers.as_ref(),
        3 if slot.resp_trailers => s.response_trailers.as_ref(),
        _ => None,
    }
}

/// Applies `f` to a writable map; BAD_ARGUMENT when the map is not writable now. `f` gets the
/// map and an `addCopy` that joins inline headers as Envoy does. A change to the request
/// headers clears Envoy's route cache (`clearRouteCache()` after every add, replace, remove and
/// set-pairs on them, even when nothing changed): counted per stream.
fn write_map(
    c: Cx,
    kind: i32,
    f: impl FnOnce(&mut HeaderMap, &dyn Fn(&mut HeaderMap, &str, &[u8])),
) -> Status {
    if !(0..=3).contains(&kind) {
        return Status::BadArgument;
    }
    let Some(s) = stream(c) else {
        return Status::BadArgument;
    };
    let filter = c.data().info.index;
    let mut s = lock(&s);
    if stream_map(&s, filter, kind, true).is_none() {
        return Status::BadArgument;
    }
    let codec = s.codec;
    let side = match kind {
        0 => Some(Side::Request),
        2 => Some(Side::Response),
        _ => None,
    };
    let add_copy = move |m: &mut HeaderMap, name: &str, value: &[u8]| match side {
        Some(side) => codec::add(codec, side, m, name, value),
        None => m.add(name, value),
    };
    let map = match kind {
        0 => Some(&mut s.request_headers),
        1 => s.request_trailers.as_mut(),
        2 => s.response_headers.as_mut(),
        _ => s.response_trailers.as_mut(),
    };
    match map {
        Some(m) => {
            f(m, &add_copy);
            if kind == 0 {
                s.route_cache_cleared = s.route_cache_cleared.saturating_add(1);
            }
            Status::Ok
        }
        None => Status::BadArgument,
    }
}

fn get_pairs(c: Cx, args: &mut String, kind: i32, pp: i32, lp: i32) -> Hc<Status> {
    *args = format!("map={kind}");
    // Envoy: an unavailable map reads as OK + empty.
    let map = read_map(c, kind)?.unwrap_or_default();
    copy_out(c, &serialize_pairs(map.entries()), pp, lp)?;
    Ok(Status::Ok)
}

fn set_pairs(c: Cx, args: &mut String, kind: i32, p: i32, len: i32) -> Hc<Status> {
    let pairs = parse_pairs(&read(c, p, len)?);
    *args = format!("map={kind} pairs={}", pairs.len());
    Ok(write_map(c, kind, |m, add_copy| {
        *m = HeaderMap::new();
        for (k, v) in &pairs {
            add_copy(m, k, v);
        }
    }))
}

fn get_size(c: Cx, args: &mut String, kind: i32, sp: i32) -> Hc<Status> {
    *args = format!("map={kind}");
    match read_map(c, kind)? {
        Some(m) => {
            write_u32(c, sp, m.byte_size() as u32)?;
            Ok(Status::Ok)
        }
        None => Ok(Status::BadArgument),
    }
}

fn get_value(
    c: Cx,
    args: &mut String,
    kind: i32,
    kp: i32,
    kl: i32,
    vpp: i32,
    vlp: i32,
) -> Hc<Status> {
    let key = read_str(c, kp, kl)?;
    *args = format!("map={kind} {key:?}");
    let in_log = stream(c).is_some_and(|s| lock(&s).log_phase);
    let Some(map) = read_map(c, kind)? else {
        return Ok(if in_log {
            Status::NotFound
        } else {
            Status::BadArgument
        });
    };
    // Envoy returns only the first of duplicate values.
    match map.get_bytes(&key) {
        Some(v) => {
            let v = v.to_vec();
            copy_out(c, &v, vpp, vlp)?;
            Ok(Status::Ok)
        }
        None => Ok(Status::NotFound),
    }
}

fn add_value(
    c: Cx,
    args: &mut String,
    kind: i32,
    kp: i32,
    kl: i32,
    vp: i32,
    vl: i32,
) -> Hc<Status> {
    let key = read_str(c, kp, kl)?;
    let value = read(c, vp, vl)?;
    *args = format!("map={kind} {key:?}={:?}", String::from_utf8_lossy(&value));
    Ok(write_map(c, kind, |m, add_copy| add_copy(m, &key, &value)))
}

fn replace_value(
    c: Cx,
    args: &mut String,
    kind: i32,
    kp: i32,
    kl: i32,
    vp: i32,
    vl: i32,
) -> Hc<Status> {
    let key = read_str(c, kp, kl)?;
    let value = read(c, vp, vl)?;
    *args = format!("map={kind} {key:?}={:?}", String::from_utf8_lossy(&value));
    Ok(write_map(c, kind, |m, _| m.replace(&key, &value)))
}

fn remove_value(c: Cx, args: &mut String, kind: i32, kp: i32, kl: i32) -> Hc<Status> {
    let key = read_str(c, kp, kl)?;
    *args = format!("map={kind} {key:?}");
    Ok(write_map(c, kind, |m, _| m.remove(&key)))
}

/// The bytes of buffer `kind` visible now, `Ok(None)` = NOT_FOUND.
fn buffer(c: Cx, kind: i32) -> Result<Option<Vec<u8>>, Status> {
    let state = c.data();
    match kind {
        0 | 1 => {
            let Some(s) = stream(c) else { return Ok(None) };
            let filter = c.data().info.index;
            let mut s = lock(&s);
            let live = s.slot(filter).is_some_and(|slot| {
                if kind == 0 {
                    slot.req_body
                } else {
                    slot.resp_body
                }
            });
            if !live {
                return Ok(None);
            }
            Ok(Some(s.front_data(kind == 0).cloned().unwrap_or_default()))
        }
        4 => Ok(state
            .delivery
            .as_ref()
            .and_then(|d| d.response.as_ref())
            .map(|r| r.body.clone())),
        6 => Ok(Some(state.info.vm_config.clone())),
        7 if plugin_config_readable(state) => Ok(Some(state.info.plugin_config.clone())),
        2 | 3 | 5 | 7 | 8 => Ok(None),
        _ => Err(Status::BadArgument),
    }
}

fn get_buffer(
    c: Cx,
    args: &mut String,
    kind: i32,
    start: i32,
    max: i32,
    pp: i32,
    lp: i32,
) -> Hc<Status> {
    *args = format!("buffer={kind} start={start} max={max}");
    let (start, max) = (start as u32 as usize, max as u32 as usize);
    if start.checked_add(max).is_none() {
        return Ok(Status::BadArgument);
    }
    let Some(bytes) = buffer(c, kind)? else {
        return Ok(Status::NotFound);
    };
    let end = start.saturating_add(max).min(bytes.len());
    let slice = bytes.get(start..end).unwrap_or_default();
    copy_out(c, slice, pp, lp)?;
    Ok(Status::Ok)
}

fn set_buffer(
    c: Cx,
    args: &mut String,
    kind: i32,
    start: i32,
    size: i32,
    p: i32,
    len: i32,
) -> Hc<Status> {
    let data = read(c, p, len)?;
    *args = format!("buffer={kind} start={start} size={size} len={}", data.len());
    if kind != 0 && kind != 1 {
        return Ok(Status::BadArgument);
    }
    let Some(s) = stream(c) else {
        return Ok(Status::NotFound);
    };
    let filter = c.data().info.index;
    let mut s = lock(&s);
    let live = s.slot(filter).is_some_and(|slot| {
        if kind == 0 {
            slot.req_body
        } else {
            slot.resp_body
        }
    });
    let Some(buf) = s.front_data(kind == 0).filter(|_| live) else {
        return Ok(Status::NotFound);
    };
    let (start, size) = (start as u32 as usize, size as u32 as usize);
    // Envoy supports prepend, replace-all and append only.
    if start == 0 && size == 0 {
        buf.splice(0..0, data);
    } else if start == 0 && size >= buf.len() {
        *buf = data;
    } else if start >= buf.len() {
        buf.extend_from_slice(&data);
    } else {
        return Ok(Status::BadArgument);
    }
    Ok(Status::Ok)
}

fn get_buffer_status(c: Cx, args: &mut String, kind: i32, lp: i32, fp: i32) -> Hc<Status> {
    *args = format!("buffer={kind}");
    let Some(bytes) = buffer(c, kind)? else {
        return Ok(Status::NotFound);
    };
    write_u32(c, lp, bytes.len() as u32)?;
    write_u32(c, fp, 0)?;
    Ok(Status::Ok)
}
