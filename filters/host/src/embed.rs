//! Support for running several filters as stages of one module (`meshguard-fused`).
//!
//! A filter reads its configuration with [`crate::plugin_configuration`] and resumes a paused
//! request with [`crate::resume_request`]. When a fused module runs the filter as a stage, the
//! configuration is the stage's section of the fused config, and a resume must not let the
//! request past the stages that follow. Both are redirected here, per VM (wasm is
//! single-threaded, so the state is thread-local); outside a fused module nothing changes.

use std::cell::{Cell, RefCell};

thread_local! {
    static CONFIG: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    static DEFER: Cell<bool> = const { Cell::new(false) };
    static EFFECTIVE: Cell<Option<u32>> = const { Cell::new(None) };
    static DEFERRED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
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
