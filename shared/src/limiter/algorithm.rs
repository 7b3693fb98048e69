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
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn bucket(max: u32, per_fill: u32, interval: u64) -> Limit {
        Limit::TokenBucket(TokenBucket {
            max_tokens: max,
            tokens_per_fill: per_fill,
            fill_interval_ms: interval,
        })
    }

    fn window(requests: u32, window_ms: u64) -> Limit {
        Limit::SlidingWindow(SlidingWindow {
            requests,
            window_ms,
        })
    }

    /// Admits (and consumes) at `now`, as the engine does.
    fn take(limit: &Limit, state: &mut LimitState, now: u64) -> bool {
        limit.advance(state, now);
        if limit.available(state) == 0 {
            return false;
        }
        limit.consume(state);
        true
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bucket_starts_full_and_empties() {
        let l = bucket(3, 3, 1000);
        let mut s = l.fresh(10_000);
        assert!(take(&l, &mut s, 10_000));
        assert!(take(&l, &mut s, 10_000));
        assert!(take(&l, &mut s, 10_999));
        assert!(!take(&l, &mut s, 10_999));
        let q = l.quota(&s, 10_999);
        assert_eq!(
            (q.limit, q.remaining, q.retry_after_ms, q.reset_ms),
            (3, 0, 1, 1)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bucket_refills_exactly_at_the_interval_boundary() {
        let l = bucket(2, 1, 1000);
        let mut s = l.fresh(0);
        assert!(take(&l, &mut s, 0));
        assert!(take(&l, &mut s, 0));
        assert!(!take(&l, &mut s, 999), "one ms before the fill");
        assert!(take(&l, &mut s, 1000), "at the fill");
        assert!(!take(&l, &mut s, 1000), "only tokens_per_fill were added");
        assert!(!take(&l, &mut s, 1999));
        assert!(take(&l, &mut s, 2000));
        // Long idle: capped at max_tokens, and the phase of fills is kept.
        l.advance(&mut s, 10_500);
        assert_eq!(l.available(&s), 2);
        assert!(l.is_idle(&s));
        assert_eq!(
            s,
            LimitState::TokenBucket {
                tokens: 2,
                last_fill_ms: 10_000
            }
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bucket_ignores_a_clock_going_backwards() {
        let l = bucket(1, 1, 1000);
        let mut s = l.fresh(5000);
        assert!(take(&l, &mut s, 5000));
        assert!(!take(&l, &mut s, 1000));
        assert!(!take(&l, &mut s, 5999));
        assert!(take(&l, &mut s, 6000));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bucket_clamps_after_a_smaller_reconfiguration() {
        let mut s = LimitState::TokenBucket {
            tokens: 50,
            last_fill_ms: 0,
        };
        let l = bucket(10, 10, 1000);
        l.advance(&mut s, 1);
        assert_eq!(l.available(&s), 10);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bucket_policy_window_is_the_time_to_refill_from_empty() {
        assert_eq!(bucket(100, 10, 1000).policy(), (100, 10_000));
        assert_eq!(bucket(100, 100, 60_000).policy(), (100, 60_000));
        assert_eq!(bucket(5, 2, 1000).policy(), (5, 3000));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn window_admits_the_limit_then_frees_capacity_one_sub_window_late() {
        // 3 per 10 s; sub-windows of 1 s.
        let l = window(3, 10_000);
        let mut s = l.fresh(0);
        assert!(take(&l, &mut s, 0));
        assert!(take(&l, &mut s, 500));
        assert!(take(&l, &mut s, 2_000));
        assert!(!take(&l, &mut s, 9_999));
        let q = l.quota(&s, 9_999);
        assert_eq!(q.remaining, 0);
        // Sub-window 0 (two requests) is counted until now/1000 > 10, i.e. until t = 11 000.
        assert_eq!(q.retry_after_ms, 1_001);
        assert_eq!(q.reset_ms, 1_001);
        assert!(
            !take(&l, &mut s, 10_999),
            "still within one sub-window of the window"
        );
        assert!(take(&l, &mut s, 11_000));
        assert!(take(&l, &mut s, 11_000));
        assert!(!take(&l, &mut s, 11_000));
        // The request at t=2000 leaves at t=13 000.
        assert!(!take(&l, &mut s, 12_999));
        assert!(take(&l, &mut s, 13_000));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn window_never_exceeds_the_limit_in_any_window() {
        // Dense deterministic pattern: one attempt every 7 ms for 3 windows.
        let l = window(5, 1_000);
        let mut s = l.fresh(0);
        let mut admitted = Vec::new();
        let mut t = 0;
        while t < 3_000 {
            if take(&l, &mut s, t) {
                admitted.push(t);
            }
            t += 7;
        }
        assert!(admitted.len() >= 10, "{admitted:?}");
        for (i, &start) in admitted.iter().enumerate() {
            let inside = admitted[i..].iter().filter(|&&x| x < start + 1_000).count();
            assert!(inside <= 5, "window starting {start}: {inside}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn window_is_idle_once_everything_left() {
        let l = window(2, 1_000);
        let mut s = l.fresh(0);
        assert!(take(&l, &mut s, 0));
        l.advance(&mut s, 1_099);
        assert!(!l.is_idle(&s));
        l.advance(&mut s, 1_100);
        assert!(l.is_idle(&s));
        assert_eq!(l.quota(&s, 1_100).reset_ms, 0);
        // A far jump clears every counter.
        assert!(take(&l, &mut s, 1_100));
        l.advance(&mut s, 1_000_000);
        assert!(l.is_idle(&s));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_state_of_the_other_kind_is_reset() {
        let l = window(2, 1_000);
        let mut s = bucket(1, 1, 1).fresh(0);
        assert!(!l.matches(&s));
        l.advance(&mut s, 5);
        assert!(l.matches(&s));
        assert_eq!(l.available(&s), 2);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn consume_saturates() {
        let l = bucket(1, 1, 1000);
        let mut s = l.fresh(0);
        l.consume(&mut s);
        l.consume(&mut s);
        assert_eq!(l.available(&s), 0);
    }
}
