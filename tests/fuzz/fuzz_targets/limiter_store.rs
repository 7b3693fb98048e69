//! Fuzzes the rate limiter end to end through the shared-data store: `limiter::evaluate` on a
//! config compiled by `RateLimitConfig::parse`, counters in a `MemoryStore` prepared as at
//! configure time, and other workers' requests interleaved between a request's read of a slot
//! and its compare-and-swap write (CAS conflicts, retries, `max_cas_retries` exhausted).
//!
//! One rule keyed by a request header (4 keys) plus the shared counter of requests without the
//! header; `max_keys` ≥ 4, so no key ever has to share another's slot (collisions are a
//! finding). Time moves forward between top-level requests; requests interleaved into one run
//! at the same instant (two workers at once). Checked per key:
//! - sliding window: for every admitted request at `t`, admitted in `(t − window, t]` ≤
//!   `requests`;
//! - token bucket: admitted in `[t0, t1]` ≤ `max_tokens + tokens_per_fill × (⌊(t1 − t0) /
//!   fill_interval⌋ + 1)` (any fill phase: a reclaimed idle slot restarts the phase);
//! - exactness: at a key's first instant, admitted = min(sent, capacity) unless a CAS retry
//!   budget ran out (then the request is denied, fail closed).
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshguard_core::config::FilterConfig;
use meshguard_core::limiter::decision::Decision;
use meshguard_core::limiter::memory::MemoryStore;
use meshguard_core::limiter::store::{ensure_salt, prepare, SharedStore};
use meshguard_core::limiter::{evaluate, LimiterError, RateLimitConfig, RequestView};
use serde_json::json;

#[derive(Debug, Arbitrary)]
struct Input {
    sliding: bool,
    a: u8,
    b: u8,
    interval: u16,
    max_keys: u8,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
struct Step {
    /// Milliseconds before this request.
    advance: u16,
    /// 0..=3: header `x-key: k<n>`; 4: no header (the shared counter).
    key: u8,
    /// After the request's n-th read of a slot, another worker's request for this key runs.
    interleave: Vec<u8>,
}

/// One finished request.
struct Done {
    key: u8,
    at: u64,
    admitted: bool,
    failed: bool,
    collisions: u32,
}

struct Run<'a> {
    config: &'a RateLimitConfig,
    salt: &'a [u8],
    store: &'a RefCell<MemoryStore>,
    done: &'a RefCell<Vec<Done>>,
}

/// The store one request sees: reads go to the shared store; after a read, the next scripted
/// request of another worker may run to completion before this one writes.
struct Racing<'r, 'a> {
    run: &'r Run<'a>,
    at: u64,
    script: std::slice::Iter<'r, u8>,
}

impl SharedStore for Racing<'_, '_> {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, LimiterError> {
        let value = self.run.store.borrow_mut().get(key)?;
        if key.starts_with("meshguard.rl.k.") {
            if let Some(&other) = self.script.next() {
                request(self.run, other % 5, self.at, &[]);
            }
        }
        Ok(value)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, LimiterError> {
        self.run.store.borrow_mut().set(key, value, cas)
    }
}

fn request(run: &Run<'_>, key: u8, at: u64, interleave: &[u8]) {
    let headers: Vec<(String, Vec<u8>)> = if key < 4 {
        vec![("x-key".into(), format!("k{key}").into_bytes())]
    } else {
        Vec::new()
    };
    let view = RequestView {
        method: "GET",
        path: "/",
        headers: &headers,
        source_address: None,
        mtls_principal: None,
        jwt_payload: None,
        jwt_subject: None,
    };
    let mut store = Racing {
        run,
        at,
        script: interleave.iter(),
    };
    let eval = evaluate(run.config, run.salt, &view, &mut store, at);
    let admitted = !eval.results.iter().any(|r| r.decision == Decision::Limited);
    run.done.borrow_mut().push(Done {
        key,
        at,
        admitted,
        failed: !eval.failures.is_empty(),
        collisions: eval.collisions,
    });
}

fuzz_target!(|input: Input| {
    let cap = u64::from(input.a % 8) + 1;
    let limit = if input.sliding {
        json!({"sliding_window": {"requests": cap,
                                  "window": format!("{}ms", 100 + input.interval % 3000)}})
    } else {
        json!({"token_bucket": {"max_tokens": cap, "tokens_per_fill": 1 + u64::from(input.b) % cap,
                                "fill_interval": format!("{}ms", 50 + input.interval % 2000)}})
    };
    let config = json!({
        "rules": [{"name": "k", "descriptors": [{"request_header": "x-key"}], "limits": [limit],
                   "missing_descriptor": "shared", "max_keys": 4 + input.max_keys % 9}],
        "max_cas_retries": 8, "failure_mode": "deny"
    })
    .to_string();
    let config = match RateLimitConfig::parse(config.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("generated config refused: {e}\n{config}"),
    };
    let store = RefCell::new(MemoryStore::new());
    let salt = {
        let mut s = store.borrow_mut();
        prepare(&mut *s, &config).unwrap();
        ensure_salt(&mut *s, [7; 16]).unwrap()
    };
    let done = RefCell::new(Vec::new());
    let run = Run {
        config: &config,
        salt: &salt,
        store: &store,
        done: &done,
    };
    let mut now = 1_000_000u64;
    for step in input.steps.iter().take(200) {
        now += u64::from(step.advance % 5000);
        let script: Vec<u8> = step.interleave.iter().take(12).copied().collect();
        request(&run, step.key % 5, now, &script);
    }
    check(&input, cap, &done.borrow());
});

fn check(input: &Input, cap: u64, done: &[Done]) {
    assert!(
        done.iter().all(|d| d.collisions == 0),
        "a key shared another's slot with max_keys ≥ 4 and 4 keys"
    );
    let mut by_key: BTreeMap<u8, Vec<&Done>> = BTreeMap::new();
    for d in done {
        by_key.entry(d.key).or_default().push(d);
    }
    for (key, reqs) in by_key {
        let mut times: Vec<u64> = reqs.iter().filter(|d| d.admitted).map(|d| d.at).collect();
        times.sort_unstable();
        if input.sliding {
            let window = u64::from(100 + input.interval % 3000);
            for (j, &t) in times.iter().enumerate() {
                let n = times[..=j].iter().filter(|&&x| x + window > t).count() as u64;
                assert!(
                    n <= cap,
                    "key {key}: {n} admitted in a {window} ms window, limit {cap}: {times:?}"
                );
            }
        } else {
            let interval = u64::from(50 + input.interval % 2000);
            let per_fill = 1 + u64::from(input.b) % cap;
            for (i, &t0) in times.iter().enumerate() {
                for (j, &t1) in times.iter().enumerate().skip(i) {
                    let n = (j - i + 1) as u64;
                    let bound = cap + per_fill * ((t1 - t0) / interval + 1);
                    assert!(
                        n <= bound,
                        "key {key}: {n} admitted in [{t0}, {t1}] > {bound}: {times:?}"
                    );
                }
            }
        }
        // Exactness at the key's first instant (a fresh counter, no time to refill).
        let first = reqs.iter().map(|d| d.at).min().unwrap_or(0);
        let at_first: Vec<&&Done> = reqs.iter().filter(|d| d.at == first).collect();
        if at_first.iter().all(|d| !d.failed) {
            let admitted = at_first.iter().filter(|d| d.admitted).count() as u64;
            let sent = at_first.len() as u64;
            assert_eq!(
                admitted,
                sent.min(cap),
                "key {key}: {admitted} of {sent} admitted at its first instant, capacity {cap}"
            );
        }
    }
}
