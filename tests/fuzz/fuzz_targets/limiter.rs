//! Fuzzes the limit math (`meshguard_core::limiter::algorithm`): random limits, random
//! interleavings of admit calls for a few keys at random (non-decreasing) times, checked against
//! the limit:
//! - sliding window: for every admitted request at `t`, the requests admitted for that key in
//!   `(t - window, t]` are ≤ `requests`;
//! - token bucket: for any two admitted requests at `t0 ≤ t1`, the requests admitted in
//!   `[t0, t1]` are ≤ `max_tokens + tokens_per_fill × (fills due in (t0, t1])`, with fills at
//!   `created + k × fill_interval`.
//!
//! Plus a clock that steps back (another worker's slightly older `now`) must not create capacity:
//! admitting at an earlier time than the key's last update is also tried, and such requests count
//! as if made at the key's latest time.
//! An admit is what the filter does: `advance`, then admit iff `available > 0`, then `consume`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshguard_core::limiter::algorithm::{Limit, LimitState, SlidingWindow, TokenBucket};

#[derive(Debug, Arbitrary)]
struct Input {
    kind: bool,
    a: u8,
    b: u8,
    interval: u16,
    start: u32,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
struct Step {
    key: u8,
    /// Milliseconds forward; with `back`, how far this call's clock lags.
    delta: u16,
    back: bool,
}

struct Key {
    state: LimitState,
    created: u64,
    latest: u64,
    admitted: Vec<u64>,
}

fuzz_target!(|input: Input| {
    let limit = if input.kind {
        Limit::TokenBucket(TokenBucket {
            max_tokens: u32::from(input.a % 20) + 1,
            tokens_per_fill: u32::from(input.b % 20) + 1,
            fill_interval_ms: u64::from(input.interval) + 1,
        })
    } else {
        Limit::SlidingWindow(SlidingWindow {
            requests: u32::from(input.a % 20) + 1,
            window_ms: u64::from(input.interval).max(10),
        })
    };
    let mut now = u64::from(input.start);
    let mut keys: Vec<Option<Key>> = (0..4).map(|_| None).collect();
    for step in input.steps.iter().take(400) {
        let at = if step.back {
            now.saturating_sub(u64::from(step.delta))
        } else {
            now += u64::from(step.delta);
            now
        };
        let Some(slot) = keys.get_mut(usize::from(step.key % 4)) else {
            return;
        };
        let key = slot.get_or_insert_with(|| Key {
            state: limit.fresh(at),
            created: at,
            latest: at,
            admitted: Vec::new(),
        });
        limit.advance(&mut key.state, at);
        key.latest = key.latest.max(at);
        if limit.available(&key.state) > 0 {
            limit.consume(&mut key.state);
            // A lagging clock is charged at the key's latest time (the state's own clock).
            key.admitted.push(key.latest);
        }
        let _ = limit.quota(&key.state, at);
    }
    for key in keys.iter().flatten() {
        check(&limit, key);
    }
});

fn check(limit: &Limit, key: &Key) {
    let times = &key.admitted;
    match limit {
        Limit::SlidingWindow(sw) => {
            for (j, &t) in times.iter().enumerate() {
                let from = i128::from(t) - i128::from(sw.window_ms);
                let n = times[..=j]
                    .iter()
                    .filter(|&&x| i128::from(x) > from)
                    .count();
                assert!(
                    n as u64 <= u64::from(sw.requests),
                    "sliding window {sw:?}: {n} admitted in ({from}, {t}]: {times:?}"
                );
            }
        }
        Limit::TokenBucket(tb) => {
            let fills_until = |t: u64| (t - key.created) / tb.fill_interval_ms;
            for (i, &t0) in times.iter().enumerate() {
                for (j, &t1) in times.iter().enumerate().skip(i) {
                    let n = (j - i + 1) as u64;
                    let fills = fills_until(t1) - fills_until(t0);
                    let bound = u64::from(tb.max_tokens) + u64::from(tb.tokens_per_fill) * fills;
                    assert!(
                        n <= bound,
                        "token bucket {tb:?} created {}: {n} admitted in [{t0}, {t1}] > {bound}: {times:?}",
                        key.created
                    );
                }
            }
        }
    }
}
