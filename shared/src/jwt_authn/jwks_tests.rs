use super::*;
use wasm_bindgen_test::wasm_bindgen_test;

const T0: u64 = 1_700_000_000_000;

fn policy() -> JwksPolicy {
    JwksPolicy::default()
}

fn loaded(at: u64) -> JwksRecord {
    on_fetch_ok(&JwksRecord::default(), at, "{\"keys\":[]}".into())
}

#[wasm_bindgen_test(unsupported = test)]
fn cold_start_one_fetch_then_coalesced() {
    let p = policy();
    let empty = JwksRecord::default();
    assert_eq!(freshness(&empty, &p, T0), Freshness::Missing);
    let leased = try_acquire(&empty, &p, T0, FetchReason::NeedKeys).unwrap();
    assert_eq!(leased.lease_until_ms, T0 + 6_000);
    // Another worker reading the leased record does not fetch.
    assert_eq!(
        try_acquire(&leased, &p, T0 + 10, FetchReason::NeedKeys),
        None
    );
    assert_eq!(try_acquire(&leased, &p, T0 + 10, FetchReason::Tick), None);
    // A lease whose holder vanished expires.
    assert!(try_acquire(&leased, &p, T0 + 6_000, FetchReason::Tick).is_some());
    let ok = on_fetch_ok(&leased, T0 + 50, "jwks".into());
    assert_eq!(ok.lease_until_ms, 0);
    assert_eq!(ok.jwks.as_deref(), Some("jwks"));
    assert_eq!(freshness(&ok, &p, T0 + 60), Freshness::Fresh);
}

#[wasm_bindgen_test(unsupported = test)]
fn refresh_before_expiry_then_stale_then_expired() {
    let p = policy();
    let rec = loaded(T0);
    assert_eq!(try_acquire(&rec, &p, T0 + 1_000, FetchReason::Tick), None);
    assert_eq!(freshness(&rec, &p, T0 + 479_999), Freshness::Fresh);
    assert_eq!(freshness(&rec, &p, T0 + 480_000), Freshness::RefreshDue);
    assert!(try_acquire(&rec, &p, T0 + 480_000, FetchReason::Tick).is_some());
    assert_eq!(freshness(&rec, &p, T0 + 600_000), Freshness::Stale);
    assert!(freshness(&rec, &p, T0 + 600_000).usable());
    assert_eq!(freshness(&rec, &p, T0 + 4_200_000), Freshness::Expired);
    assert!(!freshness(&rec, &p, T0 + 4_200_000).usable());
}

#[wasm_bindgen_test(unsupported = test)]
fn failure_keeps_last_good_keys_and_backs_off() {
    let p = policy();
    let rec = loaded(T0);
    let now = T0 + 600_000;
    let leased = try_acquire(&rec, &p, now, FetchReason::Tick).unwrap();
    let failed = on_fetch_failed(&leased, now + 100);
    assert_eq!(failed.jwks, rec.jwks, "last good keys kept");
    assert_eq!(failed.consecutive_failures, 1);
    assert_eq!(freshness(&failed, &p, now + 100), Freshness::Stale);
    assert_eq!(try_acquire(&failed, &p, now + 500, FetchReason::Tick), None);
    assert!(try_acquire(&failed, &p, now + 1_100, FetchReason::Tick).is_some());
    let ok = on_fetch_ok(&failed, now + 2_000, "new".into());
    assert_eq!(ok.consecutive_failures, 0);
    assert!(ok.fetched_at_ms > rec.fetched_at_ms);
}

#[wasm_bindgen_test(unsupported = test)]
fn backoff_doubles_up_to_a_minute() {
    let p = policy();
    let mut rec = loaded(T0);
    let waits: Vec<u64> = (1..=9)
        .map(|n| {
            rec.consecutive_failures = n;
            backoff_ms(&rec, &p)
        })
        .collect();
    assert_eq!(
        waits,
        vec![1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
    );
    rec.consecutive_failures = 3;
    rec.last_attempt_ms = T0 + 700_000;
    assert_eq!(try_acquire(&rec, &p, T0 + 703_999, FetchReason::Tick), None);
    assert!(try_acquire(&rec, &p, T0 + 704_000, FetchReason::Tick).is_some());
}

#[wasm_bindgen_test(unsupported = test)]
fn unknown_kid_refetch_is_rate_limited() {
    let p = policy();
    let rec = loaded(T0);
    let now = T0 + 1_000;
    assert!(unknown_kid_should_wait(&rec, &p, now));
    let leased = try_acquire(&rec, &p, now, FetchReason::UnknownKid).unwrap();
    assert_eq!(leased.last_kid_refetch_ms, now);
    // While the fetch runs, other unknown-kid requests wait for it.
    assert!(unknown_kid_should_wait(&leased, &p, now + 10));
    let ok = on_fetch_ok(&leased, now + 20, "rotated".into());
    // Within 30 s no new refetch: the request fails at once.
    assert!(!unknown_kid_should_wait(&ok, &p, now + 29_999));
    assert_eq!(
        try_acquire(&ok, &p, now + 29_999, FetchReason::UnknownKid),
        None
    );
    assert!(unknown_kid_should_wait(&ok, &p, now + 30_000));
}

#[wasm_bindgen_test(unsupported = test)]
fn record_round_trip_and_garbage() {
    let rec = loaded(T0);
    assert_eq!(JwksRecord::from_bytes(Some(&rec.to_bytes())), rec);
    assert_eq!(
        JwksRecord::from_bytes(Some(b"garbage")),
        JwksRecord::default()
    );
    assert_eq!(JwksRecord::from_bytes(Some(b"")), JwksRecord::default());
    assert_eq!(JwksRecord::from_bytes(None), JwksRecord::default());
}

#[wasm_bindgen_test(unsupported = test)]
fn discovery_lease_covers_both_fetches() {
    let p = JwksPolicy {
        fetch_steps: 2,
        ..policy()
    };
    assert_eq!(p.lease_ms(), 11_000);
}

#[wasm_bindgen_test(unsupported = test)]
fn wait_list() {
    let mut w = WaitList::default();
    let waiter = |context_id, provider, generation, deadline_ms| Waiter {
        context_id,
        provider,
        generation,
        deadline_ms,
    };
    w.add(waiter(7, 0, 0, T0 + 5_000));
    w.add(waiter(8, 1, 5, T0 + 5_000));
    w.add(waiter(9, 0, 0, T0 + 1_000));
    let busy = |_p: usize| KeyProgress {
        generation: 0,
        fetch_in_progress: true,
    };
    let due = w.take_due(T0 + 999, &|p| KeyProgress {
        generation: if p == 1 { 5 } else { 0 },
        ..busy(p)
    });
    assert!(due.is_empty(), "nothing changed yet");
    // Deadline of 9 passed.
    let due = w.take_due(T0 + 1_000, &|p| KeyProgress {
        generation: if p == 1 { 5 } else { 0 },
        ..busy(p)
    });
    assert_eq!(
        due.iter().map(|x| x.context_id).collect::<Vec<_>>(),
        vec![9]
    );
    // Keys of provider 0 arrived (generation changed).
    let due = w.take_due(T0 + 2_000, &|p| KeyProgress {
        generation: if p == 1 { 5 } else { 42 },
        ..busy(p)
    });
    assert_eq!(
        due.iter().map(|x| x.context_id).collect::<Vec<_>>(),
        vec![7]
    );
    // The fetch for provider 1 ended without new keys (failed).
    let due = w.take_due(T0 + 2_000, &|_| KeyProgress {
        generation: 5,
        fetch_in_progress: false,
    });
    assert_eq!(
        due.iter().map(|x| x.context_id).collect::<Vec<_>>(),
        vec![8]
    );
    w.add(waiter(10, 0, 0, T0 + 9_000));
    w.remove(10);
    assert!(w.is_empty());
}
