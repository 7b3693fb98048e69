//! Drives streams through the filter chain the way Envoy's filter manager does: decode in
//! configuration order, encode in reverse, stop on Pause, resume on `proxy_continue_stream`,
//! local replies through the encoder filters, failure policies, end-of-stream callbacks. Guest
//! calls are never made from inside a hostcall: actions a hostcall asks for are applied here,
//! after the guest call returned.

use std::sync::Arc;

use crate::host::{HostInner, Worker};
use crate::shared::lock;
use crate::stream_state::{Dir, Item, StreamRef, StreamState};
use crate::types::{Action, FailurePolicy, Flag, HeaderMap, Lifecycle, LocalReply};
use crate::upstream::CallReply;
use crate::vm::{Call, Deferred, Delivery};

/// Details of the 503 a failed VM answers with.
pub(crate) const FAIL_STREAM: &str = "wasm_fail_stream";

fn order(dir: Dir, pos: usize, n: usize) -> usize {
    match dir {
        Dir::Decode => pos,
        Dir::Encode => n - 1 - pos,
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Headers { count: usize, eos: bool },
    Data { len: usize, eos: bool },
    Trailers { count: usize },
}

fn fail_reply(filter: usize) -> LocalReply {
    LocalReply {
        filter,
        status: 503,
        details: FAIL_STREAM.to_owned(),
        body: Vec::new(),
        headers: HeaderMap::new(),
        grpc_status: Some(14),
    }
}

/// A callback's action, the actions its hostcalls deferred, and the 503 of a failed VM.
type Invoked = (Action, Vec<Deferred>, Option<LocalReply>);

/// What a failed VM does in a stream callback: Continue (fail open) or the 503.
fn failed_action(policy: FailurePolicy, filter: usize) -> Invoked {
    match policy {
        FailurePolicy::FailOpen => (Action::Continue, Vec::new(), None),
        FailurePolicy::FailClosed | FailurePolicy::FailReload => {
            (Action::Pause, Vec::new(), Some(fail_reply(filter)))
        }
    }
}

/// Creates filter `f`'s context for the stream if it has none yet.
fn ensure_context(host: &HostInner, w: &mut Worker, st: &StreamRef, f: usize) -> Option<u32> {
    if let Some(ctx) = lock(st).slot(f).and_then(|s| s.ctx) {
        return Some(ctx);
    }
    let vm = w.vms.get_mut(f)?;
    if vm.failed {
        return None;
    }
    let ctx = vm.next_ctx();
    let root = vm.store.data().root_ctx;
    vm.store.data_mut().streams.insert(ctx, st.clone());
    if let Some(slot) = lock(st).slot_mut(f) {
        slot.ctx = Some(ctx);
    }
    let create = vm.exports.context_create.clone();
    let _ = vm.call(
        "proxy_on_context_create",
        create,
        ctx,
        (ctx as i32, root as i32),
    );
    let _ = host;
    Some(ctx)
}

/// Calls filter `f` for one item; returns the action and the actions its hostcalls deferred.
fn invoke(
    host: &HostInner,
    w: &mut Worker,
    st: &StreamRef,
    f: usize,
    dir: Dir,
    kind: Kind,
) -> Invoked {
    let policy = host.policy(f);
    let existing = lock(st).slot(f).and_then(|s| s.ctx);
    let ctx = match (dir, kind) {
        (Dir::Decode, Kind::Headers { .. }) => ensure_context(host, w, st, f),
        _ => existing,
    };
    let Some(vm) = w.vms.get_mut(f) else {
        return (Action::Continue, Vec::new(), None);
    };
    let Some(ctx) = ctx else {
        // No context: the filter never saw the request (or its VM failed before creating one).
        if vm.failed && dir == Dir::Decode {
            return failed_action(policy, f);
        }
        return (Action::Continue, Vec::new(), None);
    };
    {
        let mut s = lock(st);
        let Some(slot) = s.slot_mut(f) else {
            return (Action::Continue, Vec::new(), None);
        };
        if dir == Dir::Encode && slot.failure_reply_sent {
            return (Action::Continue, Vec::new(), None);
        }
        match (dir, kind) {
            (Dir::Decode, Kind::Headers { .. }) => slot.req_headers = true,
            (Dir::Decode, Kind::Data { .. }) => slot.req_body = true,
            (Dir::Decode, Kind::Trailers { .. }) => slot.req_trailers = true,
            (Dir::Encode, Kind::Headers { .. }) => slot.resp_headers = true,
            (Dir::Encode, Kind::Data { .. }) => slot.resp_body = true,
            (Dir::Encode, Kind::Trailers { .. }) => slot.resp_trailers = true,
        }
    }
    if vm.failed {
        return failed_action(policy, f);
    }
    let e = vm.exports.clone();
    let c = ctx as i32;
    let (name, result) = match (dir, kind) {
        (Dir::Decode, Kind::Headers { count, eos }) => (
            "proxy_on_request_headers",
            vm.call(
                "proxy_on_request_headers",
                e.request_headers,
                ctx,
                (c, count as i32, eos as i32),
            ),
        ),
        (Dir::Decode, Kind::Data { len, eos }) => (
            "proxy_on_request_body",
            vm.call(
                "proxy_on_request_body",
                e.request_body,
                ctx,
                (c, len as i32, eos as i32),
            ),
        ),
        (Dir::Decode, Kind::Trailers { count }) => (
            "proxy_on_request_trailers",
            vm.call(
                "proxy_on_request_trailers",
                e.request_trailers,
                ctx,
                (c, count as i32),
            ),
        ),
        (Dir::Encode, Kind::Headers { count, eos }) => (
            "proxy_on_response_headers",
            vm.call(
                "proxy_on_response_headers",
                e.response_headers,
                ctx,
                (c, count as i32, eos as i32),
            ),
        ),
        (Dir::Encode, Kind::Data { len, eos }) => (
            "proxy_on_response_body",
            vm.call(
                "proxy_on_response_body",
                e.response_body,
                ctx,
                (c, len as i32, eos as i32),
            ),
        ),
        (Dir::Encode, Kind::Trailers { count }) => (
            "proxy_on_response_trailers",
            vm.call(
                "proxy_on_response_trailers",
                e.response_trailers,
                ctx,
                (c, count as i32),
            ),
        ),
    };
    let deferred = vm.take_pending();
    let mut action = match result {
        Call::Missing => Action::Continue,
        Call::Returned(0) => Action::Continue,
        Call::Returned(_) => Action::Pause,
        Call::Trapped => {
            let (a, _, reply) = failed_action(policy, f);
            return (a, deferred, reply);
        }
    };
    let sent_reply = deferred
        .iter()
        .any(|d| matches!(d, Deferred::LocalReply { ctx: x, .. } if *x == ctx));
    if sent_reply && action == Action::Continue {
        host.shared.flag(Flag::ContinueAfterLocalReply {
            worker: w.index,
            filter: f,
            callback: name,
        });
    }
    if sent_reply {
        action = Action::Pause;
    }
    if action == Action::Continue {
        if let Some(slot) = lock(st).slot_mut(f) {
            match (dir, kind) {
                (Dir::Decode, Kind::Headers { .. }) => slot.req_headers = false,
                (Dir::Decode, Kind::Data { .. }) => slot.req_body = false,
                (Dir::Decode, Kind::Trailers { .. }) => slot.req_trailers = false,
                (Dir::Encode, Kind::Headers { .. }) => slot.resp_headers = false,
                (Dir::Encode, Kind::Data { .. }) => slot.resp_body = false,
                (Dir::Encode, Kind::Trailers { .. }) => slot.resp_trailers = false,
            }
        }
    }
    (action, deferred, None)
}

/// Moves a stream forward in both directions until nothing can move.
pub(crate) fn pump(host: &HostInner, w: &mut Worker, st: &StreamRef) {
    for _ in 0..10_000 {
        let a = pump_dir(host, w, st, Dir::Decode);
        let b = pump_dir(host, w, st, Dir::Encode);
        if !a && !b {
            return;
        }
    }
}

fn pump_dir(host: &HostInner, w: &mut Worker, st: &StreamRef, dir: Dir) -> bool {
    let n = host.filter_count();
    let mut progressed = false;
    loop {
        let (f, kind) = {
            let mut s = lock(st);
            if s.finished || s.reset {
                return progressed;
            }
            let response_len = s.response_headers.as_ref().map_or(0, HeaderMap::len);
            let request_len = s.request_headers.len();
            let trailers_len = match dir {
                Dir::Decode => s.request_trailers.as_ref().map_or(0, HeaderMap::len),
                Dir::Encode => s.response_trailers.as_ref().map_or(0, HeaderMap::len),
            };
            let p = s.pipe(dir);
            if p.paused {
                return progressed;
            }
            let Some(front) = p.items.front() else {
                return progressed;
            };
            if p.pos >= n {
                let item = p.items.pop_front();
                p.pos = 0;
                if let Some(item) = item {
                    sink(&mut s, dir, item);
                }
                progressed = true;
                continue;
            }
            let kind = match front {
                Item::Headers { eos } => Kind::Headers {
                    count: if dir == Dir::Decode {
                        request_len
                    } else {
                        response_len
                    },
                    eos: *eos,
                },
                Item::Data { bytes, eos } => Kind::Data {
                    len: bytes.len(),
                    eos: *eos,
                },
                Item::Trailers => Kind::Trailers {
                    count: trailers_len,
                },
            };
            (order(dir, p.pos, n), kind)
        };
        let (action, deferred, failure) = invoke(host, w, st, f, dir, kind);
        {
            let mut s = lock(st);
            let p = s.pipe(dir);
            match action {
                Action::Continue => p.pos += 1,
                Action::Pause => {
                    p.paused = true;
                    p.buffering = matches!(kind, Kind::Data { eos: false, .. });
                }
            }
        }
        if let Some(reply) = failure {
            local_reply(&mut lock(st), f, reply);
        }
        apply(host, w, f, deferred);
        progressed = true;
    }
}

/// An item passed every filter: it reaches the upstream (decode) or the client (encode).
fn sink(s: &mut StreamState, dir: Dir, item: Item) {
    match (dir, item) {
        (Dir::Decode, Item::Headers { eos }) => {
            s.upstream_headers = Some(s.request_headers.clone());
            s.upstream_complete |= eos;
        }
        (Dir::Decode, Item::Data { bytes, eos }) => {
            s.upstream_body.extend_from_slice(&bytes);
            s.upstream_complete |= eos;
        }
        (Dir::Decode, Item::Trailers) => {
            s.upstream_trailers = s.request_trailers.clone();
            s.upstream_complete = true;
        }
        (Dir::Encode, Item::Headers { eos }) => {
            s.downstream_headers = s.response_headers.clone();
            s.downstream_complete |= eos;
        }
        (Dir::Encode, Item::Data { bytes, eos }) => {
            s.downstream_body.extend_from_slice(&bytes);
            s.downstream_complete |= eos;
        }
        (Dir::Encode, Item::Trailers) => s.downstream_complete = true,
    }
}

/// Applies actions filter `f`'s hostcalls deferred, then moves the streams they touched.
pub(crate) fn apply(host: &HostInner, w: &mut Worker, f: usize, actions: Vec<Deferred>) {
    let mut touched: Vec<StreamRef> = Vec::new();
    for action in actions {
        let ctx = match &action {
            Deferred::ContinueRequest { ctx }
            | Deferred::ContinueResponse { ctx }
            | Deferred::CloseStream { ctx }
            | Deferred::LocalReply { ctx, .. }
            | Deferred::Done { ctx } => *ctx,
        };
        let Some(vm) = w.vms.get_mut(f) else { continue };
        if let Deferred::Done { ctx } = action {
            let delete = vm.exports.delete.clone();
            let _ = vm.call("proxy_on_delete", delete, ctx, ctx as i32);
            vm.store.data_mut().streams.remove(&ctx);
            continue;
        }
        let Some(st) = vm.store.data().streams.get(&ctx).cloned() else {
            continue;
        };
        {
            let mut s = lock(&st);
            match action {
                Deferred::ContinueRequest { .. } => {
                    resume(&mut s, Dir::Decode, f, host.filter_count())
                }
                Deferred::ContinueResponse { .. } => {
                    resume(&mut s, Dir::Encode, f, host.filter_count())
                }
                Deferred::CloseStream { .. } => {
                    s.reset = true;
                    s.decode.items.clear();
                    s.encode.items.clear();
                }
                Deferred::LocalReply { reply, .. } => local_reply(&mut s, f, reply),
                Deferred::Done { .. } => {}
            }
        }
        if !touched.iter().any(|t| Arc::ptr_eq(t, &st)) {
            touched.push(st);
        }
    }
    for st in touched {
        pump(host, w, &st);
    }
}

fn resume(s: &mut StreamState, dir: Dir, f: usize, n: usize) {
    s.resumed = true;
    let p = s.pipe(dir);
    if p.paused && p.pos < n && order(dir, p.pos, n) == f {
        p.paused = false;
        p.buffering = false;
        p.pos += 1;
    }
}

/// Envoy's `sendLocalReply`: stops decoding; the reply goes through the encoder filters (every
/// filter whose context exists, in reverse order, skipping one whose failure reply this is).
/// During encoding the reply replaces the response at once.
fn local_reply(s: &mut StreamState, f: usize, reply: LocalReply) {
    if s.local_reply.is_some() || s.finished || s.reset {
        return;
    }
    let failure = reply.details == FAIL_STREAM;
    if let Some(slot) = s.slot_mut(f) {
        slot.local_reply_sent = true;
        slot.failure_reply_sent |= failure;
    }
    let mut headers = HeaderMap::new();
    headers.add(":status", reply.status.to_string().as_bytes());
    if !reply.body.is_empty() {
        headers.add("content-length", reply.body.len().to_string().as_bytes());
        if !reply.headers.contains("content-type") {
            headers.add("content-type", b"text/plain");
        }
    }
    for (k, v) in reply.headers.entries() {
        headers.add(k, v);
    }
    if let Some(g) = reply.grpc_status {
        headers.add("grpc-status", g.to_string().as_bytes());
    }
    let body = reply.body.clone();
    s.local_reply = Some(reply);
    s.decode.items.clear();
    s.decode.paused = false;
    let encoding_started = s.response_headers.is_some();
    s.encode.items.clear();
    s.encode.paused = false;
    s.encode.pos = 0;
    if encoding_started {
        s.response_headers = Some(headers.clone());
        s.downstream_headers = Some(headers);
        s.downstream_body = body;
        s.downstream_complete = true;
        return;
    }
    let eos = body.is_empty();
    s.response_headers = Some(headers);
    s.encode.items.push_back(Item::Headers { eos });
    if !eos {
        s.encode.items.push_back(Item::Data {
            bytes: body,
            eos: true,
        });
    }
}

/// Queues an item on a stream (merging data into a buffering filter's chunk) and pumps.
pub(crate) fn push(host: &HostInner, w: &mut Worker, st: &StreamRef, dir: Dir, item: Item) {
    {
        let mut s = lock(st);
        let p = s.pipe(dir);
        let single = p.items.len() == 1;
        let merged = match (&item, p.items.front_mut()) {
            (
                Item::Data { bytes, eos },
                Some(Item::Data {
                    bytes: held,
                    eos: held_eos,
                }),
            ) if p.buffering && single => {
                held.extend_from_slice(bytes);
                *held_eos = *eos;
                true
            }
            _ => false,
        };
        if merged {
            p.paused = false;
            p.buffering = false;
        } else {
            p.items.push_back(item);
        }
    }
    pump(host, w, st);
    deliver_ready(host, w);
}

/// Delivers HTTP-call responses that are due on this worker and queue notifications for it.
pub(crate) fn deliver_ready(host: &HostInner, w: &mut Worker) {
    for _ in 0..10_000 {
        let now = host.shared.clock.unix_nanos();
        let due = lock(&host.shared.calls)
            .iter()
            .filter(|(_, c)| c.call.worker == w.index && c.due.is_some_and(|d| d <= now))
            .min_by_key(|(t, c)| (c.due, **t))
            .map(|(t, _)| *t);
        if let Some(token) = due {
            let pending = lock(&host.shared.calls).remove(&token);
            if let Some(p) = pending {
                if let Some(reply) = p.reply {
                    deliver(host, w, p.call.filter, token, reply);
                }
            }
            continue;
        }
        let ready = {
            let mut q = lock(&host.shared.queues);
            let at = q.ready.iter().position(|(_, o)| o.worker == Some(w.index));
            at.and_then(|i| q.ready.remove(i))
        };
        match ready {
            Some((id, owner)) => {
                if let Some(vm) = w.vms.get_mut(owner.filter) {
                    let f = vm.exports.queue_ready.clone();
                    let _ = vm.call(
                        "proxy_on_queue_ready",
                        f,
                        owner.root_context,
                        (owner.root_context as i32, id as i32),
                    );
                    let d = vm.take_pending();
                    apply(host, w, owner.filter, d);
                }
            }
            None => return,
        }
    }
}

/// Calls `proxy_on_http_call_response` on the root context of the VM that made the call.
pub(crate) fn deliver(host: &HostInner, w: &mut Worker, f: usize, token: u32, reply: CallReply) {
    let Some(vm) = w.vms.get_mut(f) else { return };
    if !vm.store.data_mut().calls.remove(&token) || vm.failed {
        return;
    }
    let root = vm.store.data().root_ctx;
    let (h, b, t) = match &reply {
        CallReply::Response(r) => (r.wire_headers().len(), r.body.len(), r.trailers.len()),
        CallReply::Failure => (0, 0, 0),
    };
    {
        let state = vm.store.data_mut();
        match reply {
            CallReply::Response(r) => {
                state.delivery = Some(Delivery { response: Some(r) });
                state.status = (0, String::new());
            }
            CallReply::Failure => {
                state.delivery = Some(Delivery { response: None });
                state.status = (11, "reset".to_owned());
            }
        }
    }
    let func = vm.exports.http_call_response.clone();
    let params = (root as i32, token as i32, h as i32, b as i32, t as i32);
    let _ = vm.call("proxy_on_http_call_response", func, root, params);
    {
        let state = vm.store.data_mut();
        state.delivery = None;
        state.status = (0, String::new());
    }
    let d = vm.take_pending();
    apply(host, w, f, d);
}

/// End of stream: cancels its pending calls, then `on_log` / `on_done` / `on_delete` in the
/// configured order for every filter (creating a context for a filter that never saw the
/// request, as Envoy does for logging).
pub(crate) fn finish(host: &HostInner, w: &mut Worker, st: &StreamRef) {
    let id = lock(st).id;
    let cancelled: Vec<(u32, usize)> = {
        let mut calls = lock(&host.shared.calls);
        let tokens: Vec<(u32, usize)> = calls
            .iter()
            .filter(|(_, c)| c.call.stream == Some(id))
            .map(|(t, c)| (*t, c.call.filter))
            .collect();
        for (t, _) in &tokens {
            calls.remove(t);
        }
        tokens
    };
    for (token, f) in cancelled {
        if let Some(vm) = w.vms.get_mut(f) {
            vm.store.data_mut().calls.remove(&token);
        }
    }
    let n = host.filter_count();
    let log = |host: &HostInner, w: &mut Worker, f: usize| {
        let Some(ctx) = ensure_context(host, w, st, f) else {
            return;
        };
        lock(st).log_phase = true;
        if let Some(vm) = w.vms.get_mut(f) {
            let func = vm.exports.log.clone();
            let _ = vm.call("proxy_on_log", func, ctx, ctx as i32);
            let _ = vm.take_pending();
        }
        lock(st).log_phase = false;
    };
    let destroy = |host: &HostInner, w: &mut Worker, f: usize, with_log: bool| {
        let ctx = lock(st).slot(f).and_then(|s| s.ctx);
        let Some(ctx) = ctx else { return };
        let Some(vm) = w.vms.get_mut(f) else { return };
        let done = vm.exports.done.clone();
        let finished = !matches!(
            vm.call("proxy_on_done", done, ctx, ctx as i32),
            Call::Returned(0)
        );
        let _ = vm.take_pending();
        if with_log {
            log(host, w, f);
        }
        let Some(vm) = w.vms.get_mut(f) else { return };
        if finished {
            let delete = vm.exports.delete.clone();
            let _ = vm.call("proxy_on_delete", delete, ctx, ctx as i32);
            let _ = vm.take_pending();
            vm.store.data_mut().streams.remove(&ctx);
            if let Some(slot) = lock(st).slot_mut(f) {
                slot.deleted = true;
            }
        } else {
            vm.store.data_mut().done_pending.insert(ctx);
            host.shared.flag(Flag::DoneDeferred {
                worker: w.index,
                filter: f,
            });
        }
    };
    match host.lifecycle() {
        Lifecycle::Envoy => {
            for f in 0..n {
                log(host, w, f);
            }
            for f in 0..n {
                destroy(host, w, f, false);
            }
        }
        Lifecycle::Spec => {
            for f in 0..n {
                ensure_context(host, w, st, f);
                destroy(host, w, f, true);
            }
        }
    }
    let mut s = lock(st);
    s.finished = true;
    s.decode.items.clear();
    s.encode.items.clear();
}
