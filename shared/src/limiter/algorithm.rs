//! The two limit algorithms, as pure functions of a state and an explicit clock (`now_ms`, Unix
//! milliseconds).
//!
//! - **Token bucket** (Envoy `local_ratelimit` semantics): the bucket starts full with
//!   `max_tokens`; every `fill_interval`, `tokens_per_fill` tokens are added, capped at
//!   `max_tokens`. Fills are discrete and keep the phase of the bucket's creation, so with
//!   `max_tokens = 10, tokens_per_fill = 10, fill_interval = 1m` at most 10 requests pass between
//!   two fills. A request takes one token.
//! - **Sliding window**: at most `requests` requests in any window of length `window` ending now.
//!   The window is kept as [`SUB_WINDOWS`] + 1 counters of `window / SUB_WINDOWS` each (rounded up),
//!   and *every* counter that overlaps the window is counted in full. That makes the count an upper
//!   bound of the true count, so the limit is never exceeded in any window (proof: the last request
//!   admitted in a window saw every earlier request of that window counted); the price is that a
//!   client may wait up to one sub-window (a tenth of the window) longer than an exact log would
//!   make it wait. The state stays a fixed 52 bytes whatever the limit.
//!
//! A clock that goes backwards (two workers reading the time a few microseconds apart) never
//! creates tokens or frees window capacity: elapsed time saturates at zero.

/// Sub-windows a sliding window is divided into (the state keeps one more: the partial oldest).
pub const SUB_WINDOWS: u64 = 10;
/// Counters kept per sliding window.
pub const WINDOW_COUNTERS: usize = (SUB_WINDOWS as usize) + 1;

/// A token bucket, named after Envoy's `TokenBucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Capacity, and the tokens a new bucket starts with (≥ 1).
    pub max_tokens: u32,
    /// Tokens added every `fill_interval_ms` (≥ 1).
    pub tokens_per_fill: u32,
    /// Milliseconds between two fills (≥ 1).
    pub fill_interval_ms: u64,
}

/// At most `requests` requests in any window of `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Requests allowed per window (≥ 1).
    pub requests: u32,
    /// Window length in milliseconds (≥ [`SUB_WINDOWS`]).
    pub window_ms: u64,
}

/// One limit of a rule. A rule may carry several; a request passes only if all admit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A token bucket.
    TokenBucket(TokenBucket),
    /// A sliding window.
    SlidingWindow(SlidingWindow),
}

/// The mutable state of one limit for one key, as stored in shared data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitState {
    /// Tokens left and the time of the last fill.
    TokenBucket {
        /// Tokens currently in the bucket.
        tokens: u32,
        /// Unix ms of the last fill (or of creation); fills happen at `last_fill_ms + k × interval`.
        last_fill_ms: u64,
    },
    /// Request counters of the sub-windows `head - SUB_WINDOWS ..= head`.
    SlidingWindow {
        /// Absolute index (`now_ms / sub_window_ms`) of the newest sub-window.
        head: u64,
        /// Counter of absolute sub-window `i` at `counts[i % WINDOW_COUNTERS]`.
        counts: [u32; WINDOW_COUNTERS],
    },
}

/// Where a key stands against one limit, for headers and filter state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The quota of the policy (`max_tokens` or `requests`): RateLimit-Policy `q`.
    pub limit: u32,
    /// Requests that would still be admitted now: RateLimit `r`.
    pub remaining: u32,
    /// Milliseconds until the remaining quota next grows (0 when it is full): RateLimit `t`.
    pub reset_ms: u64,
    /// Milliseconds until one more request would be admitted (0 when one would be now).
    pub retry_after_ms: u64,
    /// Window of the policy: RateLimit-Policy `w` (for a token bucket, the time to refill an
    /// empty bucket).
    pub window_ms: u64,
}

impl SlidingWindow {
    /// Length of one sub-window (at least 1 ms; `SUB_WINDOWS × sub ≥ window`).
    pub fn sub_window_ms(&self) -> u64 {
        self.window_ms.div_ceil(SUB_WINDOWS).max(1)
    }

    fn count(counts: &[u32; WINDOW_COUNTERS]) -> u64 {
        counts.iter().map(|&c| u64::from(c)).sum()
    }
}

impl Limit {
    /// The state of a key seen for the first time: a full bucket, an empty window.
    pub fn fresh(&self, now_ms: u64) -> LimitState {
        match self {
            Limit::TokenBucket(tb) => LimitState::TokenBucket {
                tokens: tb.max_tokens,
                last_fill_ms: now_ms,
            },
            Limit::SlidingWindow(sw) => LimitState::SlidingWindow {
                head: now_ms / sw.sub_window_ms(),
                counts: [0; WINDOW_COUNTERS],
            },
        }
    }

    /// True when `state` is a state of this kind of limit.
    pub fn matches(&self, state: &LimitState) -> bool {
        matches!(
            (self, state),
            (Limit::TokenBucket(_), LimitState::TokenBucket { .. })
                | (Limit::SlidingWindow(_), LimitState::SlidingWindow { .. })
        )
    }

    /// Brings `state` to `now_ms`: adds the fills due, drops expired sub-windows, clamps values a
    /// smaller reconfigured limit no longer allows. A state of the other kind is replaced by a
    /// fresh one.
    pub fn advance(&self, state: &mut LimitState, now_ms: u64) {
        match (self, &mut *state) {
            (
                Limit::TokenBucket(tb),
                LimitState::TokenBucket {
                    tokens,
                    last_fill_ms,
                },
            ) => {
                let interval = tb.fill_interval_ms.max(1);
                let fills = now_ms.saturating_sub(*last_fill_ms) / interval;
                if fills > 0 {
                    let added = fills.saturating_mul(u64::from(tb.tokens_per_fill));
                    let total = u64::from(*tokens).saturating_add(added);
                    *tokens = u32::try_from(total.min(u64::from(tb.max_tokens))).unwrap_or(0);
                    *last_fill_ms = last_fill_ms.saturating_add(fills.saturating_mul(interval));
                }
                *tokens = (*tokens).min(tb.max_tokens);
            }
            (Limit::SlidingWindow(sw), LimitState::SlidingWindow { head, counts }) => {
                let current = now_ms / sw.sub_window_ms();
                if current > *head {
                    let steps = (current - *head).min(WINDOW_COUNTERS as u64);
                    for k in 1..=steps {
                        let at = ((*head + k) % WINDOW_COUNTERS as u64) as usize;
                        if let Some(c) = counts.get_mut(at) {
                            *c = 0;
                        }
                    }
                    *head = current;
                }
            }
            _ => *state = self.fresh(now_ms),
        }
    }

    /// Requests this state admits now (call [`Limit::advance`] first).
    pub fn available(&self, state: &LimitState) -> u32 {
        match (self, state) {
            (Limit::TokenBucket(_), LimitState::TokenBucket { tokens, .. }) => *tokens,
            (Limit::SlidingWindow(sw), LimitState::SlidingWindow { counts, .. }) => {
                let used = SlidingWindow::count(counts);
                u32::try_from(u64::from(sw.requests).saturating_sub(used)).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Counts one request (takes a token, bumps the newest counter). Saturates: a response
    /// counted on an empty bucket leaves it empty.
    pub fn consume(&self, state: &mut LimitState) {
        match state {
            LimitState::TokenBucket { tokens, .. } => *tokens = tokens.saturating_sub(1),
            LimitState::SlidingWindow { head, counts } => {
                let at = (*head % WINDOW_COUNTERS as u64) as usize;
                if let Some(c) = counts.get_mut(at) {
                    *c = c.saturating_add(1);
                }
            }
        }
    }

    /// True when the state is as good as fresh (full bucket, empty window): the key can be
    /// forgotten without changing any future decision. Call [`Limit::advance`] first.
    pub fn is_idle(&self, state: &LimitState) -> bool {
        match (self, state) {
            (Limit::TokenBucket(tb), LimitState::TokenBucket { tokens, .. }) => {
                *tokens >= tb.max_tokens
            }
            (Limit::SlidingWindow(_), LimitState::SlidingWindow { counts, .. }) => {
                counts.iter().all(|&c| c == 0)
            }
            _ => true,
        }
    }

    /// The policy's quota and window (RateLimit-Policy `q` and `w`).
    pub fn policy(&self) -> (u32, u64) {
        match self {
            Limit::TokenBucket(tb) => {
                let fills = u64::from(tb.max_tokens).div_ceil(u64::from(tb.tokens_per_fill.max(1)));
                (tb.max_tokens, fills.saturating_mul(tb.fill_interval_ms))
            }
            Limit::SlidingWindow(sw) => (sw.requests, sw.window_ms),
        }
    }

    /// Where the key stands (call [`Limit::advance`] first).
    pub fn quota(&self, state: &LimitState, now_ms: u64) -> Quota {
        let (limit, window_ms) = self.policy();
        let remaining = self.available(state);
        let (reset_ms, retry_after_ms) = match (self, state) {
            (Limit::TokenBucket(tb), LimitState::TokenBucket { last_fill_ms, .. }) => {
                let next_fill = last_fill_ms
                    .saturating_add(tb.fill_interval_ms)
                    .saturating_sub(now_ms)
                    .max(1);
                let reset = if remaining >= tb.max_tokens {
                    0
                } else {
                    next_fill
                };
                let retry = if remaining > 0 { 0 } else { next_fill };
                (reset, retry)
            }
            (Limit::SlidingWindow(sw), LimitState::SlidingWindow { head, counts }) => {
                window_times(sw, *head, counts, now_ms)
            }
            _ => (0, 0),
        };
        Quota {
            limit,
            remaining,
            reset_ms,
            retry_after_ms,
            window_ms,
        }
    }
}

/// `(reset_ms, retry_after_ms)` of a sliding window: when its oldest non-empty counter leaves the
/// window, and when enough counters have left for one more request.
fn window_times(
    sw: &SlidingWindow,
    head: u64,
    counts: &[u32; WINDOW_COUNTERS],
    now_ms: u64,
) -> (u64, u64) {
    let sub = sw.sub_window_ms();
    let mut used = SlidingWindow::count(counts);
    let limit = u64::from(sw.requests);
    let mut reset = 0;
    let mut retry = 0;
    let oldest = head.saturating_sub(SUB_WINDOWS);
    for index in oldest..=head {
        let count = counts
            .get((index % WINDOW_COUNTERS as u64) as usize)
            .copied()
            .unwrap_or(0);
        if count == 0 {
            continue;
        }
        // Sub-window `index` stops being counted once `now / sub > index + SUB_WINDOWS`.
        let leaves_at = index
            .saturating_add(SUB_WINDOWS + 1)
            .saturating_mul(sub)
            .saturating_sub(now_ms)
            .max(1);
        if reset == 0 {
            reset = leaves_at;
        }
        if used < limit {
            break;
        }
        used -= u64::from(count);
        retry = leaves_at;
    }
    (reset, retry)
}

#[cfg(test)]
#[path = "algorithm_tests.rs"]
mod tests;
