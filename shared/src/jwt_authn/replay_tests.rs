use std::cell::RefCell;

use super::*;
use wasm_bindgen_test::wasm_bindgen_test;

/// One worker's handle on the shared store; before its first write it lets `racer` run a whole
/// check (another worker writing between this worker's read and write).
struct Racing<'a> {
    shared: &'a RefCell<MemoryStore>,
    racer: Option<Box<dyn FnMut() + 'a>>,
}

impl JtiStore for Racing<'_> {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, ReplayError> {
        self.shared.borrow_mut().get(key)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, ReplayError> {
        if let Some(mut racer) = self.racer.take() {
            racer();
        }
        self.shared.borrow_mut().set(key, value, cas)
    }
}

fn settings(max_entries: u32) -> ReplaySettings {
    let raw = RawJtiReplay {
        required: None,
        max_entries: Some(max_entries),
        max_cas_retries: None,
    };
    let mut errs = ConfigErrors::default();
    let s = ReplaySettings::compile(&raw, "idp", 60, "p", &mut errs);
    assert!(errs.is_empty(), "{errs}");
    s
}

fn prepared(s: &ReplaySettings) -> MemoryStore {
    let mut f = MemoryStore::default();
    prepare(&mut f, s).unwrap();
    f
}

const NOW: i64 = 1_700_000_000;

#[wasm_bindgen_test(unsupported = test)]
fn once_per_issuer_and_jti_until_exp_plus_skew() {
    let s = settings(64);
    let mut f = prepared(&s);
    let v = |f: &mut MemoryStore, iss, jti, now| check(f, &s, iss, jti, NOW + 100, now).verdict;
    assert_eq!(v(&mut f, "a", "j1", NOW), ReplayVerdict::Fresh);
    assert_eq!(v(&mut f, "a", "j1", NOW + 1), ReplayVerdict::Replayed);
    assert_eq!(
        v(&mut f, "b", "j1", NOW),
        ReplayVerdict::Fresh,
        "other issuer"
    );
    assert_eq!(v(&mut f, "a", "j2", NOW), ReplayVerdict::Fresh);
    // The token itself is accepted until exp + skew (60): so is its record.
    assert_eq!(v(&mut f, "a", "j1", NOW + 159), ReplayVerdict::Replayed);
    assert_eq!(v(&mut f, "a", "j1", NOW + 160), ReplayVerdict::Fresh);
}

#[wasm_bindgen_test(unsupported = test)]
fn bounded_keys_and_full_bucket_fails_closed_until_records_expire() {
    let s = settings(8);
    assert_eq!(s.buckets, 1);
    let mut f = prepared(&s);
    assert_eq!(f.len(), 1, "one bucket created at configure time");
    for i in 0..PER_BUCKET {
        let r = check(&mut f, &s, "a", &format!("j{i}"), NOW + 10, NOW);
        assert_eq!(r.verdict, ReplayVerdict::Fresh);
    }
    let r = check(&mut f, &s, "a", "one-more", NOW + 10, NOW);
    assert_eq!(r.verdict, ReplayVerdict::Full);
    assert_eq!(
        check(&mut f, &s, "a", "j3", NOW + 10, NOW).verdict,
        ReplayVerdict::Replayed,
        "a full bucket still detects replays"
    );
    let r = check(&mut f, &s, "a", "one-more", NOW + 500, NOW + 71);
    assert_eq!(
        r.verdict,
        ReplayVerdict::Fresh,
        "expired records are reused"
    );
    assert_eq!(f.len(), 1, "never more keys");
    assert!(f.values().all(|v| v.len() <= PER_BUCKET * 24));
    // Sizing: rounded up to whole buckets.
    assert_eq!(settings(9).buckets, 2);
    assert_eq!(settings(16_384).buckets, 2048);
}

#[wasm_bindgen_test(unsupported = test)]
fn missing_or_corrupt_bucket_fails_closed() {
    let s = settings(8);
    let mut f = MemoryStore::default();
    assert_eq!(
        check(&mut f, &s, "a", "j", NOW + 10, NOW).verdict,
        ReplayVerdict::Failed
    );
    f.set(&s.bucket_key(0), b"short", None).unwrap();
    assert_eq!(
        check(&mut f, &s, "a", "j", NOW + 10, NOW).verdict,
        ReplayVerdict::Failed
    );
    // prepare leaves existing buckets alone.
    prepare(&mut f, &s).unwrap();
    assert_eq!(f.value(&s.bucket_key(0)), Some(&b"short"[..]));
}

#[wasm_bindgen_test(unsupported = test)]
fn two_workers_racing_on_one_jti_admit_exactly_one() {
    let s = settings(64);
    let shared = RefCell::new(prepared(&s));
    let mut b_verdict = None;
    let a = {
        let mut a_store = Racing {
            shared: &shared,
            racer: Some(Box::new(|| {
                let mut b = Racing {
                    shared: &shared,
                    racer: None,
                };
                b_verdict = Some(check(&mut b, &s, "a", "j", NOW + 10, NOW).verdict);
            })),
        };
        check(&mut a_store, &s, "a", "j", NOW + 10, NOW)
    };
    assert_eq!(b_verdict, Some(ReplayVerdict::Fresh), "B wrote first");
    assert_eq!(
        a.verdict,
        ReplayVerdict::Replayed,
        "A re-read after the conflict"
    );
    assert_eq!(a.conflicts, 1);
}

/// Worker `i`'s write is preceded by worker `i+1`'s whole check: `n` workers all read the bucket
/// before any writes, the worst interleaving for a lost update.
fn nested(
    shared: &RefCell<MemoryStore>,
    s: &ReplaySettings,
    jti: &str,
    i: usize,
    n: usize,
    out: &RefCell<Vec<ReplayCheck>>,
) {
    let racer: Option<Box<dyn FnMut() + '_>> = if i + 1 < n {
        Some(Box::new(move || nested(shared, s, jti, i + 1, n, out)))
    } else {
        None
    };
    let mut store = Racing { shared, racer };
    let r = check(&mut store, s, "iss", jti, NOW + 10, NOW);
    out.borrow_mut().push(r);
}

#[wasm_bindgen_test(unsupported = test)]
fn two_and_four_workers_interleaved_admit_each_jti_once() {
    for n in [2usize, 4] {
        let s = settings(16);
        let shared = RefCell::new(prepared(&s));
        let mut conflicts = 0;
        for round in 0..50 {
            let out = RefCell::new(Vec::new());
            // Several jtis share the 2 buckets, so conflicts also come from other tokens.
            nested(&shared, &s, &format!("j{}", round % 12), 0, n, &out);
            let out = out.into_inner();
            let fresh = out
                .iter()
                .filter(|r| r.verdict == ReplayVerdict::Fresh)
                .count();
            if round < 12 {
                assert_eq!(out.len(), n, "every worker read before any wrote");
                assert_eq!(fresh, 1, "{n} workers, round {round}: {out:?}");
            } else {
                assert_eq!(
                    fresh, 0,
                    "{n} workers, round {round}: replay admitted: {out:?}"
                );
            }
            conflicts += out.iter().map(|r| r.conflicts).sum::<u32>();
        }
        assert!(
            conflicts >= 12 * (n as u32 - 1),
            "{n}: conflicts {conflicts}"
        );
    }
}

struct AlwaysConflict(MemoryStore);

impl JtiStore for AlwaysConflict {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, ReplayError> {
        self.0.get(key)
    }
    fn set(&mut self, _: &str, _: &[u8], _: Option<u32>) -> Result<bool, ReplayError> {
        Ok(false)
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn endless_contention_fails_closed_after_max_cas_retries() {
    let s = settings(8);
    let mut store = AlwaysConflict(prepared(&s));
    let r = check(&mut store, &s, "a", "j", NOW + 10, NOW);
    assert_eq!(r.verdict, ReplayVerdict::Failed);
    assert_eq!(r.conflicts, DEFAULT_CAS_RETRIES);
}

#[wasm_bindgen_test(unsupported = test)]
fn config_errors_have_paths() {
    let raw = RawJtiReplay {
        required: Some(false),
        max_entries: Some(1),
        max_cas_retries: Some(5000),
    };
    let mut errs = ConfigErrors::default();
    let s = ReplaySettings::compile(&raw, "idp", 0, "providers.idp.jti_replay", &mut errs);
    let text = errs.to_string();
    assert!(
        text.contains("providers.idp.jti_replay.max_entries: must be 8..=4194304"),
        "{text}"
    );
    assert!(
        text.contains("providers.idp.jti_replay.max_cas_retries: at most 1000"),
        "{text}"
    );
    assert!(!s.required);
}
