//! Support for running several filters as stages of one module (`meshguard-fused`).
//!
//! A filter reads its configuration with [`crate::plugin_configuration`] and resumes a paused
//! request with [`crate::resume_request`]. When a fused module runs the filter as a stage, the
//! configuration is the stage's section of the fused config, and a resume must not let the
//! request past the stages that follow. Both are redirected here, per VM (wasm is
//! single-threaded, so the state is thread-local); outside a fused module nothing changes.
//!
//! **Hand-off in memory.** The stages hand off through filter state, as separate filters do: every
//! `set_property` still reaches the host (access logs and later filters read it there). But a
//! stage reading a key that a stage *of this module* publishes is answered from memory
//! ([`own_filter_state`]): in Envoy every hostcall costs microseconds, and the audit stage alone
//! reads about a dozen such keys per request. A key under an owned prefix that no stage set on
//! this stream is answered as absent, without asking the host.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// The owned filter-state keys one stream set, with their values.
type StreamState = Vec<(String, Vec<u8>)>;

thread_local! {
    static CONFIG: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    static DEFER: Cell<bool> = const { Cell::new(false) };
    static EFFECTIVE: Cell<Option<u32>> = const { Cell::new(None) };
    static DEFERRED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// Filter-state key prefixes the module's own stages publish.
    static OWNED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Per stream (context id): the owned keys set on it, with their values.
    static MEMO: RefCell<HashMap<u32, StreamState>> = RefCell::new(HashMap::new());
}

/// From now on, filter-state keys starting with one of `prefixes` are the module's own: reads of
/// them are answered from what its stages set on the stream (absent if none did), without a
/// hostcall. Replaces any earlier list (a reconfigured module owns what its new stages publish).
pub fn own_filter_state(prefixes: &[&str]) {
    OWNED.with(|o| *o.borrow_mut() = prefixes.iter().map(|p| (*p).to_owned()).collect());
}

/// Drops what [`own_filter_state`] remembered for a finished stream.
pub fn forget_stream(context_id: u32) {
    MEMO.with(|m| {
        m.borrow_mut().remove(&context_id);
    });
}

fn owned(key: &str) -> bool {
    OWNED.with(|o| o.borrow().iter().any(|p| key.starts_with(p.as_str())))
}

/// Called by [`crate::set_property`] after the host accepted `key`: remembers it for the
/// effective stream if the key is owned.
pub(crate) fn remember(key: &str, value: &[u8]) {
    let Some(context_id) = EFFECTIVE.with(Cell::get) else {
        return;
    };
    if !owned(key) {
        return;
    }
    MEMO.with(|m| {
        let mut memo = m.borrow_mut();
        let entries = memo.entry(context_id).or_default();
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_vec(),
            None => entries.push((key.to_owned(), value.to_vec())),
        }
    });
}

/// Called by [`crate::property`]: `Some(answer)` when the path is one owned key (the value set on
/// the effective stream, `None` if none was; an empty value reads as absent, as the SDK returns
/// a zero-length property), `None` when the host must be asked.
pub(crate) fn recall(path: &[&str]) -> Option<Option<Vec<u8>>> {
    let [key] = path else { return None };
    let context_id = EFFECTIVE.with(Cell::get)?;
    if !owned(key) {
        return None;
    }
    Some(MEMO.with(|m| {
        m.borrow()
            .get(&context_id)
            .and_then(|entries| entries.iter().find(|(k, _)| k == key))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    }))
}

/// Runs `f` with [`crate::plugin_configuration`] answering `config` instead of the host's.
pub fn with_plugin_configuration<T>(config: &[u8], f: impl FnOnce() -> T) -> T {
    CONFIG.with(|c| *c.borrow_mut() = Some(config.to_vec()));
    let out = f();
    CONFIG.with(|c| *c.borrow_mut() = None);
    out
}

/// The configuration set by [`with_plugin_configuration`], if any.
pub(crate) fn plugin_configuration() -> Option<Vec<u8>> {
    CONFIG.with(|c| c.borrow().clone())
}

/// From now on, [`crate::resume_request`] of a context made effective with
/// [`crate::set_effective_context`] does not resume: the context id is kept for
/// [`take_deferred_resumes`], so the fused module can run its later stages first.
pub fn defer_resumes() {
    DEFER.with(|d| d.set(true));
}

/// The contexts whose resume was deferred since the last call, in order.
pub fn take_deferred_resumes() -> Vec<u32> {
    DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

/// Notes the effective context: every [`crate::set_effective_context`], and the fused module at
/// the start of each callback (the host makes the callback's context effective).
pub fn note_effective(context_id: u32) {
    EFFECTIVE.with(|e| e.set(Some(context_id)));
}

/// The context last made effective ([`note_effective`]).
pub fn effective() -> Option<u32> {
    EFFECTIVE.with(Cell::get)
}

/// Called by [`crate::resume_request`]: `true` when the resume was deferred.
pub(crate) fn defer_resume() -> bool {
    if !DEFER.with(Cell::get) {
        return false;
    }
    match EFFECTIVE.with(Cell::get) {
        Some(context_id) => {
            DEFERRED.with(|d| d.borrow_mut().push(context_id));
            true
        }
        None => false,
    }
}
