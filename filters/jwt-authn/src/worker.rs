//! Everything one worker VM keeps for one plugin instance, shared by its root context and its
//! HTTP contexts (same thread, one callback at a time, so a `RefCell` is enough).

use std::collections::HashMap;
use std::rc::Rc;

use meshguard_core::jwt_authn::cache::Caches;
use meshguard_core::jwt_authn::jwks::WaitList;
use meshguard_core::jwt_authn::replay::Consumed;
use meshguard_core::jwt_authn::JwtAuthnConfig;
use meshguard_host as host;
use proxy_wasm::types::LogLevel;

use crate::keystore::KeyStore;
use crate::metrics::Metrics;
use crate::replay::Replay;

/// Which request of a key load an HTTP call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The OpenID discovery document.
    Discovery,
    /// The JWKS.
    Jwks,
}

/// An HTTP call this worker dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// The provider that started the load.
    pub provider: usize,
    /// Which request.
    pub stage: Stage,
    /// When it was dispatched (ms); a call unanswered for longer than the lease is forgotten
    /// (its answer went to a stream that ended, and the SDK dropped it).
    pub started_ms: u64,
}

/// Per-worker state of one plugin instance.
#[derive(Debug)]
pub struct Worker {
    /// Keys of every provider.
    pub store: KeyStore,
    /// Verified tokens and stable refusals.
    pub cache: Caches,
    /// Requests paused for keys.
    pub waiting: WaitList,
    /// Providers each paused request already waited for.
    pub waited: HashMap<u32, Vec<usize>>,
    /// `jti`s each paused request already consumed (not replays when it is decided again).
    pub consumed: HashMap<u32, Consumed>,
    /// Key fetches this worker has in flight, by call token.
    pub inflight: HashMap<u32, InFlight>,
    /// Counters.
    pub metrics: Metrics,
    /// `jti` replay checks (shared data).
    pub replay: Replay,
    /// The root context id (to restore the effective context after resuming streams).
    pub root_id: u32,
    /// The tick period currently asked for, in ms.
    pub tick_ms: u64,
}

impl Worker {
    /// State for a freshly configured root context.
    pub fn new(cfg: JwtAuthnConfig, metrics: Metrics, root_id: u32) -> Self {
        let cache = Caches::new(cfg.cache_max_entries, cfg.cache_max_failed_entries);
        Worker {
            store: KeyStore::new(Rc::new(cfg)),
            cache,
            waiting: WaitList::default(),
            waited: HashMap::new(),
            consumed: HashMap::new(),
            inflight: HashMap::new(),
            metrics,
            replay: Replay::default(),
            root_id,
            tick_ms: 0,
        }
    }

    /// The config.
    pub fn cfg(&self) -> &JwtAuthnConfig {
        self.store.cfg()
    }

    /// Forgets what a stream left while paused (its request was decided, or the stream ended).
    pub fn forget(&mut self, context_id: u32) {
        self.waiting.remove(context_id);
        self.waited.remove(&context_id);
        self.consumed.remove(&context_id);
    }

    /// Asks for ticks every `ms` (fast while requests wait or fetches run).
    pub fn want_tick(&mut self, ms: u64) {
        if self.tick_ms != ms {
            match host::set_tick_period(std::time::Duration::from_millis(ms)) {
                Ok(()) => self.tick_ms = ms,
                Err(e) => host::log(LogLevel::Warn, &format!("jwt_authn: {e}")),
            }
        }
    }
}

/// Milliseconds since the Unix epoch by the host clock. Callers refuse the request when the clock
/// cannot be read (no expiry could be checked).
pub fn now_ms() -> host::Result<u64> {
    let t = host::now()?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0))
}
