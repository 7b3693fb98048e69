//! proxy-wasm host functions other than header maps and buffers.

use std::time::Duration;

use wasmtime::Linker;

use super::{copy_out, parse_pairs, read, read_str, run, stream, write_u32, write_u64, Cx, Hc};
use crate::shared::{lock, Metric, MetricKind, PendingCall, QueueOwner};
use crate::types::{HeaderMap, LocalReply, LogEntry, LogLevel, Status};
use crate::upstream::{timeout_response, CallReply, HttpCall, Upstream};
use crate::vm::{Deferred, Phase, VmState};

macro_rules! hostcall {
    ($linker:expr, $name:literal, $f:ident ( $($a:ident),* )) => {
        $linker.func_wrap("env", $name, |mut c: wasmtime::Caller<'_, VmState>, $($a: i32),*| {
            run(&mut c, $name, |c, args| $f(c, args, $($a),*))
        })?;
    };
}
pub(crate) use hostcall;

pub(super) fn define(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    hostcall!(l, "proxy_log", log(level, ptr, len));
    hostcall!(l, "proxy_get_log_level", get_log_level(ptr));
    hostcall!(l, "proxy_get_current_time_nanoseconds", current_time(ptr));
    hostcall!(l, "proxy_set_tick_period_milliseconds", set_tick_period(ms));
    hostcall!(l, "proxy_set_effective_context", set_effective_context(ctx));
    hostcall!(l, "proxy_done", done());
    hostcall!(
        l,
        "proxy_get_status",
        get_status(code_ptr, msg_ptr_ptr, msg_len_ptr)
    );
    hostcall!(l, "proxy_continue_stream", continue_stream(kind));
    hostcall!(l, "proxy_close_stream", close_stream(kind));
    hostcall!(
        l,
        "proxy_send_local_response",
        send_local_response(st, dp, dl, bp, bl, hp, hl, g)
    );
    hostcall!(
        l,
        "proxy_http_call",
        http_call(up, ul, hp, hl, bp, bl, tp, tl, timeout, token_ptr)
    );
    hostcall!(
        l,
        "proxy_get_shared_data",
        get_shared_data(kp, kl, vpp, vlp, casp)
    );
    hostcall!(
        l,
        "proxy_set_shared_data",
        set_shared_data(kp, kl, vp, vl, cas)
    );
    hostcall!(
        l,
        "proxy_register_shared_queue",
        register_queue(np, nl, idp)
    );
    hostcall!(
        l,
        "proxy_resolve_shared_queue",
        resolve_queue(vp, vl, np, nl, idp)
    );
    hostcall!(l, "proxy_enqueue_shared_queue", enqueue(id, vp, vl));
    hostcall!(l, "proxy_dequeue_shared_queue", dequeue(id, vpp, vlp));
    hostcall!(l, "proxy_define_metric", define_metric(kind, np, nl, idp));
    hostcall!(l, "proxy_get_metric", get_metric(id, vp));
    hostcall!(l, "proxy_get_property", get_property(pp, pl, vpp, vlp));
    hostcall!(l, "proxy_set_property", set_property(pp, pl, vp, vl));
    hostcall!(
        l,
        "proxy_call_foreign_function",
        foreign(np, nl, ap, al, rpp, rlp)
    );
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: wasmtime::Caller<'_, VmState>, id: i32, delta: i64| {
            run(&mut c, "proxy_increment_metric", |c, args| {
                increment_metric(c, args, id, delta)
            })
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: wasmtime::Caller<'_, VmState>, id: i32, value: i64| {
            run(&mut c, "proxy_record_metric", |c, args| {
                record_metric(c, args, id, value)
            })
        },
    )?;
    Ok(())
}

fn log(c: Cx, args: &mut String, level: i32, ptr: i32, len: i32) -> Hc<Status> {
    let message = read_str(c, ptr, len)?;
    *args = format!("level={level} {message:?}");
    let level = LogLevel::from_raw(level).ok_or(Status::BadArgument)?;
    let state = c.data();
    if level >= state.info.log_level {
        lock(&state.shared.logs).push(LogEntry {
            worker: state.worker,
            filter: state.info.name.clone(),
            level,
            message,
        });
    }
    Ok(Status::Ok)
}

fn get_log_level(c: Cx, _: &mut String, ptr: i32) -> Hc<Status> {
    let level = c.data().info.log_level as u32;
    write_u32(c, ptr, level)?;
    Ok(Status::Ok)
}

fn current_time(c: Cx, _: &mut String, ptr: i32) -> Hc<Status> {
    let now = c.data().shared.clock.unix_nanos();
    write_u64(c, ptr, now)?;
    Ok(Status::Ok)
}

fn set_tick_period(c: Cx, args: &mut String, ms: i32) -> Hc<Status> {
    *args = format!("{ms}ms");
    let ms = ms as u32;
    let now = c.data().shared.clock.unix_nanos();
    let state = c.data_mut();
    state.tick_period_ms = ms;
    state.next_tick = (ms > 0).then(|| now + u64::from(ms) * 1_000_000);
    Ok(Status::Ok)
}

fn set_effective_context(c: Cx, args: &mut String, ctx: i32) -> Hc<Status> {
    *args = format!("{ctx}");
    let ctx = ctx as u32;
    let state = c.data_mut();
    if ctx == state.root_ctx || state.streams.contains_key(&ctx) {
        state.effective_ctx = ctx;
        Ok(Status::Ok)
    } else {
        Ok(Status::BadArgument)
    }
}

fn done(c: Cx, _: &mut String) -> Hc<Status> {
    let state = c.data_mut();
    let ctx = state.effective_ctx;
    if state.done_pending.remove(&ctx) {
        state.pending.push(Deferred::Done { ctx });
        Ok(Status::Ok)
    } else {
        Ok(Status::NotFound)
    }
}

fn get_status(c: Cx, _: &mut String, code_ptr: i32, msg_pp: i32, msg_lp: i32) -> Hc<Status> {
    let (code, message) = c.data().status.clone();
    write_u32(c, code_ptr, code)?;
    copy_out(c, message.as_bytes(), msg_pp, msg_lp)?;
    Ok(Status::Ok)
}

fn continue_stream(c: Cx, args: &mut String, kind: i32) -> Hc<Status> {
    *args = format!("stream_type={kind}");
    let ctx = c.data().effective_ctx;
    let deferred = match kind {
        0 => Deferred::ContinueRequest { ctx },
        1 => Deferred::ContinueResponse { ctx },
        2 => return Ok(Status::Ok),
        3 => return Ok(Status::Unimplemented),
        _ => return Ok(Status::BadArgument),
    };
    // Envoy drops the filter's hold on the request maps at once; the resume runs later.
    if let Some(s) = stream(c) {
        let filter = c.data().info.index;
        if let Some(slot) = lock(&s).slot_mut(filter) {
            slot.req_headers = false;
            slot.req_body = false;
            slot.req_trailers = false;
        }
    }
    c.data_mut().pending.push(deferred);
    Ok(Status::Ok)
}

fn close_stream(c: Cx, args: &mut String, kind: i32) -> Hc<Status> {
    *args = format!("stream_type={kind}");
    let ctx = c.data().effective_ctx;
    match kind {
        0 | 1 => {
            c.data_mut().pending.push(Deferred::CloseStream { ctx });
            Ok(Status::Ok)
        }
        2 | 3 => Ok(Status::Ok),
        _ => Ok(Status::BadArgument),
    }
}

#[allow(clippy::too_many_arguments)]
fn send_local_response(
    c: Cx,
    args: &mut String,
    status: i32,
    dp: i32,
    dl: i32,
    bp: i32,
    bl: i32,
    hp: i32,
    hl: i32,
    grpc: i32,
) -> Hc<Status> {
    let details = read_str(c, dp, dl)?;
    let body = read(c, bp, bl)?;
    let headers = HeaderMap::from_pairs(parse_pairs(&read(c, hp, hl)?));
    *args = format!(
        "status={status} details={details:?} headers={headers:?} body_len={}",
        body.len()
    );
    let details: String = details
        .chars()
        .map(|ch| if ch.is_whitespace() { '_' } else { ch })
        .collect();
    let state = c.data_mut();
    let reply = LocalReply {
        filter: state.info.index,
        status: status as u32,
        details,
        body,
        headers,
        grpc_status: u32::try_from(grpc).ok().filter(|g| *g <= 16),
    };
    let ctx = state.effective_ctx;
    state.pending.push(Deferred::LocalReply { ctx, reply });
    Ok(Status::Ok)
}

#[allow(clippy::too_many_arguments)]
fn http_call(
    c: Cx,
    args: &mut String,
    up: i32,
    ul: i32,
    hp: i32,
    hl: i32,
    bp: i32,
    bl: i32,
    tp: i32,
    tl: i32,
    timeout_ms: i32,
    token_ptr: i32,
) -> Hc<Status> {
    let upstream = read_str(c, up, ul)?;
    let mut headers = HeaderMap::from_pairs(parse_pairs(&read(c, hp, hl)?));
    let body = read(c, bp, bl)?;
    let trailers = HeaderMap::from_pairs(parse_pairs(&read(c, tp, tl)?));
    *args = format!(
        "upstream={upstream:?} headers={headers:?} body_len={} timeout={timeout_ms}ms",
        body.len()
    );
    if timeout_ms < 0 {
        return Ok(Status::BadArgument);
    }
    let script = lock(&c.data().shared.upstreams).get(&upstream).cloned();
    let Some(script) = script else {
        return Ok(Status::BadArgument);
    };
    if !headers.contains(":path") || !headers.contains(":method") || !headers.contains(":authority")
    {
        return Ok(Status::BadArgument);
    }
    if !body.is_empty() {
        headers.replace("content-length", body.len().to_string().as_bytes());
    }
    let state = c.data();
    let shared = state.shared.clone();
    let token = shared.next_token();
    let now = shared.clock.unix_nanos();
    let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
    let stream_id = stream(c).map(|s| lock(&s).id);
    let call = HttpCall {
        token,
        worker: state.worker.unwrap_or(0),
        filter: state.info.index,
        upstream,
        headers,
        body,
        trailers,
        timeout,
        stream: stream_id,
    };
    let nanos = |d: Duration| now.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let timeout_due = timeout.map(nanos);
    let (mut due, mut reply) = match script {
        Upstream::Respond { response, delay } => {
            (Some(nanos(delay)), Some(CallReply::Response(response)))
        }
        Upstream::Fail { delay } => (Some(nanos(delay)), Some(CallReply::Failure)),
        Upstream::Timeout | Upstream::Manual => (None, None),
    };
    if let Some(t) = timeout_due {
        if due.is_none_or(|d| d > t) {
            due = Some(t);
            reply = Some(CallReply::Response(timeout_response()));
        }
    }
    lock(&shared.all_calls).push(call.clone());
    lock(&shared.calls).insert(token, PendingCall { call, due, reply });
    c.data_mut().calls.insert(token);
    write_u32(c, token_ptr, token)?;
    Ok(Status::Ok)
}

fn get_shared_data(
    c: Cx,
    args: &mut String,
    kp: i32,
    kl: i32,
    vpp: i32,
    vlp: i32,
    casp: i32,
) -> Hc<Status> {
    let key = read_str(c, kp, kl)?;
    *args = format!("{key:?}");
    let found = lock(&c.data().shared.data).get_as(c.data().worker, &c.data().info.vm_id, &key);
    let Some((value, cas)) = found else {
        return Ok(Status::NotFound);
    };
    copy_out(c, &value, vpp, vlp)?;
    write_u32(c, casp, cas)?;
    Ok(Status::Ok)
}

fn set_shared_data(
    c: Cx,
    args: &mut String,
    kp: i32,
    kl: i32,
    vp: i32,
    vl: i32,
    cas: i32,
) -> Hc<Status> {
    let key = read_str(c, kp, kl)?;
    let value = read(c, vp, vl)?;
    *args = format!("{key:?} len={} cas={}", value.len(), cas as u32);
    let state = c.data();
    Ok(lock(&state.shared.data).set_as(state.worker, &state.info.vm_id, &key, &value, cas as u32))
}

fn register_queue(c: Cx, args: &mut String, np: i32, nl: i32, idp: i32) -> Hc<Status> {
    let name = read_str(c, np, nl)?;
    *args = format!("{name:?}");
    let state = c.data();
    let owner = QueueOwner {
        worker: state.worker,
        filter: state.info.index,
        root_context: state.root_ctx,
    };
    let id = lock(&state.shared.queues).register(&state.info.vm_id, &name, owner);
    write_u32(c, idp, id)?;
    Ok(Status::Ok)
}

fn resolve_queue(
    c: Cx,
    args: &mut String,
    vp: i32,
    vl: i32,
    np: i32,
    nl: i32,
    idp: i32,
) -> Hc<Status> {
    let mut vm_id = read_str(c, vp, vl)?;
    let name = read_str(c, np, nl)?;
    *args = format!("vm_id={vm_id:?} {name:?}");
    if vm_id.is_empty() {
        vm_id = c.data().info.vm_id.clone();
    }
    let id = lock(&c.data().shared.queues).resolve(&vm_id, &name);
    match id {
        Some(id) => {
            write_u32(c, idp, id)?;
            Ok(Status::Ok)
        }
        None => Ok(Status::NotFound),
    }
}

fn enqueue(c: Cx, args: &mut String, id: i32, vp: i32, vl: i32) -> Hc<Status> {
    let value = read(c, vp, vl)?;
    *args = format!("queue={id} len={}", value.len());
    Ok(lock(&c.data().shared.queues).enqueue(id as u32, &value))
}

fn dequeue(c: Cx, args: &mut String, id: i32, vpp: i32, vlp: i32) -> Hc<Status> {
    *args = format!("queue={id}");
    let item = lock(&c.data().shared.queues).dequeue(id as u32);
    match item {
        Ok(value) => {
            copy_out(c, &value, vpp, vlp)?;
            Ok(Status::Ok)
        }
        Err(status) => Ok(status),
    }
}

fn define_metric(c: Cx, args: &mut String, kind: i32, np: i32, nl: i32, idp: i32) -> Hc<Status> {
    let name = read_str(c, np, nl)?;
    *args = format!("type={kind} {name:?}");
    let metric_kind = match kind {
        0 => MetricKind::Counter,
        1 => MetricKind::Gauge,
        2 => MetricKind::Histogram,
        _ => return Ok(Status::BadArgument),
    };
    let state = c.data_mut();
    let existing = state
        .metric_names
        .iter()
        .find(|(_, (k, n))| *k == metric_kind && *n == name)
        .map(|(id, _)| *id);
    let id = match existing {
        Some(id) => id,
        None => {
            let id = (state.next_metric << 2) | kind as u32;
            state.next_metric += 1;
            state.metric_names.insert(id, (metric_kind, name.clone()));
            lock(&state.shared.metrics).entry(name).or_insert(Metric {
                kind: metric_kind,
                value: 0,
                samples: Vec::new(),
            });
            id
        }
    };
    write_u32(c, idp, id)?;
    Ok(Status::Ok)
}

fn with_metric(c: Cx, id: i32, f: impl FnOnce(&mut Metric) -> Status) -> Status {
    let state = c.data();
    let Some((_, name)) = state.metric_names.get(&(id as u32)) else {
        return Status::NotFound;
    };
    let mut metrics = lock(&state.shared.metrics);
    match metrics.get_mut(name) {
        Some(m) => f(m),
        None => Status::NotFound,
    }
}

fn increment_metric(c: Cx, args: &mut String, id: i32, delta: i64) -> Hc<Status> {
    *args = format!("id={id} delta={delta}");
    Ok(with_metric(c, id, |m| match m.kind {
        MetricKind::Counter if delta > 0 => {
            m.value = m.value.saturating_add(delta);
            Status::Ok
        }
        MetricKind::Gauge => {
            m.value = m.value.saturating_add(delta);
            Status::Ok
        }
        _ => Status::BadArgument,
    }))
}

fn record_metric(c: Cx, args: &mut String, id: i32, value: i64) -> Hc<Status> {
    *args = format!("id={id} value={}", value as u64);
    Ok(with_metric(c, id, |m| {
        match m.kind {
            MetricKind::Counter => m.value = m.value.saturating_add(value),
            MetricKind::Gauge => m.value = value,
            MetricKind::Histogram => m.samples.push(value as u64),
        }
        Status::Ok
    }))
}

fn get_metric(c: Cx, args: &mut String, id: i32, vp: i32) -> Hc<Status> {
    *args = format!("id={id}");
    let mut out = None;
    let status = with_metric(c, id, |m| match m.kind {
        MetricKind::Histogram => Status::BadArgument,
        _ => {
            out = Some(m.value as u64);
            Status::Ok
        }
    });
    if let Some(v) = out {
        write_u64(c, vp, v)?;
    }
    Ok(status)
}

fn path_segments(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn get_property(c: Cx, args: &mut String, pp: i32, pl: i32, vpp: i32, vlp: i32) -> Hc<Status> {
    let path = path_segments(&read(c, pp, pl)?);
    *args = path.join(".");
    let value = {
        let s = stream(c);
        let guard = s.as_ref().map(|s| lock(s));
        super::property_value(&c.data().info, guard.as_deref(), &path)
    };
    match value {
        Some(v) => {
            copy_out(c, &v, vpp, vlp)?;
            Ok(Status::Ok)
        }
        None => Ok(Status::NotFound),
    }
}

fn set_property(c: Cx, args: &mut String, pp: i32, pl: i32, vp: i32, vl: i32) -> Hc<Status> {
    let path = path_segments(&read(c, pp, pl)?);
    let value = read(c, vp, vl)?;
    *args = format!("{} = {:?}", path.join("."), String::from_utf8_lossy(&value));
    let Some(s) = stream(c) else {
        return Ok(Status::NotFound);
    };
    lock(&s)
        .filter_state
        .insert(format!("wasm.{}", path.join("\0")), value);
    Ok(Status::Ok)
}

#[allow(clippy::too_many_arguments)]
fn foreign(
    c: Cx,
    args: &mut String,
    np: i32,
    nl: i32,
    _ap: i32,
    _al: i32,
    _rpp: i32,
    _rlp: i32,
) -> Hc<Status> {
    *args = read_str(c, np, nl)?;
    Ok(Status::NotFound)
}

/// Whether the current phase lets the plugin configuration be read.
pub(super) fn plugin_config_readable(state: &VmState) -> bool {
    state.phase == Phase::Configure
}
