//! Tests of `algorithm.rs`.

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
