//! Engine tests: counters in a fake shared data, slots and bounds, CAS conflicts, decisions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::config::RateLimitConfig;
use super::decision::{count_response, evaluate, Decision};
use super::descriptor::RequestView;
use super::memory::MemoryStore;
use super::store::{ensure_salt, prepare, SharedStore, SALT_KEY};
use super::LimiterError;
use crate::config::FilterConfig;

const SALT: &[u8] = b"0123456789abcdef";

fn config(json: serde_json::Value) -> RateLimitConfig {
    RateLimitConfig::parse(json.to_string().as_bytes()).unwrap()
}

fn bucket(max: u64, interval: &str) -> serde_json::Value {
    json!({"token_bucket": {"max_tokens": max, "tokens_per_fill": max, "fill_interval": interval}})
}

fn user_rule(max_keys: u32, limit: u64) -> RateLimitConfig {
    config(
        json!({"rules": [{"name": "u", "descriptors": [{"request_header": "x-user"}],
        "limits": [bucket(limit, "1m")], "max_keys": max_keys}]}),
    )
}

fn headers(user: &str) -> Vec<(String, Vec<u8>)> {
    vec![("x-user".to_owned(), user.as_bytes().to_vec())]
}

fn view<'a>(h: &'a [(String, Vec<u8>)]) -> RequestView<'a> {
    RequestView {
        method: "GET",
        path: "/",
        headers: h,
        ..RequestView::default()
    }
}

fn prepared(c: &RateLimitConfig) -> MemoryStore {
    let mut store = MemoryStore::new();
    prepare(&mut store, c).unwrap();
    store
}

fn decide(c: &RateLimitConfig, store: &mut dyn SharedStore, user: &str, now: u64) -> Decision {
    let h = headers(user);
    evaluate(c, SALT, &view(&h), store, now).decision()
}

#[wasm_bindgen_test(unsupported = test)]
fn prepare_creates_every_entry_once() {
    let c = config(json!({"rules": [
        {"name": "a", "limits": [bucket(1, "1s")], "max_keys": 10,
         "limits_by_claim": {"claim": "plan", "tiers": {"gold": [bucket(5, "1s")]}}},
        {"name": "b", "limits": [bucket(1, "1s")], "max_keys": 3, "missing_descriptor": "skip"}]}));
    let mut store = MemoryStore::new();
    assert_eq!(prepare(&mut store, &c).unwrap(), 10 + 2 + 3);
    assert_eq!(prepare(&mut store, &c).unwrap(), 0);
    assert_eq!(store.len(), 15);
    assert!(store.value("meshguard.rl.a.9").is_some());
    assert!(store.value("meshguard.rl.a.missing.1").is_some());
    assert!(store.value("meshguard.rl.b.missing.0").is_none());
}

#[wasm_bindgen_test(unsupported = test)]
fn salt_is_chosen_once() {
    let mut store = MemoryStore::new();
    let first = ensure_salt(&mut store, [1; 16]).unwrap();
    let second = ensure_salt(&mut store, [2; 16]).unwrap();
    assert_eq!(first, vec![1; 16]);
    assert_eq!(second, first);
    assert_eq!(store.value(SALT_KEY), Some(&[1u8; 16][..]));
}

#[wasm_bindgen_test(unsupported = test)]
fn a_key_gets_exactly_its_limit_then_refills() {
    let c = user_rule(100, 3);
    let mut store = prepared(&c);
    let decisions: Vec<Decision> = (0..5)
        .map(|_| decide(&c, &mut store, "alice", 1_000))
        .collect();
    assert_eq!(
        decisions.iter().filter(|d| **d == Decision::Allow).count(),
        3
    );
    assert_eq!(decisions[3], Decision::Limited);
    assert_eq!(
        decide(&c, &mut store, "bob", 1_000),
        Decision::Allow,
        "other keys are independent"
    );
    assert_eq!(decide(&c, &mut store, "alice", 60_999), Decision::Limited);
    assert_eq!(decide(&c, &mut store, "alice", 61_000), Decision::Allow);
}

#[wasm_bindgen_test(unsupported = test)]
fn limited_evaluation_reports_the_rule_and_quota() {
    let c = user_rule(100, 1);
    let mut store = prepared(&c);
    let h = headers("alice");
    let first = evaluate(&c, SALT, &view(&h), &mut store, 0);
    assert_eq!(first.reported().unwrap().remaining(), Some(0));
    let second = evaluate(&c, SALT, &view(&h), &mut store, 30_000);
    assert_eq!(second.decision(), Decision::Limited);
    let r = second.for_headers().unwrap();
    assert_eq!(r.rule, 0);
    assert_eq!(r.quotas[0].retry_after_ms, 30_000);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_flood_of_unique_keys_adds_no_entry() {
    let c = user_rule(64, 5);
    let mut store = prepared(&c);
    let before = (store.len(), store.bytes());
    let mut collisions = 0;
    for i in 0..5_000 {
        let h = headers(&format!("attacker-{i}"));
        let e = evaluate(&c, SALT, &view(&h), &mut store, 1_000);
        collisions += e.collisions;
    }
    assert_eq!(store.len(), before.0, "entries");
    // Values grow from the 2-byte empty slot to one record each, never beyond.
    assert!(
        store.bytes() <= before.1 + 64 * 30,
        "{} bytes",
        store.bytes()
    );
    assert!(
        collisions > 4_000,
        "most flood keys shared a slot: {collisions}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn colliding_keys_share_then_reclaim_idle_slots() {
    // One slot: every key has the same home and nowhere else to go.
    let c = user_rule(1, 2);
    let mut store = prepared(&c);
    assert_eq!(decide(&c, &mut store, "a", 0), Decision::Allow);
    let h = headers("b");
    let e = evaluate(&c, SALT, &view(&h), &mut store, 0);
    assert_eq!(
        (e.decision(), e.collisions),
        (Decision::Allow, 1),
        "b shares a's bucket"
    );
    assert_eq!(
        decide(&c, &mut store, "a", 0),
        Decision::Limited,
        "stricter, never looser"
    );
    // After the fill, a's bucket is full again: idle, reclaimed by c as a fresh bucket.
    let h = headers("c");
    let e = evaluate(&c, SALT, &view(&h), &mut store, 60_000);
    assert_eq!((e.decision(), e.collisions), (Decision::Allow, 0));
    assert_eq!(e.reported().unwrap().remaining(), Some(1));
}

/// Finds user names whose home slot is `slot` for a rule of `max_keys`.
fn users_with_home(c: &RateLimitConfig, slot: u32, count: usize) -> Vec<String> {
    let rule = &c.rules[0];
    (0..)
        .map(|i| format!("user-{i}"))
        .filter(|u| {
            let v = vec![u.as_bytes().to_vec()];
            super::descriptor::hash_key(SALT, &rule.name, 0, &v, rule.max_keys).home == slot
        })
        .take(count)
        .collect()
}

#[wasm_bindgen_test(unsupported = test)]
fn a_probed_key_keeps_its_slot_when_an_earlier_one_idles() {
    let c = config(
        json!({"rules": [{"name": "w", "descriptors": [{"request_header": "x-user"}],
        "limits": [{"sliding_window": {"requests": 2, "window": "1s"}}], "max_keys": 8}]}),
    );
    let mut store = prepared(&c);
    let users = users_with_home(&c, 3, 2);
    let (a, b) = (&users[0], &users[1]);
    assert_eq!(decide(&c, &mut store, a, 0), Decision::Allow); // slot 3
    assert_eq!(decide(&c, &mut store, b, 900), Decision::Allow); // slot 4
    assert_eq!(decide(&c, &mut store, b, 900), Decision::Allow);
    // At 1100 a's window is empty (idle) but b's is not: b must find its own record.
    assert_eq!(decide(&c, &mut store, b, 1_100), Decision::Limited);
}

#[wasm_bindgen_test(unsupported = test)]
fn every_limit_must_admit() {
    let c = config(json!({"rules": [{"name": "m", "limits": [
        bucket(2, "1s"), {"sliding_window": {"requests": 3, "window": "10s"}}]}]}));
    let mut store = prepared(&c);
    let d: Vec<Decision> = [0, 0, 0, 1_000, 1_000, 2_000, 10_000, 11_000]
        .iter()
        .map(|&t| decide(&c, &mut store, "x", t))
        .collect();
    use Decision::{Allow as A, Limited as L};
    assert_eq!(d, vec![A, A, L, A, L, L, L, A]);
}

#[wasm_bindgen_test(unsupported = test)]
fn shadow_mode_records_but_never_blocks() {
    let c =
        config(json!({"shadow_mode": true, "rules": [{"name": "s", "limits": [bucket(1, "1m")]}]}));
    let mut store = prepared(&c);
    assert_eq!(decide(&c, &mut store, "x", 0), Decision::Allow);
    let h = headers("x");
    let e = evaluate(&c, SALT, &view(&h), &mut store, 0);
    assert_eq!(e.decision(), Decision::ShadowLimited);
    assert_eq!(e.reported().unwrap().decision, Decision::ShadowLimited);
    assert!(
        e.for_headers().is_none(),
        "shadow rules are not shown to clients"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn claim_chooses_the_tier() {
    let c = config(
        json!({"rules": [{"name": "t", "descriptors": [{"jwt_claim": "sub"}],
        "limits": [bucket(2, "1m")],
        "limits_by_claim": {"claim": "plan", "tiers": {"gold": [bucket(5, "1m")], "free": [bucket(1, "1m")]}}}]}),
    );
    let mut store = prepared(&c);
    let admitted = |store: &mut MemoryStore, payload: serde_json::Value| {
        (0..10)
            .filter(|_| {
                let v = RequestView {
                    method: "GET",
                    path: "/",
                    jwt_payload: Some(&payload),
                    ..RequestView::default()
                };
                evaluate(&c, SALT, &v, store, 0).decision() == Decision::Allow
            })
            .count()
    };
    assert_eq!(admitted(&mut store, json!({"sub": "g", "plan": "gold"})), 5);
    assert_eq!(admitted(&mut store, json!({"sub": "f", "plan": "free"})), 1);
    assert_eq!(
        admitted(&mut store, json!({"sub": "d", "plan": "platinum"})),
        2
    );
    assert_eq!(admitted(&mut store, json!({"sub": "n"})), 2);
}

#[wasm_bindgen_test(unsupported = test)]
fn missing_descriptor_shared_or_skipped() {
    let rule = |missing: &str| {
        config(
            json!({"rules": [{"name": "m", "descriptors": [{"jwt_claim": "sub"}],
        "limits": [bucket(2, "1m")], "missing_descriptor": missing}]}),
        )
    };
    let shared = rule("shared");
    let mut store = prepared(&shared);
    let anonymous: Vec<Decision> = (0..3)
        .map(|i| decide(&shared, &mut store, &i.to_string(), 0))
        .collect();
    assert_eq!(
        anonymous,
        vec![Decision::Allow, Decision::Allow, Decision::Limited]
    );
    let skip = rule("skip");
    let mut store = prepared(&skip);
    let h = headers("x");
    let e = evaluate(&skip, SALT, &view(&h), &mut store, 0);
    assert!(e.results.is_empty());
    assert_eq!(e.decision(), Decision::Allow);
}

#[wasm_bindgen_test(unsupported = test)]
fn responses_are_counted_only_with_listed_statuses() {
    let c = config(
        json!({"rules": [{"name": "login", "match": {"path": "/login", "methods": ["POST"]},
        "descriptors": ["remote_address"], "limits": [{"sliding_window": {"requests": 3, "window": "1m"}}],
        "count_on_response_statuses": [401]}]}),
    );
    let mut store = prepared(&c);
    let attempt = |store: &mut MemoryStore, status: u16, now: u64| {
        let v = RequestView {
            method: "POST",
            path: "/login",
            source_address: Some("192.0.2.7:5000"),
            ..RequestView::default()
        };
        let e = evaluate(&c, SALT, &v, store, now);
        if e.decision() == Decision::Allow {
            assert_eq!(e.pending.len(), 1);
            count_response(&c, &e.pending, status, store, now).counted
        } else {
            assert!(e.pending.is_empty());
            99
        }
    };
    for _ in 0..10 {
        assert_eq!(attempt(&mut store, 200, 0), 0, "successes are not counted");
    }
    assert_eq!(attempt(&mut store, 401, 0), 1);
    assert_eq!(attempt(&mut store, 401, 0), 1);
    assert_eq!(attempt(&mut store, 401, 0), 1);
    assert_eq!(attempt(&mut store, 200, 0), 99, "blocked once over");
    let other = RequestView {
        method: "GET",
        path: "/login",
        ..RequestView::default()
    };
    assert!(
        evaluate(&c, SALT, &other, &mut store, 0).results.is_empty(),
        "method must match"
    );
    assert_eq!(attempt(&mut store, 401, 66_000), 1, "window slid");
}

/// A store that lets "other workers" write between this worker's read and write.
struct Meddling<'a> {
    inner: &'a mut MemoryStore,
    /// Writes to perform (each steals one token from `key`) before the next `set`.
    steal: u32,
}

impl SharedStore for Meddling<'_> {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, LimiterError> {
        self.inner.get(key)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, LimiterError> {
        if self.steal > 0 {
            self.steal -= 1;
            // Another worker rewrites the same entry: our CAS is now stale.
            let (current, token) = self.inner.get(key)?.unwrap();
            assert!(self.inner.set(key, &current, Some(token))?);
        }
        self.inner.set(key, value, cas)
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn cas_conflicts_are_retried_then_fail_closed_or_open() {
    let c = user_rule(16, 100);
    let mut store = prepared(&c);
    let h = headers("x");
    let e = evaluate(
        &c,
        SALT,
        &view(&h),
        &mut Meddling {
            inner: &mut store,
            steal: 3,
        },
        0,
    );
    assert_eq!((e.decision(), e.cas_retries), (Decision::Allow, 3));
    let e = evaluate(
        &c,
        SALT,
        &view(&h),
        &mut Meddling {
            inner: &mut store,
            steal: 100,
        },
        0,
    );
    assert_eq!(e.decision(), Decision::Limited, "fail closed by default");
    assert_eq!(e.cas_retries, 8);
    assert!(matches!(
        e.failures[..],
        [LimiterError::CasExhausted { retries: 8, .. }]
    ));
    let open = config(
        json!({"failure_mode": "allow", "max_cas_retries": 0, "rules": [
        {"name": "u", "descriptors": [{"request_header": "x-user"}], "limits": [bucket(1, "1m")]}]}),
    );
    let mut store = prepared(&open);
    let e = evaluate(
        &open,
        SALT,
        &view(&h),
        &mut Meddling {
            inner: &mut store,
            steal: 1,
        },
        0,
    );
    assert_eq!((e.decision(), e.failures.len()), (Decision::Allow, 1));
}

/// xorshift64*: a seeded PRNG for reproducible interleavings.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A store through which a request of one worker may be preempted, between any read and write,
/// by complete requests of other workers (nested, so interleavings compose).
struct Interleaving<'a> {
    store: &'a mut MemoryStore,
    rng: &'a mut Rng,
    config: &'a RateLimitConfig,
    budget: &'a mut u32,
    admitted: &'a mut u32,
    retries: &'a mut u32,
    depth: u32,
}

impl Interleaving<'_> {
    fn request(&mut self) {
        *self.budget -= 1;
        let h = headers("same-key");
        let mut nested = Interleaving {
            store: self.store,
            rng: self.rng,
            config: self.config,
            budget: self.budget,
            admitted: self.admitted,
            retries: self.retries,
            depth: self.depth + 1,
        };
        let e = evaluate(self.config, SALT, &view(&h), &mut nested, 0);
        *nested.retries += e.cas_retries;
        if e.decision() == Decision::Allow {
            *self.admitted += 1;
        }
    }
}

impl SharedStore for Interleaving<'_> {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, LimiterError> {
        self.store.get(key)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, LimiterError> {
        // Workers = depth levels; preempt with another worker's request half of the time.
        while *self.budget > 0 && self.depth < 4 && self.rng.below(2) == 0 {
            self.request();
        }
        self.store.set(key, value, cas)
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn interleaved_workers_never_admit_more_than_the_limit() {
    let mut retries = 0;
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let limit = 1 + rng.below(20);
        let attempts = u32::try_from(rng.below(60)).unwrap();
        let c = config(json!({"max_cas_retries": 64, "rules": [{"name": "p",
            "descriptors": [{"request_header": "x-user"}], "limits": [bucket(limit, "1h")], "max_keys": 16}]}));
        let mut store = prepared(&c);
        let mut budget = attempts;
        let mut admitted = 0;
        while budget > 0 {
            let mut top = Interleaving {
                store: &mut store,
                rng: &mut rng,
                config: &c,
                budget: &mut budget,
                admitted: &mut admitted,
                retries: &mut retries,
                depth: 0,
            };
            top.request();
        }
        let want = u32::try_from(limit).unwrap().min(attempts);
        assert_eq!(
            admitted, want,
            "seed {seed}: limit {limit}, {attempts} attempts"
        );
    }
    assert!(
        retries > 500,
        "the interleavings must cause CAS conflicts: {retries}"
    );
}
