//! Shared-data CAS contention across 4 workers: requests for the same rate-limit keys sent from
//! 4 threads at once, one per worker (real concurrent compare-and-swap on the host's shared
//! data), stay exact; a cold JWKS is fetched once for all 4 workers.

use std::collections::BTreeMap;
use std::time::Duration;

use meshguard_harness::{Action, Upstream};

use crate::support::*;

#[test]
fn rate_limit_is_exact_with_4_workers_racing() {
    let host = Chain {
        workers: 4,
        quiet: true,
        ..Chain::default()
    }
    .build();
    // Warm the keys once so the threads race on the limiter, not on the first fetch.
    admitted(&host.send(bearer(&reader("warmup"))).unwrap(), "warmup");
    let users: Vec<(String, String)> = (0..25)
        .map(|i| {
            let sub = format!("user{i}");
            let tok = reader(&sub);
            (sub, tok)
        })
        .collect();
    let admitted_by: BTreeMap<String, usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let host = host.clone();
                let users = &users;
                scope.spawn(move || {
                    let mut admitted = BTreeMap::new();
                    for round in 0..4 {
                        for (sub, tok) in users {
                            let out = host.send(bearer(tok).on_worker(w)).unwrap();
                            guard(&out);
                            assert!(
                                out.status == 200 || out.status == 429,
                                "worker {w} round {round}: {}",
                                out.status
                            );
                            if out.status == 200 {
                                *admitted.entry(sub.clone()).or_insert(0) += 1;
                            }
                        }
                    }
                    admitted
                })
            })
            .collect();
        let mut total = BTreeMap::new();
        for h in handles {
            for (sub, n) in h.join().unwrap() {
                *total.entry(sub).or_insert(0) += n;
            }
        }
        total
    });
    // 16 requests per user over 4 workers, limit 5 per minute: exactly 5 admitted each.
    assert_eq!(admitted_by.len(), users.len());
    for (sub, n) in &admitted_by {
        assert_eq!(*n, 5, "{sub} admitted {n} times");
    }
    let count = |d: &str| {
        host.counter(&format!(
            "meshguard_ratelimit_requests_total_decision=.={d};.;_rule=.=per-user;.;"
        ))
    };
    assert_eq!(count("allowed"), 25 * 5 + 1);
    assert_eq!(count("limited"), 25 * 11);
    assert_eq!(
        host.counter("meshguard_ratelimit_failures_total_reason=.=cas_exhausted;.;"),
        0
    );
    eprintln!(
        "4-worker race: CAS retries {}",
        host.counter("meshguard_ratelimit_cas_retries_total")
    );
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn a_cold_jwks_is_fetched_once_for_4_workers() {
    let host = Chain {
        workers: 4,
        jwks: Upstream::Manual,
        ..Chain::default()
    }
    .build();
    let streams: Vec<_> = (0..4)
        .map(|w| {
            let mut s = host.stream_on(w).unwrap();
            let tok = reader(&format!("w{w}"));
            s.request_headers(
                [
                    (":method", "GET".to_string()),
                    (":path", "/api/orders".to_string()),
                    (":authority", "api".to_string()),
                    ("authorization", format!("Bearer {tok}")),
                ],
                true,
            )
            .unwrap();
            s
        })
        .collect();
    for s in &streams {
        assert_eq!(s.action(), Action::Pause);
        assert!(s.local_reply().is_none());
    }
    let calls = host.pending_http_calls();
    assert_eq!(calls.len(), 1, "one fetch for 4 workers");
    host.deliver_http_call(calls[0].token, jwks_response())
        .unwrap();
    // The other workers see the keys in shared data on their next tick.
    host.advance(Duration::from_millis(250)).unwrap();
    for (w, s) in streams.iter().enumerate() {
        assert!(s.is_resumed(), "worker {w} still paused");
        assert_eq!(
            s.request_header("x-jwt-sub").as_deref(),
            Some(format!("w{w}").as_str())
        );
    }
    assert_eq!(host.http_calls().len(), 1);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}
