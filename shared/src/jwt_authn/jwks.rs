//! The remote-JWKS lifecycle as a pure state machine over a [`JwksRecord`] that every worker of
//! the Envoy process shares (proxy-wasm shared data, written with compare-and-swap).
//!
//! - **One fetch per process.** A worker that wants keys calls [`try_acquire`]; only the worker
//!   whose CAS write of the returned record (with a lease) succeeds dispatches the fetch. The
//!   others see the lease and wait (coalescing).
//! - **TTL and refresh.** Keys are fresh for `cache_duration`; from 80 % of it a tick refreshes
//!   them in the background.
//! - **Stale-if-error.** A failed refresh keeps the last good keys until
//!   `cache_duration + max_stale` after they were fetched; then [`freshness`] says
//!   [`Freshness::Expired`] and requests fail closed. Failed fetches are retried after
//!   `failed_refetch_duration`, doubled per consecutive failure up to 60 s ([`backoff_ms`]).
//! - **Unknown kid.** A token naming a `kid` the keys lack triggers a refetch at most once per
//!   `unknown_kid_refetch_interval` per JWKS (process-wide, because the time is in the record).
//! - **Cold start.** With no keys yet, requests wait (see [`WaitList`]) until keys arrive or
//!   `cold_start_timeout` passes (then they fail closed).
//!
//! Times are milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

/// Timing knobs of one remote key source (compiled from `remote_jwks` / `openid_discovery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksPolicy {
    /// Keys are fresh this long after a fetch.
    pub cache_duration_ms: u64,
    /// Last good keys are used this long after `cache_duration` while refreshes fail.
    pub max_stale_ms: u64,
    /// Wait after a failed fetch before the next attempt.
    pub failed_refetch_ms: u64,
    /// Least time between two refetches caused by an unknown `kid`.
    pub unknown_kid_interval_ms: u64,
    /// How long a request waits for keys.
    pub cold_start_timeout_ms: u64,
    /// Timeout of one HTTP fetch (a discovery fetch counts twice).
    pub fetch_timeout_ms: u64,
    /// Number of HTTP fetches per key load (1, or 2 with OpenID discovery).
    pub fetch_steps: u64,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            cache_duration_ms: 600_000,
            max_stale_ms: 3_600_000,
            failed_refetch_ms: 1_000,
            unknown_kid_interval_ms: 30_000,
            cold_start_timeout_ms: 5_000,
            fetch_timeout_ms: 5_000,
            fetch_steps: 1,
        }
    }
}

impl JwksPolicy {
    /// How long a fetch lease lasts: every step's timeout plus a second of slack. A worker that
    /// dies mid-fetch blocks others at most this long.
    pub fn lease_ms(&self) -> u64 {
        self.fetch_timeout_ms
            .saturating_mul(self.fetch_steps.max(1))
            .saturating_add(1_000)
    }
}

/// What every worker shares about one JWKS (serialised as JSON in shared data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwksRecord {
    /// The last good JWKS document (already checked to parse into at least one usable key).
    #[serde(default)]
    pub jwks: Option<String>,
    /// When `jwks` was fetched (0 = never). Also the keys' generation number.
    #[serde(default)]
    pub fetched_at_ms: u64,
    /// Start of the last fetch attempt.
    #[serde(default)]
    pub last_attempt_ms: u64,
    /// Failed attempts since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// A worker holds the fetch lease until then.
    #[serde(default)]
    pub lease_until_ms: u64,
    /// Last refetch caused by an unknown `kid`.
    #[serde(default)]
    pub last_kid_refetch_ms: u64,
}

impl JwksRecord {
    /// Parses a shared-data value; an empty or unreadable value is a fresh record (an unreadable
    /// one can only come from an older filter version, and refetching is the safe answer).
    pub fn from_bytes(bytes: Option<&[u8]>) -> JwksRecord {
        bytes
            .filter(|b| !b.is_empty())
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }

    /// The shared-data value.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// How usable the shared keys are at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Never fetched.
    Missing,
    /// Within 80 % of `cache_duration`.
    Fresh,
    /// Usable, a background refresh is due.
    RefreshDue,
    /// Past `cache_duration`, within `max_stale`: usable, refresh overdue.
    Stale,
    /// Past `max_stale`: not usable, fail closed.
    Expired,
}

impl Freshness {
    /// Keys may verify tokens.
    pub fn usable(self) -> bool {
        matches!(
            self,
            Freshness::Fresh | Freshness::RefreshDue | Freshness::Stale
        )
    }
}

/// Freshness of `rec` at `now`.
pub fn freshness(rec: &JwksRecord, p: &JwksPolicy, now: u64) -> Freshness {
    if rec.jwks.is_none() || rec.fetched_at_ms == 0 {
        return Freshness::Missing;
    }
    let age = now.saturating_sub(rec.fetched_at_ms);
    if age < p.cache_duration_ms / 5 * 4 {
        Freshness::Fresh
    } else if age < p.cache_duration_ms {
        Freshness::RefreshDue
    } else if age < p.cache_duration_ms.saturating_add(p.max_stale_ms) {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

/// Why a worker wants a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// Periodic check: fetch if missing, due, stale or expired.
    Tick,
    /// A request needs keys now (none usable).
    NeedKeys,
    /// A token names a `kid` the keys lack.
    UnknownKid,
}

/// If this worker should fetch now, the record to CAS-write (with the lease taken); the fetch
/// starts only when that write succeeds.
pub fn try_acquire(
    rec: &JwksRecord,
    p: &JwksPolicy,
    now: u64,
    why: FetchReason,
) -> Option<JwksRecord> {
    if rec.lease_until_ms > now {
        return None; // someone is fetching: coalesce
    }
    if rec.consecutive_failures > 0 && now < rec.last_attempt_ms.saturating_add(backoff_ms(rec, p))
    {
        return None; // back off after a failure
    }
    let fresh = freshness(rec, p, now);
    let wanted = match why {
        FetchReason::Tick | FetchReason::NeedKeys => fresh != Freshness::Fresh,
        FetchReason::UnknownKid => {
            fresh != Freshness::Fresh || kid_refetch_allowed_by_interval(rec, p, now)
        }
    };
    if !wanted {
        return None;
    }
    let mut next = rec.clone();
    next.lease_until_ms = now.saturating_add(p.lease_ms());
    next.last_attempt_ms = now;
    if why == FetchReason::UnknownKid {
        next.last_kid_refetch_ms = now;
    }
    Some(next)
}

/// Wait after the last failed attempt: `failed_refetch_duration`, doubled per consecutive
/// failure, at most 60 s (or `failed_refetch_duration` if that is longer).
pub fn backoff_ms(rec: &JwksRecord, p: &JwksPolicy) -> u64 {
    let doublings = rec.consecutive_failures.saturating_sub(1).min(16);
    p.failed_refetch_ms
        .saturating_mul(1u64 << doublings)
        .min(p.failed_refetch_ms.max(60_000))
}

fn kid_refetch_allowed_by_interval(rec: &JwksRecord, p: &JwksPolicy, now: u64) -> bool {
    rec.last_kid_refetch_ms == 0
        || now
            >= rec
                .last_kid_refetch_ms
                .saturating_add(p.unknown_kid_interval_ms)
}

/// Whether a request whose token names an unknown `kid` should wait for new keys: a fetch is in
/// progress, or one may start now (the rate limit allows it).
pub fn unknown_kid_should_wait(rec: &JwksRecord, p: &JwksPolicy, now: u64) -> bool {
    rec.lease_until_ms > now || try_acquire(rec, p, now, FetchReason::UnknownKid).is_some()
}

/// The record after a successful fetch of `jwks` (already checked to contain usable keys).
pub fn on_fetch_ok(rec: &JwksRecord, now: u64, jwks: String) -> JwksRecord {
    JwksRecord {
        jwks: Some(jwks),
        fetched_at_ms: now.max(rec.fetched_at_ms.saturating_add(1)),
        consecutive_failures: 0,
        lease_until_ms: 0,
        ..rec.clone()
    }
}

/// The record after a failed fetch (error status, timeout, unusable body): last good keys kept.
pub fn on_fetch_failed(rec: &JwksRecord, now: u64) -> JwksRecord {
    JwksRecord {
        consecutive_failures: rec.consecutive_failures.saturating_add(1),
        last_attempt_ms: now,
        lease_until_ms: 0,
        ..rec.clone()
    }
}

/// Requests of one worker paused until keys arrive, each with its deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaitList {
    waiting: Vec<Waiter>,
}

/// One paused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    /// The HTTP context id.
    pub context_id: u32,
    /// The provider whose keys it waits for.
    pub provider: usize,
    /// Key generation (`fetched_at_ms`) when it started waiting.
    pub generation: u64,
    /// It fails closed at this time.
    pub deadline_ms: u64,
}

/// What a worker knows of a provider's keys when deciding whether a waiter can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyProgress {
    /// Current key generation.
    pub generation: u64,
    /// A fetch (by any worker) is still under way.
    pub fetch_in_progress: bool,
}

impl WaitList {
    /// Adds a paused request.
    pub fn add(&mut self, waiter: Waiter) {
        self.waiting.retain(|w| w.context_id != waiter.context_id);
        self.waiting.push(waiter);
    }

    /// Forgets a request (its stream ended).
    pub fn remove(&mut self, context_id: u32) {
        self.waiting.retain(|w| w.context_id != context_id);
    }

    /// Takes the requests to decide again now: their provider's keys changed, or no fetch is
    /// under way any more (it failed, or its worker vanished), or their deadline passed.
    pub fn take_due(&mut self, now: u64, progress: &dyn Fn(usize) -> KeyProgress) -> Vec<Waiter> {
        let (due, keep) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| {
                let p = progress(w.provider);
                now >= w.deadline_ms || p.generation != w.generation || !p.fetch_in_progress
            });
        self.waiting = keep;
        due
    }

    /// Number of paused requests.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "jwks_tests.rs"]
mod tests;
